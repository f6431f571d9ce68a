"""complete_task: a running attempt completed from outside (DESIGN.md "Browser automation").

Shared by ``rc.Client`` and ``rc.aio.Client``. Only the task's own token may complete it:
inside the task (or a program it started) that is ``$RETIRE_CLUSTER_TOKEN``, which a
client made with no ``token`` argument picks up.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from retire_cluster._specs import payload_text
from retire_cluster.errors import InvalidArgument
from retire_cluster.v1 import client_service_pb2 as cs
from retire_cluster.v1 import task_pb2

_STATUS = {"success": task_pb2.TASK_STATUS_SUCCESS, "failed": task_pb2.TASK_STATUS_FAILED}


def complete_request(task_id: Any, status: Any, result: Optional[Mapping[str, Any]],
                     error: Optional[str]) -> cs.CompleteTaskRequest:
    """The request, or TypeError / rc.InvalidArgument naming the argument at fault."""
    if not isinstance(task_id, str):
        raise TypeError(f"task_id: expected a string, got {type(task_id).__name__}")
    if not task_id:
        raise InvalidArgument("task_id: required", "INVALID_ARGUMENT")
    if not isinstance(status, str):
        raise TypeError(f"status: expected \"success\" or \"failed\", got {type(status).__name__}")
    if status not in _STATUS:
        raise InvalidArgument(f"status: expected \"success\" or \"failed\", got {status!r}", "INVALID_ARGUMENT")
    if error is not None and not isinstance(error, str):
        raise TypeError(f"error: expected a string, got {type(error).__name__}")
    if error and status != "failed":
        raise InvalidArgument("error: only with status=\"failed\"", "INVALID_ARGUMENT")
    return cs.CompleteTaskRequest(task_id=task_id, status=_STATUS[status], result=payload_text(result, "result"),
                                  error_message=error or "")


def accepted(answer: cs.CompleteTaskResponse) -> Dict[str, Any]:
    """As HTTP POST /tasks/{id}/complete answers: {"task_id", "attempt", "accepted": True}."""
    return {"task_id": answer.task_id, "attempt": answer.attempt, "accepted": True}
