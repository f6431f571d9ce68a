"""``client.tasks``: published JavaScript tasks (DESIGN.md "JavaScript tasks").

A published task is a named, versioned ``js`` module kept by the coordinator. ``publish``
stores a new version (its name from the JSDoc ``@task`` tag, or ``name=``), ``list``,
``show`` and ``remove`` read and drop versions, and ``run`` submits a ``js`` task
``{"name", "version"?, "input", "memory_mb"?}`` through the client's ordinary submit path
(so runs are batched like any submit and give the usual futures). The coordinator resolves
the name when it accepts the task: the stored payload then carries the code, version and
sha256 of the version that was current.

:class:`JsTasks` serves ``rc.Client`` and :class:`AioJsTasks` serves ``rc.aio.Client``;
both check arguments the same way (:func:`module_code` and the ``_`` helpers below) before
anything is sent.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from retire_cluster import _specs
from retire_cluster._views import js_task_to_dict
from retire_cluster.errors import InvalidArgument
from retire_cluster.v1 import client_service_pb2 as cs

if TYPE_CHECKING:  # pragma: no cover
    from retire_cluster import aio
    from retire_cluster.client import Client
    from retire_cluster.futures import TaskFuture

TASK_TYPE = "js"
_MAX_INT32 = 2**31 - 1
MAX_MEMORY_MB = 2048  # the coordinator's and the handler's bound (DESIGN.md "JavaScript tasks")

PathOrCode = Union[str, "os.PathLike[str]"]


def module_code(path_or_code: Any) -> str:
    """The module's text: ``path_or_code`` itself when it is code, else the file's contents.

    A ``str`` holding a newline or ``module.exports`` is code; any other ``str`` and every
    ``os.PathLike`` (``pathlib.Path``) is a file path, read as UTF-8. A ``str`` that is
    neither code nor an existing file raises ``FileNotFoundError`` naming it.
    """
    if isinstance(path_or_code, str):
        if not path_or_code:
            raise InvalidArgument("path_or_code: empty (give a .js file's path or the module's code)",
                                  "INVALID_ARGUMENT")
        if "\n" in path_or_code or "module.exports" in path_or_code:
            return path_or_code
        path = path_or_code
    elif isinstance(path_or_code, os.PathLike):
        path = os.fspath(path_or_code)
        if not isinstance(path, str):
            path = os.fsdecode(path)
    elif isinstance(path_or_code, (bytes, bytearray)):
        raise TypeError("path_or_code: expected a file path or the module's code as a str, got bytes "
                        "(decode the code first)")
    else:
        raise TypeError(f"path_or_code: expected a file path or the module's code as a str, "
                        f"got {type(path_or_code).__name__}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        hint = ("" if isinstance(path_or_code, os.PathLike) else
                " (a str is taken as code only when it holds a newline or 'module.exports')")
        raise FileNotFoundError(f"path_or_code: no file {path!r}{hint}") from None
    except OSError as e:
        raise OSError(e.errno, f"path_or_code: cannot read {path!r}: {e.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidArgument(f"path_or_code: {path!r} is not UTF-8 text (byte {e.start})",
                              "INVALID_ARGUMENT") from None


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"name: expected a string, got {type(value).__name__}")
    if not value:
        raise InvalidArgument("name: required, a published task's name", "INVALID_ARGUMENT")
    return value


def _publish_name(value: Any) -> str:
    """``name=`` of publish: None (or "") keeps the JSDoc ``@task`` name."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"name: expected a string or None, got {type(value).__name__}")
    return value


def _version(value: Any, none_is: int = 0) -> int:
    """None is ``none_is`` (0: the latest, or every version for remove); else 1..2^31-1."""
    if value is None:
        return none_is
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"version: expected an integer, got {type(value).__name__}")
    if not 1 <= value <= _MAX_INT32:
        raise InvalidArgument(f"version: expected a version number >= 1 (None: the latest), got {value}",
                              "INVALID_ARGUMENT")
    return value


def run_payload(name: Any, input: Any, version: Any, memory_mb: Any) -> Dict[str, Any]:
    """The ``js`` payload that runs a published task, checked (each mistake names its argument)."""
    payload: Dict[str, Any] = {"name": _name(name)}
    if version is not None:
        payload["version"] = _version(version)
    if input is None:
        input = {}
    try:
        _specs._ENCODE(input)
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidArgument(f"input: not JSON-serialisable: {e}", "INVALID_ARGUMENT") from None
    payload["input"] = input
    if memory_mb is not None:
        if not isinstance(memory_mb, int) or isinstance(memory_mb, bool):
            raise TypeError(f"memory_mb: expected an integer, got {type(memory_mb).__name__}")
        if not 1 <= memory_mb <= MAX_MEMORY_MB:
            raise InvalidArgument(f"memory_mb: expected 1..{MAX_MEMORY_MB} (MiB), got {memory_mb}",
                                  "INVALID_ARGUMENT")
        payload["memory_mb"] = memory_mb
    return payload


def _published(answer: cs.PublishJsTaskResponse) -> Dict[str, Any]:
    d = js_task_to_dict(answer.task)
    d["unchanged"] = answer.unchanged
    return d


class JsTasks:
    """``client.tasks``: publish, list, show, remove and run published JavaScript tasks.

    ::

        t = client.tasks.publish("whois.js")           # {"name": "whois", "version": 1, ..., "unchanged": False}
        client.tasks.list()                            # [{"name": "whois", "version": 1, ...}]
        client.tasks.show("whois")["code"]             # the latest version's code
        f = client.tasks.run("whois", {"domain": "example.org"}, timeout=60)
        f.result(timeout=90)                           # the module's return value
        client.tasks.remove("whois")                   # 1 (versions removed)

    The dicts' keys are the proto's ``JsTask`` field names, as the HTTP API's ``/js-tasks``.
    The coordinator's refusals raise ``rc.InvalidArgument`` (no ``@task``, a bad name, code
    too large), ``rc.NotFound`` (no such name or version), ``rc.PermissionDenied`` (the name
    belongs to another submitter, or the token's role may not publish).
    """

    __slots__ = ("_client",)

    def __init__(self, client: "Client") -> None:
        self._client = client

    def publish(self, path_or_code: PathOrCode, name: Optional[str] = None) -> Dict[str, Any]:
        """Stores a new version of a module; returns it as a dict plus ``"unchanged"``.

        ``path_or_code``: a ``str`` holding a newline or ``module.exports`` is the module's
        code; any other ``str`` or an ``os.PathLike`` is the path of a ``.js`` file (read as
        UTF-8; a missing file raises ``FileNotFoundError``). The module must start with a
        JSDoc block holding ``@task NAME`` (``@description``, ``@param``, ``@returns`` are
        kept too). ``name``: publish under this name instead of the ``@task`` one.

        Code identical to the latest version's stores nothing: the answer is that version
        with ``unchanged`` True. The code is not in the answer (``show`` gives it).
        """
        request = cs.PublishJsTaskRequest(code=module_code(path_or_code), name=_publish_name(name))
        c = self._client
        return _published(c._unary(c._stub.PublishJsTask, request))

    def list(self) -> List[Dict[str, Any]]:
        """The latest version of every published name, by name, as dicts (no code)."""
        c = self._client
        return [js_task_to_dict(t) for t in c._unary(c._stub.ListJsTasks, cs.ListJsTasksRequest()).tasks]

    def show(self, name: str, version: Optional[int] = None) -> Dict[str, Any]:
        """One version (None: the latest) as a dict, with its ``code``. ``rc.NotFound`` if unknown."""
        request = cs.GetJsTaskRequest(name=_name(name), version=_version(version))
        c = self._client
        return js_task_to_dict(c._unary(c._stub.GetJsTask, request))

    def remove(self, name: str, version: Optional[int] = None) -> int:
        """Removes one version, or every version (None); returns how many were removed.

        Tasks already accepted keep the code they were resolved with; a removed version's
        number is not used again. Owner or admin only; ``rc.NotFound`` if unknown.
        """
        request = cs.RemoveJsTaskRequest(name=_name(name), version=_version(version))
        c = self._client
        return c._unary(c._stub.RemoveJsTask, request).removed_versions

    def run(self, name: str, input: Any = None, *, version: Optional[int] = None,
            memory_mb: Optional[int] = None, **submit_options: Any) -> "TaskFuture":
        """Submits the published task ``name``; returns a :class:`TaskFuture` at once.

        ``input``: any JSON value, the module's first argument (None: ``{}``). ``version``:
        run this version (None: the latest when the coordinator accepts the task).
        ``memory_mb``: the sandbox's memory limit in MiB, 1..2048 (default 64).
        ``submit_options``: every keyword of :meth:`Client.submit` (``timeout``,
        ``priority``, ``max_retries``, ``tags``, ``device``, ``metadata``, ``after``, ...).

        The task is an ordinary ``js`` task: ``f.result()`` gives the module's return value
        or raises ``rc.TaskFailed`` (a thrown error, a limit) / ``rc.TaskTimeout``. An
        unknown name or version is refused by the coordinator: ``rc.NotFound`` from
        ``f.task_id`` and ``f.result()``.
        """
        return self._client.submit(TASK_TYPE, run_payload(name, input, version, memory_mb), **submit_options)

    def __repr__(self) -> str:
        return f"<retire_cluster tasks of {self._client!r}>"


class AioJsTasks:
    """``rc.aio.Client.tasks``: :class:`JsTasks` with ``await`` (every call a coroutine).

    ::

        async with rc.aio.Client() as c:
            await c.tasks.publish("whois.js")
            fut = await c.tasks.run("whois", {"domain": "example.org"})   # once accepted
            print(await fut)
    """

    __slots__ = ("_client",)

    def __init__(self, client: "aio.Client") -> None:
        self._client = client

    async def publish(self, path_or_code: PathOrCode, name: Optional[str] = None) -> Dict[str, Any]:
        """As :meth:`JsTasks.publish`: a new version as a dict plus ``"unchanged"``.

        A file path is read here, on the event loop (modules are small: 512 KiB at most).
        """
        request = cs.PublishJsTaskRequest(code=module_code(path_or_code), name=_publish_name(name))
        return _published(await self._client._call("PublishJsTask", request))

    async def list(self) -> List[Dict[str, Any]]:
        """The latest version of every published name, by name, as dicts (no code)."""
        answer = await self._client._call("ListJsTasks", cs.ListJsTasksRequest())
        return [js_task_to_dict(t) for t in answer.tasks]

    async def show(self, name: str, version: Optional[int] = None) -> Dict[str, Any]:
        """One version (None: the latest) with its ``code``; ``rc.NotFound`` if unknown."""
        request = cs.GetJsTaskRequest(name=_name(name), version=_version(version))
        return js_task_to_dict(await self._client._call("GetJsTask", request))

    async def remove(self, name: str, version: Optional[int] = None) -> int:
        """Removes one version, or every version (None); how many were removed."""
        request = cs.RemoveJsTaskRequest(name=_name(name), version=_version(version))
        return (await self._client._call("RemoveJsTask", request)).removed_versions

    async def run(self, name: str, input: Any = None, *, version: Optional[int] = None,
                  memory_mb: Optional[int] = None, **submit_options: Any) -> "aio.TaskFuture":
        """As :meth:`JsTasks.run`; returns the :class:`rc.aio.TaskFuture` once the task is accepted.

        ``submit_options`` are :meth:`rc.aio.Client.submit`'s keywords. An unknown name or
        version raises ``rc.NotFound`` here.
        """
        return await self._client.submit(TASK_TYPE, run_payload(name, input, version, memory_mb),
                                         **submit_options)

    def __repr__(self) -> str:
        return f"<retire_cluster tasks of {self._client!r}>"
