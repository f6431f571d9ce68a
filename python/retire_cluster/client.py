"""The synchronous client: ``rc.Client`` (DESIGN.md "Python SDK").

Every call is a gRPC call to the coordinator's ClientService, except ``submit``/``map``
(queued to a batcher that sends SubmitBatch calls) and the waits behind futures (one
WaitTasks stream per client, see _waiter.py).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import math
import time
import weakref
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import grpc

from retire_cluster import _completion, _connection, _specs, _views
from retire_cluster._batcher import MAX_BATCH, MAX_IN_FLIGHT, SubmitBatcher, simple_spec, with_payload
from retire_cluster._js_tasks import JsTasks
from retire_cluster._specs import Dependency
from retire_cluster._waiter import Waiter
from retire_cluster.errors import DeadlineExceeded, InvalidArgument, from_grpc
from retire_cluster.futures import TaskFuture
from retire_cluster.v1 import client_service_pb2 as cs
from retire_cluster.v1 import client_service_pb2_grpc as cs_grpc
from retire_cluster.v1 import task_pb2

_payload_text = _specs.payload_text


def _close_at_exit(ref: "weakref.ref[Client]") -> None:
    client = ref()
    if client is not None:
        client.close()


def _release(waiter: Waiter, batcher: SubmitBatcher, *channels: grpc.Channel) -> None:
    """A client dropped without close(): end its threads and connections.

    Nothing is queued then: queued futures (and so the client) are reachable from the
    batcher's sender threads until a call carries them.
    """
    batcher.release()
    waiter.close(0)
    for channel in channels:
        channel.close()


class Client:
    """A connection to the coordinator.

    ``rc.Client(target=None, token=None, *, tls_ca=None, tls_cert=None, tls_key=None,
    rpc_timeout=10.0)``

    * ``target``: ``HOST:PORT`` or ``unix:PATH``; default ``$RETIRE_CLUSTER_COORDINATOR``,
      else ``127.0.0.1:8080``. Inside a task the worker sets it (with the token), so the
      same code submits children of the task there.
    * ``token``: the bearer token; default ``$RETIRE_CLUSTER_TOKEN``.
    * ``tls_ca``: CA file; TLS is on when given (default ``$RETIRE_CLUSTER_TLS_CA``).
      ``tls_cert`` and ``tls_key``: a client certificate for mutual TLS
      (``$RETIRE_CLUSTER_TLS_CERT`` / ``_KEY``).
    * ``rpc_timeout``: the deadline in seconds of each call (not of waiting for tasks).

    Nothing is sent until the first call. Use it as a context manager, or call
    :meth:`close`: it first sends every queued submit. A client that is never closed is
    closed when the interpreter exits. Thread-safe.
    """

    def __init__(self, target: Optional[str] = None, token: Optional[str] = None, *,
                 tls_ca: Optional[str] = None, tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
                 rpc_timeout: float = 10.0) -> None:
        self._conn = _connection.resolve(target, token, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
                                         rpc_timeout=rpc_timeout)
        self._rpc_timeout = self._conn.rpc_timeout
        self._metadata = self._conn.metadata
        self._channel = self._conn.channel(_connection.MAIN_CHANNEL_OPTIONS)
        self._stub = cs_grpc.ClientServiceStub(self._channel)
        # The wait stream has its own connection with a small receive window: while this
        # process is busy, the coordinator's writes wait and the results finishing meanwhile
        # travel together in one message (each message read costs a thread hop in grpcio).
        self._wait_channel = self._conn.channel(_connection.WAIT_CHANNEL_OPTIONS)
        self._waiter = Waiter(self._wait_channel, self._metadata, self._conn.target)
        self._batcher = SubmitBatcher(self._channel, self._metadata, self._rpc_timeout, self._conn.target,
                                      self._waiter.add)
        self._closed = False
        self._at_exit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._at_exit)
        self._finalizer = weakref.finalize(self, _release, self._waiter, self._batcher, self._channel,
                                           self._wait_channel)
        self._finalizer.atexit = False  # at exit, _close_at_exit sends the queued submits first

    @property
    def target(self) -> str:
        """The coordinator's address (``HOST:PORT`` or ``unix:PATH``)."""
        return self._conn.target

    @property
    def tasks(self) -> JsTasks:
        """Published JavaScript tasks: ``client.tasks.publish(path_or_code)``, ``.list()``,
        ``.show(name)``, ``.remove(name)``, ``.run(name, input, **submit_options)`` (see JsTasks)."""
        return JsTasks(self)

    # -- submitting ------------------------------------------------------------------------

    def submit(self, task_type: str, payload: Optional[Mapping[str, Any]] = None, *,
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
               parent_close: Optional[str] = None) -> TaskFuture:
        """Submit one task; returns a :class:`TaskFuture` at once.

        ::

            f = client.submit("echo", {"message": "hi"}, priority="high", tags=["gpu-box"], timeout=60)
            f.task_id           # blocks until the coordinator accepted it
            f.result(timeout=30)  # {"message": "hi"}

        The arguments are checked before anything is sent; the spec then joins the
        client's submit queue (sent at once when the connection is idle, else together
        with the other queued submits in one SubmitBatch call).

        Arguments:

        task_type
            The handler: ``echo``, ``sleep``, ``system_info``, ``command``,
            ``http_request``, ``python_eval``, ``python_script``, ``node_task`` or a
            plugin's name.
        payload
            The handler's input: a dict that ``json.dumps`` accepts (None is ``{}``).
        priority
            ``"low"``, ``"normal"`` (default), ``"high"`` or ``"urgent"``: a higher priority
            always dispatches first among the tasks a worker can run.
        timeout
            Seconds the task may run before it ends ``timeout`` (default 300).
        max_retries
            How often a failed attempt is retried (default 3); then the task ends ``failed``.
        min_cpu_cores, min_memory_gb, min_storage_gb
            Run only on a worker with at least this many cores / GB of RAM / GB of disk.
        gpu, internet
            True: run only on a worker with a GPU / with internet access.
        platform
            Run only on this platform: ``linux``, ``windows``, ``darwin``, ``android``.
        role
            Run only on a worker of this role (``worker``, ``compute``, ``storage``,
            ``mobile``, ...).
        tags
            Run only on a worker that has every one of these tags.
        device
            Run only on the worker with this device id.
        metadata
            A dict of strings stored with the task and returned untouched.
        idempotency_key
            A second submit with the same key returns the first task (the future then
            follows that task) instead of creating a new one. Inside a task, keys are scoped
            to the parent task, so a retried parent finds the children it already submitted.
        after
            Dependencies: the task stays ``pending`` until each has ended, then queues.
            Each entry is a task id, a :class:`TaskFuture` (its submit is awaited first),
            a ``(task_id, condition)`` pair or a dict ``{"task_id": ..., "condition": ...}``.
            ``condition`` is ``"ok"`` (default: the dependency succeeded), ``"any"`` (it
            ended, however) or ``"notok"`` (it did not succeed). When a condition can no
            longer hold the task ends ``cancelled``, naming the dependency. Unknown ids and
            cycles are refused (``rc.InvalidArgument``).
        parent_close
            For a child submitted from inside a task: ``"cancel"`` (default: the child is
            cancelled when its parent ends without success) or ``"abandon"`` (it keeps
            running).

        Returns a :class:`TaskFuture`: ``task_id``, ``result()``, ``exception()``,
        ``done()``, ``cancel()``, ``task()``, callbacks; ``concurrent.futures.wait`` and
        ``as_completed`` work on it. A task ending ``failed``, ``timeout`` or
        ``cancelled`` makes ``result()`` raise ``rc.TaskFailed``, ``rc.TaskTimeout`` or
        ``rc.TaskCancelled`` (``.task`` is the final task dict).

        Raises at once (nothing sent): ``TypeError`` for a wrong type or an unknown
        keyword, ``rc.InvalidArgument`` (a ``ValueError``) for a bad value or a payload
        that is not JSON-serialisable, each naming the argument; ``RuntimeError`` after
        :meth:`close`. A refusal by the coordinator (``rc.InvalidArgument``,
        ``rc.PermissionDenied``, ``rc.ResourceExhausted`` past a limit,
        ``rc.Unauthenticated``, ``rc.Unavailable``) fails the future and ``task_id``.
        """
        if (priority is None and timeout is None and max_retries is None and min_cpu_cores is None
                and min_memory_gb is None and min_storage_gb is None and gpu is False and internet is False
                and platform is None and role is None and tags is None and device is None and metadata is None
                and idempotency_key is None and after is None and parent_close is None
                and type(task_type) is str and task_type):
            spec = simple_spec(task_type, _payload_text(payload))  # the common case, cheap
        else:
            spec = _specs.build_spec(
                task_type, payload, priority=priority, timeout=timeout, max_retries=max_retries,
                min_cpu_cores=min_cpu_cores, min_memory_gb=min_memory_gb, min_storage_gb=min_storage_gb,
                gpu=gpu, internet=internet, platform=platform, role=role, tags=tags, device=device,
                metadata=metadata, idempotency_key=idempotency_key, after=after,
                parent_close=parent_close).SerializeToString()
        future = TaskFuture(self)
        self._batcher.add(spec, future)
        return future

    def map(self, task_type: str, payloads: Iterable[Optional[Mapping[str, Any]]], *,
            timeout: Optional[float] = None, return_exceptions: bool = False, **options: Any) -> List[Any]:
        """Submit one task per payload and return their results, in order.

        ::

            client.map("python_eval", [{"expression": "1+1"}, {"expression": "2*3"}])  # [{"value": 2}, {"value": 6}]

        ``options`` are :meth:`submit`'s keywords, the same for every task. Every payload
        is checked before anything is sent; the specs travel in as few SubmitBatch calls
        as the batch limit allows.

        ``timeout``: seconds for the whole call (None: no limit); past it
        ``concurrent.futures.TimeoutError`` (the tasks keep running). It is not the tasks'
        run timeout: for that, submit with ``timeout=`` and collect the futures.

        The first task (in order) that did not succeed raises its exception
        (``rc.TaskFailed``, ``rc.TaskTimeout``, ``rc.TaskCancelled``, or the submit's
        refusal); with ``return_exceptions=True`` the exception takes its place in the list
        instead. A connection lost while waiting raises ``rc.Unavailable`` either way.
        """
        items = list(payloads)
        texts = [_payload_text(p, f"payloads[{i}]") for i, p in enumerate(items)]
        template = _specs.build_spec(task_type, None, **options)  # checks task_type and options
        if options:
            template.ClearField("payload")
            head = template.SerializeToString()
            specs = [with_payload(head, text) for text in texts]
        else:
            specs = [simple_spec(task_type, text) for text in texts]
        futures = [TaskFuture(self) for _ in specs]
        if not futures:
            return []
        self._batcher.add_many(specs, futures)
        deadline = None if timeout is None else time.monotonic() + timeout
        results: List[Any] = []
        for f in futures:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                results.append(f.result(left))
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError, Exception) as e:
                if not f.done() or not return_exceptions:
                    raise  # a timeout or a lost connection, or the first failure
                results.append(e)
        return results

    def future(self, task_id: str) -> TaskFuture:
        """A :class:`TaskFuture` for an existing task (submitted elsewhere, or earlier).

        Raises ``rc.NotFound`` from ``result()`` when no such task exists.
        """
        _check_id(task_id)
        if self._closed:
            raise RuntimeError("the client is closed")
        f = TaskFuture(self, task_id)
        self._waiter.add([f])
        return f

    # -- reading and cancelling ------------------------------------------------------------

    def get(self, task_id: str) -> Dict[str, Any]:
        """The task's current record as a dict, as HTTP ``GET /tasks/{id}``. ``rc.NotFound`` if unknown."""
        _check_id(task_id)
        return _views.task_to_dict(self._get_call(task_id))

    def wait(self, task_id: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Waits until the task ends and returns its final record, whatever its status.

        ``timeout`` in seconds (None: no limit): past it ``rc.DeadlineExceeded``.
        ``rc.NotFound`` if unknown; ``rc.Unavailable`` if the connection is lost meanwhile.
        """
        f = self.future(task_id)
        try:
            return f.task(timeout)
        except concurrent.futures.TimeoutError:
            raise DeadlineExceeded(f"task {task_id} did not end within {timeout}s", "DEADLINE_EXCEEDED") from None
        finally:
            if not f.done():
                self._waiter.discard(f)

    def cancel(self, task_id: str) -> Dict[str, Any]:
        """Cancels the task: ``{"task_id": ..., "cancelled": bool}`` (False when it had ended).

        A queued task ends ``cancelled`` at once; a running one is stopped on its worker.
        ``rc.NotFound`` if unknown.
        """
        _check_id(task_id)
        answer = self._cancel_call(task_id)
        return {"task_id": answer.task_id, "cancelled": answer.cancelled}

    def complete_task(self, task_id: str, status: str = "success", result: Optional[Mapping[str, Any]] = None,
                      error: Optional[str] = None) -> Dict[str, Any]:
        """Completes the task's running attempt from outside (HTTP ``POST /tasks/{id}/complete``).

        ``status`` ``"success"`` or ``"failed"``; ``result`` a dict (None: ``{}``); ``error``
        only with ``"failed"``. Only the task's own token may (``$RETIRE_CLUSTER_TOKEN`` of
        the attempt): ``rc.PermissionDenied`` for another task's token or a client token;
        ``rc.RpcError`` with code ``FAILED_PRECONDITION`` when the task is not running.
        Returns ``{"task_id", "attempt", "accepted": True}`` once the worker has it; the
        task ends when the worker reports it (``wait``).
        """
        request = _completion.complete_request(task_id, status, result, error)
        return _completion.accepted(self._unary(self._stub.CompleteTask, request))

    def list(self, status: Optional[str] = None, task_type: Optional[str] = None, worker: Optional[str] = None,
             parent: Optional[str] = None, limit: Optional[int] = None) -> List[Dict[str, Any]]:
        """Tasks as dicts, newest first, as HTTP ``GET /tasks``.

        Filters: ``status`` (``pending``, ``queued``, ``assigned``, ``running``,
        ``success``, ``failed``, ``cancelled``, ``timeout``), ``task_type``, ``worker``
        (device id), ``parent`` (only the direct children of this task); ``limit``
        1..10000 (default 100).
        """
        request = cs.ListTasksRequest()
        if status is not None:
            if status not in _views.STATUS_VALUES:
                raise InvalidArgument(f"status: unknown status {status!r} (expected one of "
                                      f"{', '.join(_views.STATUS_VALUES)})", "INVALID_ARGUMENT")
            request.status = _views.STATUS_VALUES[status]
        if task_type is not None:
            request.task_type = _text("task_type", task_type)
        if worker is not None:
            request.worker_device_id = _text("worker", worker)
        if parent is not None:
            request.parent_task_id = _text("parent", parent)
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool):
                raise TypeError(f"limit: expected an integer, got {type(limit).__name__}")
            if not 1 <= limit <= 10000:
                raise InvalidArgument(f"limit: expected 1..10000, got {limit}", "INVALID_ARGUMENT")
            request.limit = limit
        answer = self._unary(self._stub.ListTasks, request)
        return [_views.task_to_dict(t) for t in answer.tasks]

    def workers(self, device_id: Optional[str] = None) -> List[Dict[str, Any]]:
        """Workers as dicts (HTTP ``GET /workers``); only ``device_id``'s when given."""
        request = cs.ListWorkersRequest(device_id=_text("device_id", device_id) if device_id is not None else "")
        return [_views.worker_to_dict(w) for w in self._unary(self._stub.ListWorkers, request).workers]

    def stats(self) -> Dict[str, Any]:
        """Cluster counters as a dict (HTTP ``GET /stats``)."""
        return _views.stats_to_dict(self._unary(self._stub.GetStats, cs.GetStatsRequest()))

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Sends every queued submit and waits for their answers, then closes the connection.

        Waits still open afterwards end with ``rc.Error`` (the client is closed). Bounded:
        each queued batch has ``rpc_timeout``. Calling it again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._at_exit)
        batches = math.ceil(self._batcher.queued() / MAX_BATCH) + 1
        self._batcher.drain(self._rpc_timeout * (math.ceil(batches / MAX_IN_FLIGHT) + 1))
        self._waiter.close(self._rpc_timeout)
        self._finalizer.detach()
        self._wait_channel.close()
        self._channel.close()  # ends a call still on the wire if drain ran out of time
        self._batcher.stop(self._rpc_timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<retire_cluster.Client {self.target}{' closed' if self._closed else ''}>"

    # -- for TaskFuture ----------------------------------------------------------------------

    def _submit_bound(self) -> float:
        """How long a submit may take to be answered (queued batches each have rpc_timeout)."""
        return self._rpc_timeout * (math.ceil(self._batcher.queued() / (MAX_BATCH * MAX_IN_FLIGHT)) + 2)

    def _get_call(self, task_id: str) -> task_pb2.Task:
        return self._unary(self._stub.GetTask, cs.GetTaskRequest(task_id=task_id))

    def _cancel_call(self, task_id: str) -> cs.CancelTaskResponse:
        return self._unary(self._stub.CancelTask, cs.CancelTaskRequest(task_id=task_id))

    def _unary(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self._rpc_timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_grpc(e, self._conn.target) from None
        except ValueError as e:  # the channel was closed
            raise RuntimeError(f"the client is closed ({e})") from None


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, got {type(value).__name__}")
    return value


def _check_id(task_id: Any) -> None:
    if not isinstance(task_id, str):
        raise TypeError(f"task_id: expected a string, got {type(task_id).__name__}")
    if not task_id:
        raise InvalidArgument("task_id: required", "INVALID_ARGUMENT")
