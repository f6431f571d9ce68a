"""Where the coordinator is and how to reach it: arguments first, else RETIRE_CLUSTER_* env.

Inside a task the worker sets RETIRE_CLUSTER_COORDINATOR (``unix:PATH``, the task's own
socket: plaintext, the worker forwards calls on its own connection), RETIRE_CLUSTER_TOKEN
(the attempt's task token) and RETIRE_CLUSTER_TASK_ID, so ``Client()`` there submits
children of the task. Elsewhere the defaults are 127.0.0.1:8080 and no token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import grpc
import grpc.experimental

DEFAULT_TARGET = "127.0.0.1:8080"
# Large batches and many results in one message: as the C++ SDK, no 4 MiB cap.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.keepalive_time_ms", 30000),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.keepalive_permit_without_calls", 0),
]

# Both clients' main connection: back within about 2 s of a coordinator restart (gRPC's own
# backoff grows to 120 s).
RECONNECT_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 250), ("grpc.min_reconnect_backoff_ms", 250),
                     ("grpc.max_reconnect_backoff_ms", 2000)]
# The sync client's main connection: its one streaming call, a lone submit's SubmitAndWatch
# (_batcher.py), is read on the calling thread; else grpcio starts a thread to poll the
# channel for every such call while no other is open (about 0.3 ms of a round trip).
MAIN_CHANNEL_OPTIONS = RECONNECT_OPTIONS + [(grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1)]
# The wait stream's own connection: a small fixed HTTP/2 window, so that results queue at the
# coordinator while the reader pauses and then travel many per message (see _waiter, _aio_waiter).
WAIT_CHANNEL_OPTIONS = RECONNECT_OPTIONS + [("grpc.http2.lookahead_bytes", 16384), ("grpc.http2.bdp_probe", 0)]


def _read(name: str, path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a file path, got {type(path).__name__}")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise FileNotFoundError(f"{name}: cannot read {path}: {e.strerror}") from None


@dataclass(frozen=True)
class Connection:
    """Resolved connection settings (see resolve)."""
    target: str
    token: str
    root_certificates: Optional[bytes]
    private_key: Optional[bytes]
    certificate_chain: Optional[bytes]
    rpc_timeout: float

    @property
    def tls(self) -> bool:
        return self.root_certificates is not None

    @property
    def metadata(self) -> Tuple[Tuple[str, str], ...]:
        """Per-call metadata: the bearer token (sent on plaintext channels too)."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def credentials(self) -> Optional[grpc.ChannelCredentials]:
        if not self.tls:
            return None
        return grpc.ssl_channel_credentials(self.root_certificates, self.private_key, self.certificate_chain)

    def channel(self, extra_options: Sequence[Tuple[str, Any]] = ()) -> grpc.Channel:
        """A new channel; ``extra_options`` are added to the SDK's channel arguments."""
        creds = self.credentials()
        options = _CHANNEL_OPTIONS + list(extra_options)
        if creds is None:
            return grpc.insecure_channel(self.target, options=options)
        return grpc.secure_channel(self.target, creds, options=options)

    def aio_channel(self, extra_options: Sequence[Tuple[str, Any]] = ()) -> "grpc.aio.Channel":
        """As channel(), for grpc.aio."""
        creds = self.credentials()
        options = _CHANNEL_OPTIONS + list(extra_options)
        if creds is None:
            return grpc.aio.insecure_channel(self.target, options=options)
        return grpc.aio.secure_channel(self.target, creds, options=options)


def resolve(target: Optional[str] = None, token: Optional[str] = None, *,
            tls_ca: Optional[str] = None, tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
            rpc_timeout: float = 10.0) -> Connection:
    """Settings from the arguments, else the environment, else the defaults.

    target: HOST:PORT or unix:PATH ($RETIRE_CLUSTER_COORDINATOR, default 127.0.0.1:8080).
    token: the bearer token ($RETIRE_CLUSTER_TOKEN).
    tls_ca: CA file; TLS is on when it is given ($RETIRE_CLUSTER_TLS_CA).
    tls_cert, tls_key: client certificate and key for mTLS ($RETIRE_CLUSTER_TLS_CERT/_KEY).
    A unix: target is always plaintext (the task's own socket).
    """
    env = os.environ
    if target is None:
        target = env.get("RETIRE_CLUSTER_COORDINATOR") or DEFAULT_TARGET
    if not isinstance(target, str) or not target:
        raise TypeError(f"target: expected 'HOST:PORT' or 'unix:PATH', got {target!r}")
    if not target.startswith("unix:") and ":" not in target:
        from retire_cluster.errors import InvalidArgument
        raise InvalidArgument(f"target: expected HOST:PORT or unix:PATH, got {target!r}", "INVALID_ARGUMENT")
    if token is None:
        token = env.get("RETIRE_CLUSTER_TOKEN", "")
    if not isinstance(token, str):
        raise TypeError(f"token: expected a string, got {type(token).__name__}")
    if not isinstance(rpc_timeout, (int, float)) or isinstance(rpc_timeout, bool) or rpc_timeout <= 0:
        raise TypeError(f"rpc_timeout: expected a positive number of seconds, got {rpc_timeout!r}")
    unix = target.startswith("unix:")
    tls_ca = tls_ca if tls_ca is not None else (None if unix else env.get("RETIRE_CLUSTER_TLS_CA") or None)
    tls_cert = tls_cert if tls_cert is not None else (None if unix else env.get("RETIRE_CLUSTER_TLS_CERT") or None)
    tls_key = tls_key if tls_key is not None else (None if unix else env.get("RETIRE_CLUSTER_TLS_KEY") or None)
    if (tls_cert is None) != (tls_key is None):
        raise TypeError("tls_cert and tls_key: give both (a client certificate and its key) or neither")
    if tls_cert is not None and tls_ca is None:
        raise TypeError("tls_cert: a client certificate needs tls_ca (TLS to the coordinator)")
    return Connection(target=target, token=token, root_certificates=_read("tls_ca", tls_ca),
                      private_key=_read("tls_key", tls_key), certificate_chain=_read("tls_cert", tls_cert),
                      rpc_timeout=float(rpc_timeout))


def current_task_id() -> str:
    """$RETIRE_CLUSTER_TASK_ID: the task this process runs as, "" outside a task."""
    return os.environ.get("RETIRE_CLUSTER_TASK_ID", "")
