"""Task specs from Python arguments, checked before anything is sent.

Shared by the sync and the asyncio client, so both refuse the same mistakes with the same
words: a wrong type is a ``TypeError`` and a bad value an :class:`InvalidArgument`, each
naming the argument; an unknown keyword is Python's own ``TypeError`` (every option is
keyword-only).
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from retire_cluster.errors import InvalidArgument
from retire_cluster.v1 import task_pb2
from retire_cluster._views import CONDITION_VALUES, PARENT_CLOSE_VALUES, PRIORITY_VALUES

# One entry of ``after=``: a task id, anything with a ``task_id`` (a TaskFuture), a
# ``(task_id, condition)`` pair, or a dict {"task_id"|"after_index", "condition"}.
Dependency = Union[str, Any, tuple, Mapping[str, Any]]

_MAX_INT32 = 2**31 - 1


def _make_encode():
    """json.dumps(allow_nan=False, separators=(",", ":")) without its per-call setup.

    json.dumps builds a new encoder on every call (3 us, more than the rest of a submit);
    the C encoder made once does the same work in a fifth of that. Cycles raise
    RecursionError instead of ValueError (both are refused the same way).
    """
    encoder = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return encoder.encode
    once = make(None, encoder.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False)
    join = "".join
    return lambda value: join(once(value, 0))


_ENCODE = _make_encode()


def _check_type(name: str, value: Any, types, what: str) -> None:
    if not isinstance(value, types) or isinstance(value, bool) and bool not in _as_tuple(types):
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__}")


def _as_tuple(t):
    return t if isinstance(t, tuple) else (t,)


def _text(name: str, value: Any) -> str:
    _check_type(name, value, str, "a string")
    return value


def _number(name: str, value: Any, minimum: float = 0.0, positive: bool = False) -> float:
    _check_type(name, value, (int, float), "a number")
    v = float(value)
    if math.isnan(v) or math.isinf(v) or v < minimum or (positive and v <= 0):
        raise InvalidArgument(f"{name}: expected a {'positive' if positive else 'non-negative'} finite number, "
                              f"got {value!r}", "INVALID_ARGUMENT")
    return v


def _integer(name: str, value: Any, minimum: int = 0) -> int:
    _check_type(name, value, int, "an integer")
    if value < minimum or value > _MAX_INT32:
        raise InvalidArgument(f"{name}: expected an integer in [{minimum}, {_MAX_INT32}], got {value}",
                              "INVALID_ARGUMENT")
    return value


def _strings(name: str, value: Any) -> list:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise TypeError(f"{name}: expected a list of strings, got {type(value).__name__}")
    out = []
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise TypeError(f"{name}[{i}]: expected a string, got {type(v).__name__}")
        out.append(v)
    return out


def payload_text(payload: Any, name: str = "payload") -> str:
    """The payload as JSON object text; None is {}."""
    if payload is None:
        return "{}"
    if type(payload) is not dict and not isinstance(payload, Mapping):
        raise TypeError(f"{name}: expected a dict (a JSON object), got {type(payload).__name__}")
    try:
        return _ENCODE(payload)
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidArgument(f"{name}: not JSON-serialisable: {e}", "INVALID_ARGUMENT") from None


def _dependency(i: int, dep: Dependency, out: task_pb2.Dependency) -> None:
    name = f"after[{i}]"
    condition = "ok"
    if isinstance(dep, str):
        out.task_id = dep
    elif isinstance(dep, tuple):
        if len(dep) != 2:
            raise TypeError(f"{name}: expected (task_id, condition), got a tuple of {len(dep)}")
        out.task_id = _text(f"{name}[0]", getattr(dep[0], "task_id", dep[0]))
        condition = _text(f"{name}[1]", dep[1])
    elif isinstance(dep, Mapping):
        unknown = set(dep) - {"task_id", "after_index", "condition"}
        if unknown:
            raise InvalidArgument(f"{name}: unknown key {sorted(unknown)[0]!r} "
                                  "(expected task_id or after_index, and condition)", "INVALID_ARGUMENT")
        if ("task_id" in dep) == ("after_index" in dep):
            raise InvalidArgument(f"{name}: give exactly one of task_id and after_index", "INVALID_ARGUMENT")
        if "task_id" in dep:
            out.task_id = _text(f"{name}.task_id", dep["task_id"])
        else:
            out.after_index = _integer(f"{name}.after_index", dep["after_index"])
        condition = _text(f"{name}.condition", dep.get("condition", "ok"))
    elif hasattr(dep, "task_id"):
        out.task_id = _text(f"{name}.task_id", dep.task_id)  # a TaskFuture: waits until accepted
    else:
        raise TypeError(f"{name}: expected a task id, a TaskFuture, (task_id, condition) or a dict, "
                        f"got {type(dep).__name__}")
    if condition not in CONDITION_VALUES:
        raise InvalidArgument(f"{name}: unknown condition {condition!r} (expected ok, any or notok)",
                              "INVALID_ARGUMENT")
    out.condition = CONDITION_VALUES[condition]


def build_spec(task_type: str, payload: Optional[Mapping[str, Any]] = None, *,
               priority: Optional[str] = None,
               timeout: Optional[float] = None,
               max_retries: Optional[int] = None,
               min_cpu_cores: Optional[int] = None,
               min_memory_gb: Optional[float] = None,
               min_storage_gb: Optional[float] = None,
               gpu: bool = False,
               internet: bool = False,
               platform: Optional[str] = None,
               role: Optional[str] = None,
               tags: Optional[Iterable[str]] = None,
               device: Optional[str] = None,
               metadata: Optional[Mapping[str, str]] = None,
               idempotency_key: Optional[str] = None,
               after: Optional[Sequence[Dependency]] = None,
               parent_close: Optional[str] = None,
               payload_json: Optional[str] = None) -> task_pb2.TaskSpec:
    """A TaskSpec from the submit arguments (see Client.submit for their meaning).

    ``payload_json``: the payload already as JSON object text (map() encodes once per item).
    """
    _text("task_type", task_type)
    if not task_type:
        raise InvalidArgument("task_type: required, a handler name such as 'echo'", "INVALID_ARGUMENT")
    spec = task_pb2.TaskSpec(task_type=task_type,
                             payload=payload_json if payload_json is not None else payload_text(payload))
    if priority is not None:
        _text("priority", priority)
        if priority not in PRIORITY_VALUES:
            raise InvalidArgument(f"priority: unknown priority {priority!r} (expected low, normal, high or urgent)",
                                  "INVALID_ARGUMENT")
        spec.priority = PRIORITY_VALUES[priority]
    r = spec.requirements
    if timeout is not None:
        r.timeout_seconds = _number("timeout", timeout, positive=True)
    if max_retries is not None:
        r.max_retries = _integer("max_retries", max_retries)
    if min_cpu_cores is not None:
        r.min_cpu_cores = _integer("min_cpu_cores", min_cpu_cores)
    if min_memory_gb is not None:
        r.min_memory_gb = _number("min_memory_gb", min_memory_gb)
    if min_storage_gb is not None:
        r.min_storage_gb = _number("min_storage_gb", min_storage_gb)
    _check_type("gpu", gpu, bool, "True or False")
    _check_type("internet", internet, bool, "True or False")
    r.gpu_required = gpu
    r.internet_required = internet
    if platform is not None:
        r.required_platform = _text("platform", platform)
    if role is not None:
        r.required_role = _text("role", role)
    if tags is not None:
        r.required_tags.extend(_strings("tags", tags))
    if device is not None:
        r.target_device_id = _text("device", device)
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(f"metadata: expected a dict of strings, got {type(metadata).__name__}")
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata[{k!r}]: keys and values must be strings, got {type(v).__name__}")
            spec.metadata[k] = v
    if idempotency_key is not None:
        spec.idempotency_key = _text("idempotency_key", idempotency_key)
    if after is not None:
        if isinstance(after, (str, Mapping)) or not isinstance(after, (list, tuple)):
            raise TypeError(f"after: expected a list of dependencies, got {type(after).__name__}")
        for i, dep in enumerate(after):
            _dependency(i, dep, spec.after.add())
    if parent_close is not None:
        _text("parent_close", parent_close)
        if parent_close not in PARENT_CLOSE_VALUES:
            raise InvalidArgument(f"parent_close: expected cancel or abandon, got {parent_close!r}",
                                  "INVALID_ARGUMENT")
        spec.parent_close = PARENT_CLOSE_VALUES[parent_close]
    return spec
