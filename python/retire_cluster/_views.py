"""Tasks, workers, stats and published JS tasks as dicts: the HTTP bridge's JSON (common/json_view.cc).

One shape on every surface: ``client.get(id)`` equals ``GET /tasks/{id}`` and
``retire-cluster get ID --json``. Keep this file in step with common/json_view.cc (the
pytest suite compares the two on live tasks).
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any, Dict

from retire_cluster.v1 import client_service_pb2, task_pb2, worker_pb2

_PRIORITY = {task_pb2.PRIORITY_LOW: "low", task_pb2.PRIORITY_NORMAL: "normal",
             task_pb2.PRIORITY_HIGH: "high", task_pb2.PRIORITY_URGENT: "urgent"}
PRIORITY_VALUES = {name: value for value, name in _PRIORITY.items()}
_STATUS = {
    task_pb2.TASK_STATUS_PENDING: "pending", task_pb2.TASK_STATUS_QUEUED: "queued",
    task_pb2.TASK_STATUS_ASSIGNED: "assigned", task_pb2.TASK_STATUS_RUNNING: "running",
    task_pb2.TASK_STATUS_SUCCESS: "success", task_pb2.TASK_STATUS_FAILED: "failed",
    task_pb2.TASK_STATUS_CANCELLED: "cancelled", task_pb2.TASK_STATUS_TIMEOUT: "timeout",
}
STATUS_VALUES = {name: value for value, name in _STATUS.items()}
TERMINAL = frozenset({task_pb2.TASK_STATUS_SUCCESS, task_pb2.TASK_STATUS_FAILED,
                      task_pb2.TASK_STATUS_CANCELLED, task_pb2.TASK_STATUS_TIMEOUT})
_CONDITION = {task_pb2.DEPENDENCY_CONDITION_ANY: "any", task_pb2.DEPENDENCY_CONDITION_NOTOK: "notok"}
CONDITION_VALUES = {"ok": task_pb2.DEPENDENCY_CONDITION_OK, "any": task_pb2.DEPENDENCY_CONDITION_ANY,
                    "notok": task_pb2.DEPENDENCY_CONDITION_NOTOK}
PARENT_CLOSE_VALUES = {"cancel": task_pb2.PARENT_CLOSE_CANCEL, "abandon": task_pb2.PARENT_CLOSE_ABANDON}
_WORKER_STATUS = {worker_pb2.WORKER_STATUS_ONLINE: "online", worker_pb2.WORKER_STATUS_OFFLINE: "offline",
                  worker_pb2.WORKER_STATUS_DRAINING: "draining"}
DEFAULT_TIMEOUT_SECONDS = 300.0  # common/task_defaults.h
DEFAULT_MAX_RETRIES = 3


def status_name(status: int) -> str:
    return _STATUS.get(status, "unknown")


def time_or_none(ms: int):
    """RFC 3339 UTC with milliseconds, as the coordinator prints it; None for 0."""
    if ms == 0:
        return None
    t = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# json.loads's own scanner, called directly: json.loads spends most of its time around it
# (type checks, two whitespace regex matches), several times the scan of a small result.
_scan = json.JSONDecoder().scan_once


def parse_or_string(text: str) -> Any:
    """JSON text decoded; "" is {} and text that is not JSON stays a string (as the views do)."""
    if not text:
        return {}
    try:
        value, end = _scan(text, 0)
        if end == len(text):
            return value
    except (StopIteration, ValueError, RecursionError):
        pass  # leading whitespace, or not JSON: json.loads decides
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def result_value(task: task_pb2.Task) -> Any:
    """What ``TaskFuture.result()`` returns: the task's result JSON decoded (None if empty)."""
    return parse_or_string(task.result) if task.result else None


def requirements_to_dict(r: task_pb2.Requirements) -> Dict[str, Any]:
    return {
        "min_cpu_cores": r.min_cpu_cores,
        "min_memory_gb": r.min_memory_gb,
        "min_storage_gb": r.min_storage_gb,
        "gpu_required": r.gpu_required,
        "internet_required": r.internet_required,
        "required_platform": r.required_platform,
        "required_role": r.required_role,
        "required_tags": list(r.required_tags),
        "target_device_id": r.target_device_id,
        "timeout_seconds": r.timeout_seconds if r.HasField("timeout_seconds") else DEFAULT_TIMEOUT_SECONDS,
        "max_retries": r.max_retries if r.HasField("max_retries") else DEFAULT_MAX_RETRIES,
        "browser_required": r.browser_required,
    }


def task_to_dict(t: task_pb2.Task) -> Dict[str, Any]:
    """The task as the HTTP API shows it (field order too)."""
    s = t.spec
    u = t.resource_usage
    d: Dict[str, Any] = {
        "task_id": t.task_id,
        "task_type": s.task_type,
        "payload": parse_or_string(s.payload),
        "priority": _PRIORITY.get(s.priority, "normal"),
        "requirements": requirements_to_dict(s.requirements),
        "metadata": dict(s.metadata),
        "idempotency_key": s.idempotency_key,
        "owner": t.owner,
        "status": status_name(t.status),
        "result": result_value(t),
        "error_message": t.error_message,
        "stdout": t.stdout,
        "stderr": t.stderr,
        "exit_code": t.exit_code,
        "execution_time_seconds": t.execution_time_seconds,
        "worker_device_id": t.worker_device_id,
        "attempts": t.attempts,
        "created_at": time_or_none(t.created_at_ms),
        "started_at": time_or_none(t.started_at_ms),
        "finished_at": time_or_none(t.finished_at_ms),
        "unschedulable_reason": t.unschedulable_reason,
        "attempt_history": [{
            "attempt": a.number,
            "worker_device_id": a.worker_device_id,
            "assigned_at": time_or_none(a.assigned_at_ms),
            "started_at": time_or_none(a.started_at_ms),
            "finished_at": time_or_none(a.finished_at_ms),
            "status": status_name(a.status),
            "error_message": a.error_message,
        } for a in t.attempt_history],
        "resource_usage": {"cpu_seconds": u.cpu_seconds, "peak_rss_bytes": u.peak_rss_bytes, "pid": u.pid,
                           "cpu_percent": u.cpu_percent, "memory_bytes": u.memory_bytes,
                           "sampled_at": time_or_none(u.sampled_at_ms)},
    }
    if s.after:
        after = []
        for dep in s.after:
            one: Dict[str, Any] = ({"after_index": dep.after_index} if dep.HasField("after_index")
                                   else {"task_id": dep.task_id})
            one["condition"] = _CONDITION.get(dep.condition, "ok")
            after.append(one)
        d["after"] = after
    if s.parent_close != task_pb2.PARENT_CLOSE_UNSPECIFIED:
        d["parent_close"] = "abandon" if s.parent_close == task_pb2.PARENT_CLOSE_ABANDON else "cancel"
    if t.parent_task_id:
        d["parent_task_id"] = t.parent_task_id
    if t.root_task_id:
        d["root_task_id"] = t.root_task_id
    d["depth"] = t.depth
    if t.ancestor_task_ids:
        d["ancestor_task_ids"] = list(t.ancestor_task_ids)
    if t.waiting_for:
        d["waiting_for"] = list(t.waiting_for)
    if t.HasField("signature"):
        sig = t.signature
        d["signature"] = {
            "worker_device_id": sig.worker_device_id,
            "attempt": sig.attempt,
            "result_digest": sig.result_digest,
            "signed_at": time_or_none(sig.signed_at_ms),
            "signature": base64.b64encode(sig.signature).decode("ascii"),
            "public_key": sig.public_key.hex(),
        }
        # Signed in a batch (issue 18): the signed root and this result's way up to it.
        if sig.batch_size > 0:
            d["signature"]["batch_root"] = sig.batch_root.hex()
            d["signature"]["leaf_index"] = sig.leaf_index
            d["signature"]["batch_size"] = sig.batch_size
            d["signature"]["proof"] = [h.hex() for h in sig.proof]
    else:
        d["signature"] = None
    return d


def worker_to_dict(w: worker_pb2.Worker) -> Dict[str, Any]:
    c = w.capabilities
    return {
        "device_id": c.device_id,
        "hostname": c.hostname,
        "status": _WORKER_STATUS.get(w.status, "unknown"),
        "role": c.role,
        "platform": c.platform,
        "arch": c.arch,
        "cpu_cores": c.cpu_cores,
        "memory_gb": c.memory_gb,
        "storage_gb": c.storage_gb,
        "gpu": c.gpu,
        "gpu_name": c.gpu_name,
        "internet": c.internet,
        "tags": list(c.tags),
        "task_types": list(c.task_types),
        "slots": c.slots,
        "running": w.running,
        "load": w.load,
        "load_average": w.load_average,
        "last_heartbeat": time_or_none(w.last_heartbeat_ms),
        "version": c.version,
        "public_key": c.public_key.hex(),
        "containment": c.containment,
        "cgroup_limits": list(c.cgroup_limits),
        "drained": w.drained,
        "accepted_submitters": list(c.accepted_submitters),
    }


def stats_to_dict(s: worker_pb2.Stats) -> Dict[str, Any]:
    return {
        "online_devices": s.online_devices,
        "total_devices": s.total_devices,
        "total_slots": s.total_slots,
        "busy_slots": s.busy_slots,
        "tasks": dict(s.tasks),
        "queued_by_priority": dict(s.queued_by_priority),
        "tasks_scheduled": s.tasks_scheduled,
        "tasks_succeeded": s.tasks_succeeded,
        "tasks_failed": s.tasks_failed,
        "uptime_seconds": s.uptime_seconds,
    }


def js_task_to_dict(t: client_service_pb2.JsTask) -> Dict[str, Any]:
    """One version of a published JS task, as the HTTP API's ``/js-tasks`` (common/js_task_json.cc).

    Keys are the proto's JsTask field names; ``code`` only when the answer carries it
    (GetJsTask's does, lists and PublishJsTask's do not).
    """
    d: Dict[str, Any] = {
        "name": t.name,
        "version": t.version,
        "versions": t.versions,
        "sha256": t.sha256,
        "description": t.description,
        "params": [{"name": p.name, "type": p.type, "description": p.description, "optional": p.optional}
                   for p in t.params],
        "returns": t.returns,
        "owner": t.owner,
        "created_at_ms": t.created_at_ms,
        "code_bytes": t.code_bytes,
    }
    if t.code:
        d["code"] = t.code
    return d
