"""retire_cluster: the Python SDK of retire-cluster (DESIGN.md "Python SDK").

    import retire_cluster as rc
    client = rc.Client()                 # target, token, TLS from arguments or RETIRE_CLUSTER_*
    f = client.submit("echo", {"message": "hi"}, priority="high", timeout=60)
    f.task_id, f.result(timeout=30)      # a concurrent.futures.Future
    client.map("python_eval", [{"expression": "1+1"}, {"expression": "2*3"}])   # [{"value": 2}, ...]

``rc.aio.Client`` offers the same with ``await``. Failures raise the classes of
retire_cluster.errors (``rc.TaskFailed``, ``rc.NotFound``, ``rc.Unavailable``, ...).
"""

from retire_cluster import _deps

_deps.ensure_grpc()

from retire_cluster.errors import (  # noqa: E402
    DeadlineExceeded, Error, InvalidArgument, NotFound, PermissionDenied, ResourceExhausted, RpcError,
    TaskCancelled, TaskError, TaskFailed, TaskTimeout, Unauthenticated, Unavailable)
from retire_cluster._connection import current_task_id  # noqa: E402
from retire_cluster.futures import TaskFuture  # noqa: E402
from retire_cluster.client import Client  # noqa: E402
from retire_cluster import aio  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Client", "TaskFuture", "aio", "current_task_id",
    "Error", "RpcError", "NotFound", "InvalidArgument", "Unauthenticated", "PermissionDenied",
    "Unavailable", "ResourceExhausted", "DeadlineExceeded",
    "TaskError", "TaskFailed", "TaskTimeout", "TaskCancelled",
]
