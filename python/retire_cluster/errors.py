"""The exceptions of the SDK (DESIGN.md "Python SDK").

Two families, both under :class:`Error`:

* :class:`RpcError`: the coordinator refused a call or could not be reached. The gRPC status
  picks the class: :class:`NotFound`, :class:`InvalidArgument`, :class:`Unauthenticated`,
  :class:`PermissionDenied`, :class:`Unavailable`, :class:`ResourceExhausted`,
  :class:`DeadlineExceeded`; any other code is a plain :class:`RpcError`. ``code`` is the
  gRPC code's name ("NOT_FOUND"), ``details`` the coordinator's message.
* :class:`TaskError`: a task ended without success. ``task`` is the final task as a dict
  (the HTTP API's shape), ``task_id`` and ``status`` are taken from it.

Bad arguments found before anything is sent raise :class:`InvalidArgument` (also a
``ValueError``) or ``TypeError``, naming the argument.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Dict, Optional

import grpc


class Error(Exception):
    """Base class of every exception the SDK raises on purpose."""


class RpcError(Error):
    """A call failed: ``code`` is the gRPC status code's name, ``details`` the message."""

    def __init__(self, details: str, code: str = "UNKNOWN"):
        super().__init__(details)
        self.details = details
        self.code = code


class NotFound(RpcError, LookupError):
    """No task (or worker) with that id."""


class InvalidArgument(RpcError, ValueError):
    """A bad argument or field: the message names it."""


class Unauthenticated(RpcError):
    """No token, or one the coordinator does not know (or an ended task's token)."""


class PermissionDenied(RpcError):
    """The token's role may not do this, or the task belongs to someone else."""


class Unavailable(RpcError, ConnectionError):
    """The coordinator could not be reached, or the connection was lost while waiting.

    A :class:`~retire_cluster.TaskFuture` that raised it may be waited on again: the
    client reconnects and resumes the wait.
    """


class ResourceExhausted(RpcError):
    """A limit was reached (queued tasks per token, children per task, task depth)."""


class DeadlineExceeded(RpcError, TimeoutError):
    """A call took longer than the client's ``rpc_timeout``."""


_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}

_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def from_status(code: grpc.StatusCode, details: str, target: str = "") -> RpcError:
    """The exception for a gRPC status; UNAVAILABLE names the coordinator's address."""
    details = details or code.name
    if code == grpc.StatusCode.UNAVAILABLE and target and target not in details:
        details = f"coordinator {target} unavailable: {details}"
    return _BY_CODE.get(code, RpcError)(details, code.name)


def from_code_number(number: int, details: str, target: str = "") -> RpcError:
    """As from_status, for a google.rpc.Code number (a batch entry's or a wait's error)."""
    return from_status(_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN), details, target)


def from_grpc(err: grpc.RpcError, target: str = "") -> RpcError:
    """The SDK's exception for a failed gRPC call (sync or aio)."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    return from_status(code or grpc.StatusCode.UNKNOWN, details or "", target)


def forget_call(error: grpc.RpcError) -> None:
    """Drops the traceback of a stream call that raised itself (grpcio's call objects are
    their own RpcError).

    Its traceback holds the frames that hold the call: a cycle, freed only by a cyclic
    garbage collection, which runs on whichever thread allocates when it runs, or at
    interpreter exit. grpcio's ``__del__`` of a call takes the call's lock, and at exit a
    daemon thread (grpcio's channel thread finishing the cancelled call) can have been
    stopped holding it: the process hung at exit. Without the cycle the call is freed
    when the thread that made it lets go of it, before ``close()`` returns.
    """
    error.__traceback__ = None


class TaskError(Error):
    """A task ended without success; ``task`` is the final task (a dict)."""

    def __init__(self, task: Dict[str, Any]):
        self.task = task
        self.task_id: str = task.get("task_id", "")
        self.status: str = task.get("status", "")
        why = task.get("error_message") or ""
        super().__init__(f"task {self.task_id} ended {self.status}" + (f": {why}" if why else ""))

    def __reduce__(self):  # picklable (concurrent.futures may cross processes)
        return (type(self), (self.task,))


class TaskFailed(TaskError):
    """The task ended ``failed``: its handler failed, or it ran out of retries."""


class TaskTimeout(TaskError):
    """The task ended ``timeout``: it ran past its ``timeout`` and was stopped."""


class TaskCancelled(TaskError, concurrent.futures.CancelledError):
    """The task ended ``cancelled`` (by a client, its parent, or a dependency)."""


def task_error(task: Dict[str, Any]) -> Optional[TaskError]:
    """The exception for a final task that did not succeed; None for ``success``."""
    cls = {"failed": TaskFailed, "timeout": TaskTimeout, "cancelled": TaskCancelled}.get(task.get("status"))
    return cls(task) if cls else None
