"""Fixtures: a real local cluster (the binaries of $RC_BUILD_DIR, default <repo>/build).

The session cluster (a coordinator and two workers that run python_script, command and
python_eval) serves most tests; tests of tokens, TLS and coordinator restarts start their
own in their modules. The SDK is imported from this checkout's python/ directory (its
stubs come from the build target python_sdk).
"""

import os
import shutil
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

# A test run inside a task (or a shell set up for the CLI) must not reach another cluster.
for _name in ("RETIRE_CLUSTER_COORDINATOR", "RETIRE_CLUSTER_TOKEN", "RETIRE_CLUSTER_TASK_ID",
              "RETIRE_CLUSTER_TLS_CA", "RETIRE_CLUSTER_TLS_CERT", "RETIRE_CLUSTER_TLS_KEY"):
    os.environ.pop(_name, None)

import rc_cluster  # noqa: E402

if not os.path.exists(os.path.join(rc_cluster.PYTHON_DIR, "retire_cluster", "v1", "client_service_pb2_grpc.py")):
    raise RuntimeError("python/retire_cluster/v1 has no stubs: build the python_sdk target "
                       "(scripts/build.sh) or run /usr/bin/python3 python/gen_stubs.py")

import retire_cluster as rc  # noqa: E402

WORKER_TYPES = "python_script,command,python_eval"


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# A SIGTERM (ctest's timeout, a CI cancel) ends the run like Ctrl-C: the fixtures' teardown
# still stops every coordinator and worker (they run in sessions of their own).
signal.signal(signal.SIGTERM, _interrupted)


@pytest.fixture(scope="session")
def cluster():
    args = ["--slots", "4", "--allow", WORKER_TYPES] + rc_cluster.sdk_worker_args()
    c = rc_cluster.Cluster("main", worker_args=args).start()
    yield c
    c.close()


@pytest.fixture(scope="session")
def client(cluster):
    c = rc.Client(cluster.target)
    yield c
    c.close()


class BackgroundVenv:
    """`python3 -m venv --system-site-packages` (ensurepip: the slow part of test_install),
    started when the session starts so that it runs while the other tests do."""

    def __init__(self):
        self.tmp = rc_cluster.make_tmp("venv")
        self.dir = os.path.join(self.tmp, "venv")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RETIRE_CLUSTER_", "PIP_"))}
        self.env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        self.log = open(os.path.join(self.tmp, "venv.log"), "w+")
        self.proc = subprocess.Popen(["/usr/bin/python3", "-m", "venv", "--system-site-packages", self.dir],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)  # its pip child is stopped with it

    def ready(self, limit: float = 180.0) -> str:
        """The venv's directory once made; AssertionError with venv's output if that failed."""
        code = self.proc.wait(limit)
        self.log.seek(0)
        assert code == 0, f"python3 -m venv exited {code}: {self.log.read()}"
        return self.dir

    def close(self):
        if self.proc.poll() is None:  # a short run (a subset of the tests) ends before it
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def background_venv():
    v = BackgroundVenv()
    yield v
    v.close()
