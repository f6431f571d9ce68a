"""Real binaries on 127.0.0.1 for the pytest suite (as scripts/lib.sh does for the shell tests).

A Coordinator runs retire-cluster-main with --port 0 --http-port 0 (or fixed ports, to restart
it where it was) and its own data dir; a Worker runs retire-cluster-worker joined to it. Both
start in their own process group, so stop() also ends whatever task processes a worker
left behind. Every wait is bounded; a process that does not come up fails with its log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Optional, Sequence, Tuple

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON_DIR = os.path.join(REPO, "python")

# Fast failure detection, as tests/e2e/workflow_test.sh: workers reconnect within half a second.
COORDINATOR_YAML = ("heartbeat_interval_seconds: 0.5\noffline_after_seconds: 3\n"
                    "reconnect_grace_seconds: 5\nlog_level: warn\n")
# drain_grace 0: a stopped worker hands its running tasks back at once (a test ends with some).
WORKER_YAML = "reconnect_initial_seconds: 0.1\nreconnect_max_seconds: 0.5\ndrain_grace_seconds: 0\nlog_level: warn\n"

_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+) http 127\.0\.0\.1:(\d+)")


def build_dir() -> str:
    d = os.environ.get("RC_BUILD_DIR") or os.path.join(REPO, "build")
    return os.path.abspath(d)


def binary(name: str) -> str:
    sub = {"retire-cluster-main": "coordinator", "retire-cluster-worker": "worker",
           "retire-cluster": "client"}[name]
    path = os.path.join(build_dir(), sub, name)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: build first (scripts/build.sh) or set RC_BUILD_DIR")
    return path


def make_tmp(tag: str) -> str:
    # Short paths under /tmp: a worker serves each task a Unix socket inside its data dir.
    return tempfile.mkdtemp(prefix=f"rc-py-{tag}.", dir="/tmp")


def _tail(path: str, limit: int = 4000) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-limit:]
    except OSError:
        return ""


class _Process:
    def __init__(self):
        self.proc: Optional[subprocess.Popen] = None
        self.log = ""

    def _spawn(self, argv: Sequence[str], stdout_path: str, log_path: str) -> None:
        self.log = log_path
        with open(stdout_path, "wb") as out, open(log_path, "ab") as err:
            self.proc = subprocess.Popen(list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, limit: float = 5.0) -> Optional[int]:
        """SIGTERM, then SIGKILL to the whole group after `limit` seconds; the exit code."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(limit)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the group this process leads: its leftovers too
        except (ProcessLookupError, PermissionError):
            pass
        try:
            return p.wait(5)
        except subprocess.TimeoutExpired:
            return None


class Coordinator(_Process):
    """retire-cluster-main on 127.0.0.1. `tls` = (cert, key, ca) turns TLS on (gRPC and HTTPS);
    `mtls` = (client cert, key) also requires client certificates from that CA (mTLS)."""

    def __init__(self, tmp: str, *, args: Sequence[str] = (), tls: Optional[Tuple[str, str, str]] = None,
                 mtls: Optional[Tuple[str, str]] = None, admin_token: str = ""):
        super().__init__()
        self.mtls = mtls
        self.tmp = tmp
        self.data_dir = os.path.join(tmp, "main-data")
        self.extra = list(args)
        self.tls = tls
        self.admin_token = admin_token  # used by http() when no token is given
        self.port = 0
        self.http_port = 0
        with open(os.path.join(tmp, "main.yaml"), "w") as f:
            f.write(COORDINATOR_YAML)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.http_port}"

    def start(self, limit: float = 15.0) -> "Coordinator":
        """Starts on self.port/self.http_port (0 = free ports, then remembered for a restart)."""
        argv = [binary("retire-cluster-main"), "--host", "127.0.0.1", "--port", str(self.port),
                "--http-port", str(self.http_port), "--data-dir", self.data_dir,
                "--config", os.path.join(self.tmp, "main.yaml")]
        if self.tls:
            argv += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        if self.mtls:
            argv += ["--tls-client-ca", self.tls[2]]
        argv += self.extra
        out = os.path.join(self.tmp, "main.out")
        self._spawn(argv, out, os.path.join(self.tmp, "main.log"))
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            m = _LISTENING.search(_tail(out))
            if m:
                self.port, self.http_port = int(m.group(1)), int(m.group(2))
                return self
            if not self.alive():
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"coordinator did not start within {limit}s:\n{_tail(self.log)}")

    def http(self, method: str, path: str, body: Any = None, token: Optional[str] = None,
             timeout: float = 30.0) -> Tuple[int, Any]:
        """One HTTP call: (status code, decoded JSON body, or the text when it is not JSON)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.http_base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        token = self.admin_token if token is None else token
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        ctx = ssl.create_default_context(cafile=self.tls[2]) if self.tls else None
        if self.mtls:
            ctx.load_cert_chain(self.mtls[0], self.mtls[1])
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
                code, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, raw = e.code, e.read()
        try:
            return code, json.loads(raw.decode())
        except ValueError:
            return code, raw.decode(errors="replace")

    def online_workers(self) -> set:
        code, body = self.http("GET", "/workers", timeout=5)
        if code != 200:
            return set()
        return {w["device_id"] for w in body["workers"] if w["status"] == "online"}


class Worker(_Process):
    def __init__(self, coordinator: Coordinator, device_id: str, *, args: Sequence[str] = ()):
        super().__init__()
        self.coordinator = coordinator
        self.device_id = device_id
        self.dir = os.path.join(coordinator.tmp, device_id)
        self.extra = list(args)
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "worker.yaml"), "w") as f:
            f.write(WORKER_YAML)

    def start(self, limit: float = 20.0) -> "Worker":
        c = self.coordinator
        argv = [binary("retire-cluster-worker"), "--join", c.target, "--device-id", self.device_id,
                "--data-dir", os.path.join(self.dir, "data"), "--config", os.path.join(self.dir, "worker.yaml")]
        if c.tls:
            argv += ["--tls-ca", c.tls[2]]
        if c.mtls:
            argv += ["--tls-cert", c.mtls[0], "--tls-key", c.mtls[1]]
        argv += self.extra
        self._spawn(argv, os.path.join(self.dir, "stdout"), os.path.join(self.dir, "log"))
        wait_for(lambda: self.device_id in c.online_workers(), limit,
                 lambda: f"worker {self.device_id} not online:\n{_tail(self.log)}",
                 stop=lambda: not self.alive())
        return self


def wait_for(cond, limit: float, what, stop=None, every: float = 0.1):
    """Polls cond() until true for at most `limit` seconds; raises AssertionError(what()) else."""
    deadline = time.monotonic() + limit
    while True:
        try:
            v = cond()
        except (OSError, urllib.error.URLError):
            v = None
        if v:
            return v
        if time.monotonic() >= deadline or (stop is not None and stop()):
            raise AssertionError(what() if callable(what) else what)
        time.sleep(every)


class Cluster:
    """A coordinator and its workers, all stopped by close() (also after a failed start)."""

    def __init__(self, tag: str, *, workers: Sequence[str] = ("w1", "w2"), worker_args: Sequence[str] = (),
                 coordinator_args: Sequence[str] = (), tls: Optional[Tuple[str, str, str]] = None,
                 mtls: Optional[Tuple[str, str]] = None, admin_token: str = "", tmp: Optional[str] = None):
        self.tmp = tmp or make_tmp(tag)
        self.coordinator = Coordinator(self.tmp, args=coordinator_args, tls=tls, mtls=mtls, admin_token=admin_token)
        self.workers = [Worker(self.coordinator, d, args=worker_args) for d in workers]

    def start(self) -> "Cluster":
        try:
            self.coordinator.start()
            for w in self.workers:
                w.start()
        except BaseException:
            self.close()
            raise
        return self

    @property
    def target(self) -> str:
        return self.coordinator.target

    def http(self, *a, **kw):
        return self.coordinator.http(*a, **kw)

    def close(self) -> Dict[str, Optional[int]]:
        codes = {w.device_id: w.stop() for w in self.workers}
        codes["main"] = self.coordinator.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return codes


def sdk_worker_args() -> list:
    """--python-sdk-dir only when the build dir is not <repo>/build: from there the worker's
    default (<binary dir>/../../python) already is this checkout's SDK, which the suite tests."""
    default = os.path.realpath(os.path.join(build_dir(), "..", "python"))
    if default == os.path.realpath(PYTHON_DIR):
        return []
    # A worker built before the flag existed would refuse to start: then the tasks that
    # import the SDK fail instead of every test.
    helptext = subprocess.run([binary("retire-cluster-worker"), "--help"], capture_output=True, text=True,
                              timeout=10)
    if "--python-sdk-dir" not in helptext.stdout + helptext.stderr:
        return []
    return ["--python-sdk-dir", PYTHON_DIR]
