"""retire_cluster.aio: the asyncio client, on grpc.aio (every call is a coroutine).

    import asyncio
    import retire_cluster as rc

    async def main():
        async with rc.aio.Client() as c:          # target, token, TLS as rc.Client
            fut = await c.submit("echo", {"message": "hi"}, priority="high")
            print(fut.task_id, await fut)         # the task's result, decoded
            print(await c.map("python_eval", [{"expression": "1+1"}, {"expression": "2*3"}]))
            futs = await asyncio.gather(*(c.submit("echo", {"i": i}) for i in range(1000)))
            results = await asyncio.gather(*futs)

    asyncio.run(main())

The same calls as :class:`retire_cluster.Client`, each awaited. Internals as the sync
client's: submits go through a batcher (while 4 SubmitBatch calls are on the wire, new
submits queue and the next call carries them all, up to 2000), and one WaitTasks stream
per client carries every wait. A client belongs to the event loop it was first used on.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import grpc

from retire_cluster import _completion, _connection, errors
from retire_cluster._aio_batcher import SubmitBatcher, frame, frame_with_payload
from retire_cluster._aio_waiter import WaitStream
from retire_cluster._js_tasks import AioJsTasks
from retire_cluster._specs import Dependency, build_spec, payload_text
from retire_cluster._views import (STATUS_VALUES, result_value, stats_to_dict, task_to_dict,
                                   worker_to_dict)
from retire_cluster.v1 import client_service_pb2 as cs_pb2
from retire_cluster.v1 import client_service_pb2_grpc as cs_grpc
from retire_cluster.v1 import task_pb2

__all__ = ["Client", "TaskFuture"]

_log = logging.getLogger("retire_cluster.aio")
_SUCCESS = task_pb2.TASK_STATUS_SUCCESS
_MAX_CANCELS_IN_FLIGHT = 8


class TaskFuture(asyncio.Future):
    """A submitted task: an ``asyncio.Future`` of its result.

    ``await fut`` gives the task's result JSON decoded, or raises :class:`rc.TaskFailed`,
    :class:`rc.TaskTimeout` or :class:`rc.TaskCancelled` (``.task`` holds the final task),
    :class:`rc.NotFound` for an unknown id, or an :class:`rc.RpcError` (code ``CANCELLED``)
    when the client was closed first. While the connection to the coordinator is lost the
    future just stays pending: the client reconnects and waits again.

    ``fut.task_id``: the task's id. ``fut.task()``: the final task as a dict (whatever its
    status) once the future is done.

    ``fut.cancel()`` cancels the future at once (``await fut`` then raises
    ``asyncio.CancelledError``) and asks the coordinator to cancel the task. asyncio cancels
    an awaited future when the awaiting coroutine is cancelled, so ``asyncio.wait_for(fut,
    t)`` cancels the task on timeout; to bound a wait without cancelling the task use
    ``asyncio.wait([fut], timeout=t)`` or ``asyncio.shield(fut)``.

    An exception no one retrieved is not logged (a failed task is an answer, not a bug).
    """

    __slots__ = ("_client", "_task_id", "_final", "_dict", "_accepted")

    def __init__(self, client: "Client", task_id: Optional[str] = None):
        super().__init__(loop=client._loop)
        self._client = client
        self._task_id = task_id
        self._final: Optional[task_pb2.Task] = None  # the terminal task, once known
        self._dict: Optional[Dict[str, Any]] = None
        self._accepted: Optional[asyncio.Future] = None  # while the submit awaits its answer

    @property
    def task_id(self) -> str:
        """The task's id (known once the coordinator accepted the task)."""
        if self._task_id is None:
            raise asyncio.InvalidStateError("the coordinator has not accepted the task yet")
        return self._task_id

    def task(self) -> Dict[str, Any]:
        """The final task as a dict (the HTTP API's shape), whatever its status.

        Raises ``asyncio.InvalidStateError`` while the task runs, ``asyncio.CancelledError``
        when the future was cancelled, and the future's exception when no task was found.
        """
        if not self.done():
            raise asyncio.InvalidStateError(f"task {self._task_id} has not finished")
        if self._final is None:
            if self.cancelled():
                raise asyncio.CancelledError()
            raise self.exception()
        if self._dict is None:
            self._dict = task_to_dict(self._final)
        return self._dict

    def cancel(self, msg: Any = None) -> bool:
        """Cancels the future and asks the coordinator to cancel the task.

        False when the future was already done. The coordinator's answer is not awaited
        (``await client.cancel(fut.task_id)`` gives it).
        """
        if self.done():
            return False
        super().cancel(msg)
        if self._task_id is not None:
            self._client._cancel_later(self._task_id)
        # else: the submit is on the wire; the batcher cancels the task once it is accepted
        return True

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled() else "done" if self.done() else "pending"
        return f"<rc.aio.TaskFuture {self._task_id} {state}>"

    def _resolve(self, task: task_pb2.Task) -> None:
        if self.done():
            return
        self._final = task
        if task.status == _SUCCESS:
            self.set_result(result_value(task) if task.result else None)
        else:
            self._dict = task_to_dict(task)
            self._fail(errors.task_error(self._dict) or errors.TaskFailed(self._dict))

    def _fail(self, exc: BaseException) -> None:
        if self.done():
            return
        self.set_exception(exc)
        self._log_traceback = False  # see the class docstring


def _deliver(waiter, task: task_pb2.Task) -> None:
    if type(waiter) is TaskFuture:
        waiter._resolve(task)
    elif not waiter.done():
        waiter.set_result(task)


def _fail(waiter, exc: BaseException) -> None:
    if type(waiter) is TaskFuture:
        waiter._fail(exc)
    elif not waiter.done():
        waiter.set_exception(exc)
        waiter._log_traceback = False


def _task_id_arg(task_id: Any) -> str:
    if not isinstance(task_id, str):
        raise TypeError(f"task_id: expected a string, got {type(task_id).__name__}")
    if not task_id:
        raise errors.InvalidArgument("task_id: required, a task id such as the one submit returned",
                                     "INVALID_ARGUMENT")
    return task_id


def _optional_text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, got {type(value).__name__}")
    return value


def _seconds(name: str, value: Any) -> Optional[float]:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name}: expected a number of seconds, got {type(value).__name__}")
    if not (value >= 0 and math.isfinite(value)):
        raise errors.InvalidArgument(f"{name}: expected a non-negative finite number of seconds, got {value!r}",
                                     "INVALID_ARGUMENT")
    return float(value)


class Client:
    """An asyncio connection to a retire-cluster coordinator (grpc.aio); calls are coroutines.

    target: ``HOST:PORT`` or ``unix:PATH`` (default $RETIRE_CLUSTER_COORDINATOR, else
    127.0.0.1:8080). token: the bearer token ($RETIRE_CLUSTER_TOKEN). tls_ca: a CA file,
    turns TLS on ($RETIRE_CLUSTER_TLS_CA); tls_cert, tls_key: a client certificate for
    mTLS. rpc_timeout: seconds each call may take (waits for tasks are not bounded by it).
    Inside a task, ``Client()`` submits children of that task.

    Bad arguments raise at once (``TypeError`` or :class:`rc.InvalidArgument`, naming the
    argument). The connection opens on first use, on the running event loop, and the client
    then belongs to that loop. ``async with rc.aio.Client() as c:`` closes it at the end.
    """

    def __init__(self, target: Optional[str] = None, token: Optional[str] = None, *,
                 tls_ca: Optional[str] = None, tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
                 rpc_timeout: float = 10.0):
        self._conn = _connection.resolve(target, token, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
                                         rpc_timeout=rpc_timeout)
        self._metadata = grpc.aio.Metadata(*self._conn.metadata) if self._conn.metadata else None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._channel = None
        self._wait_channel = None
        self._stub: Optional[cs_grpc.ClientServiceStub] = None
        self._batcher: Optional[SubmitBatcher] = None
        self._waiter: Optional[WaitStream] = None
        self._closed = False
        self._cancel_queue: List[str] = []
        self._cancellers: set = set()

    @property
    def target(self) -> str:
        """The coordinator's address (``HOST:PORT`` or ``unix:PATH``)."""
        return self._conn.target

    @property
    def tasks(self) -> AioJsTasks:
        """Published JavaScript tasks: ``await c.tasks.publish(path_or_code)``, ``.list()``,
        ``.show(name)``, ``.remove(name)``, ``.run(name, input, **submit_options)`` (see AioJsTasks)."""
        return AioJsTasks(self)

    def __repr__(self) -> str:
        return f"<rc.aio.Client {self.target}{' closed' if self._closed else ''}>"

    async def __aenter__(self) -> "Client":
        self._ready()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    # -- tasks ---------------------------------------------------------------------------

    async def submit(self, task_type: str, payload: Optional[Mapping[str, Any]] = None, *,
                     priority: Optional[str] = None, timeout: Optional[float] = None,
                     max_retries: Optional[int] = None, min_cpu_cores: Optional[int] = None,
                     min_memory_gb: Optional[float] = None, min_storage_gb: Optional[float] = None,
                     gpu: bool = False, internet: bool = False, platform: Optional[str] = None,
                     role: Optional[str] = None, tags: Optional[Iterable[str]] = None,
                     device: Optional[str] = None, metadata: Optional[Mapping[str, str]] = None,
                     idempotency_key: Optional[str] = None, after: Optional[Sequence[Dependency]] = None,
                     parent_close: Optional[str] = None) -> TaskFuture:
        """Submits a task; returns its :class:`TaskFuture` once the coordinator accepted it.

        task_type: the handler, e.g. "echo", "python_eval", "python_script".
        payload: a dict (JSON object) for the handler.
        priority: "low", "normal" (default), "high" or "urgent".
        timeout: seconds the task may run (default 300). max_retries: attempts after a
        failure (default 3).
        min_cpu_cores, min_memory_gb, min_storage_gb, gpu, internet, platform ("linux",
        ...), role, tags (all required), device (a worker's device id): where it may run.
        metadata: string labels. idempotency_key: a second submit with the same key
        returns the first task. after: tasks to wait for first (ids, TaskFutures,
        ``(id, "ok"|"any"|"notok")``). parent_close: "cancel" or "abandon" (inside a task).

        Bad arguments raise before anything is sent; a refusal by the coordinator raises
        its :class:`rc.RpcError` (:class:`rc.InvalidArgument`, :class:`rc.ResourceExhausted`,
        ...). ``await fut`` then gives the result. Submits made together travel together
        (SubmitBatch), so ``asyncio.gather`` over many ``submit`` calls is fast.
        Cancelling the ``submit`` coroutine cancels the task.
        """
        spec = build_spec(task_type, payload, priority=priority, timeout=timeout, max_retries=max_retries,
                          min_cpu_cores=min_cpu_cores, min_memory_gb=min_memory_gb,
                          min_storage_gb=min_storage_gb, gpu=gpu, internet=internet, platform=platform,
                          role=role, tags=tags, device=device, metadata=metadata,
                          idempotency_key=idempotency_key, after=after, parent_close=parent_close)
        self._ready()
        fut = TaskFuture(self)
        accepted = fut._accepted = self._loop.create_future()
        self._batcher.add(frame(spec.SerializeToString()), fut)
        try:
            await accepted
        except asyncio.CancelledError:
            fut.cancel()  # cancels the task now, or once the coordinator accepted it
            raise
        return fut

    async def map(self, task_type: str, payloads: Iterable[Optional[Mapping[str, Any]]], *,
                  timeout: Optional[float] = None, return_exceptions: bool = False, **options: Any) -> List[Any]:
        """Runs one task per payload; returns their results in the order of ``payloads``.

        options: as :meth:`submit` (priority, tags, ...), the same for every task; bad
        options or payloads raise before anything is sent (a payload may be None: {}).
        timeout: seconds to wait for all results, else ``TimeoutError`` (the tasks keep
        running; map has no per-task ``timeout`` option, the tasks get the default limit).
        The first task (in order) that did not succeed raises its exception
        (:class:`rc.TaskFailed`, :class:`rc.TaskTimeout`, :class:`rc.TaskCancelled`, or the
        submit's refusal); with ``return_exceptions=True`` the exception takes its place in
        the list instead. Cancelling map cancels its unfinished tasks.
        """
        if not isinstance(return_exceptions, bool):
            raise TypeError(f"return_exceptions: expected True or False, got {type(return_exceptions).__name__}")
        wait_timeout = _seconds("timeout", timeout)
        if isinstance(payloads, (str, bytes, Mapping)):
            raise TypeError(f"payloads: expected a list of dicts, got {type(payloads).__name__}")
        template = build_spec(task_type, None, payload_json="", **options).SerializeToString()
        specs = [frame_with_payload(template, payload_text(payload, f"payloads[{i}]"))
                 for i, payload in enumerate(payloads)]
        if not specs:
            return []
        self._ready()
        futs = [TaskFuture(self) for _ in specs]
        self._batcher.add_many(specs, futs)
        try:
            return await _collect(futs, return_exceptions, wait_timeout)
        except asyncio.CancelledError:
            for f in futs:
                f.cancel()  # nobody else holds these futures: cancel the tasks (a no-op for finished ones)
            raise

    async def future(self, task_id: str) -> TaskFuture:
        """A :class:`TaskFuture` for an existing task (``await`` it as a submitted one's).

        An unknown id makes the future raise :class:`rc.NotFound`.
        """
        _task_id_arg(task_id)
        self._ready()
        fut = TaskFuture(self, task_id)
        self._waiter.add(task_id, fut)
        return fut

    async def get(self, task_id: str) -> Dict[str, Any]:
        """The task now, as a dict (== HTTP ``GET /tasks/{id}``); :class:`rc.NotFound` if unknown."""
        _task_id_arg(task_id)
        return task_to_dict(await self._call("GetTask", cs_pb2.GetTaskRequest(task_id=task_id)))

    async def wait(self, task_id: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Waits until the task ends; the final task as a dict, whatever its status.

        timeout: seconds, else :class:`rc.DeadlineExceeded` (the task goes on).
        :class:`rc.NotFound` for an unknown id.
        """
        _task_id_arg(task_id)
        seconds = _seconds("timeout", timeout)
        self._ready()
        waiter = self._loop.create_future()
        self._waiter.add(task_id, waiter)
        try:
            if seconds is None:
                task = await waiter
            else:
                task = await asyncio.wait_for(waiter, seconds)
        except asyncio.TimeoutError:
            raise errors.DeadlineExceeded(f"task {task_id} did not finish within {seconds:g}s",
                                          "DEADLINE_EXCEEDED") from None
        finally:
            if not waiter.done() or waiter.cancelled():
                self._waiter.discard(task_id, waiter)
        return task_to_dict(task)

    async def cancel(self, task_id: str) -> Dict[str, Any]:
        """Cancels a task: ``{"task_id": ..., "cancelled": bool}`` (False: it had already ended)."""
        _task_id_arg(task_id)
        r = await self._call("CancelTask", cs_pb2.CancelTaskRequest(task_id=task_id))
        return {"task_id": r.task_id or task_id, "cancelled": r.cancelled}

    async def complete_task(self, task_id: str, status: str = "success",
                            result: Optional[Mapping[str, Any]] = None,
                            error: Optional[str] = None) -> Dict[str, Any]:
        """Completes the task's running attempt from outside, as ``rc.Client.complete_task``:
        ``{"task_id", "attempt", "accepted": True}``; only with the task's own token."""
        request = _completion.complete_request(task_id, status, result, error)
        return _completion.accepted(await self._call("CompleteTask", request))

    async def list(self, status: Optional[str] = None, task_type: Optional[str] = None,
                   worker: Optional[str] = None, parent: Optional[str] = None,
                   limit: Optional[int] = None) -> List[Dict[str, Any]]:
        """Tasks as dicts, newest first.

        status: "pending", "queued", "assigned", "running", "success", "failed",
        "cancelled" or "timeout". task_type, worker (device id), parent (a task id: its
        direct children): filters. limit: at most this many (default 100, up to 10000).
        """
        request = cs_pb2.ListTasksRequest(task_type=_optional_text("task_type", task_type),
                                          worker_device_id=_optional_text("worker", worker),
                                          parent_task_id=_optional_text("parent", parent))
        if status is not None:
            if not isinstance(status, str):
                raise TypeError(f"status: expected a string, got {type(status).__name__}")
            if status not in STATUS_VALUES:
                raise errors.InvalidArgument(f"status: unknown status {status!r} (expected one of "
                                             f"{', '.join(STATUS_VALUES)})", "INVALID_ARGUMENT")
            request.status = STATUS_VALUES[status]
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool):
                raise TypeError(f"limit: expected an integer, got {type(limit).__name__}")
            if not 1 <= limit <= 10000:
                raise errors.InvalidArgument(f"limit: expected 1..10000, got {limit}", "INVALID_ARGUMENT")
            request.limit = limit
        response = await self._call("ListTasks", request)
        return [task_to_dict(t) for t in response.tasks]

    # -- the cluster ---------------------------------------------------------------------

    async def workers(self, device_id: Optional[str] = None) -> List[Dict[str, Any]]:
        """Workers as dicts (== HTTP ``GET /workers``); device_id: just that one."""
        request = cs_pb2.ListWorkersRequest(device_id=_optional_text("device_id", device_id))
        return [worker_to_dict(w) for w in (await self._call("ListWorkers", request)).workers]

    async def stats(self) -> Dict[str, Any]:
        """Cluster counters as a dict (== HTTP ``GET /stats``)."""
        return stats_to_dict(await self._call("GetStats", cs_pb2.GetStatsRequest()))

    async def close(self) -> None:
        """Sends every queued submit, then closes the connection.

        Futures still waiting then raise :class:`rc.RpcError` with code ``CANCELLED``;
        later calls raise it too. Closing twice is fine.
        """
        if self._closed:
            return
        self._closed = True
        if self._channel is None:
            return
        await self._batcher.drain()
        if self._cancellers:
            await asyncio.wait(list(self._cancellers), timeout=self._conn.rpc_timeout)
        await self._waiter.close(self._closed_error("the client was closed before the task ended"))
        await self._channel.close()
        await self._wait_channel.close()
        self._stub = None  # no more calls (cancels asked for from now on are dropped)
        # The cancelled calls' last events come from gRPC's poller thread: take them on this
        # loop while it runs (after it closed, grpc.aio prints "Event loop is closed").
        await asyncio.sleep(0.01)

    # -- internals -----------------------------------------------------------------------

    def _closed_error(self, why: str) -> errors.RpcError:
        return errors.from_status(grpc.StatusCode.CANCELLED, why, self.target)

    def _ready(self) -> None:
        """Opens the connection on the running loop (first call); refuses other loops."""
        if self._closed:
            raise self._closed_error("the client is closed")
        loop = asyncio.get_running_loop()
        if self._channel is not None:
            if loop is not self._loop:
                raise RuntimeError("rc.aio.Client: used on another event loop than the one it started on")
            return
        self._loop = loop
        self._channel = self._conn.aio_channel(_connection.RECONNECT_OPTIONS)
        self._wait_channel = self._conn.aio_channel(_connection.WAIT_CHANNEL_OPTIONS)
        self._stub = cs_grpc.ClientServiceStub(self._channel)
        wait_stub = cs_grpc.ClientServiceStub(self._wait_channel)
        md, rpc_timeout = self._metadata, self._conn.rpc_timeout
        # SubmitBatch with the request already encoded (the batcher concatenates framed specs)
        submit_batch = self._channel.unary_unary("/retire_cluster.v1.ClientService/SubmitBatch",
                                                 request_serializer=None,
                                                 response_deserializer=cs_pb2.SubmitBatchResponse.FromString)
        self._batcher = SubmitBatcher(lambda request: submit_batch(request, timeout=rpc_timeout, metadata=md),
                                      self._accepted, self._refused, self.target)
        self._waiter = WaitStream(lambda: wait_stub.WaitTasks(metadata=md, wait_for_ready=True),
                                  _deliver, _fail, self.target)

    async def _call(self, method: str, request):
        self._ready()
        try:
            return await getattr(self._stub, method)(request, timeout=self._conn.rpc_timeout,
                                                     metadata=self._metadata)
        except grpc.RpcError as e:
            raise errors.from_grpc(e, self.target) from None

    def _accepted(self, fut: TaskFuture, task_id: str) -> None:
        """The batcher's answer for an accepted spec."""
        fut._task_id = task_id
        accepted, fut._accepted = fut._accepted, None
        if fut.cancelled():
            self._cancel_later(task_id)
        else:
            self._waiter.add(task_id, fut)
        if accepted is not None and not accepted.done():
            accepted.set_result(None)

    def _refused(self, fut: TaskFuture, exc: BaseException) -> None:
        """The batcher's answer for a refused spec: submit() raises it, map() returns it."""
        accepted, fut._accepted = fut._accepted, None
        if accepted is None:
            fut._fail(exc)
        elif not accepted.done():
            accepted.set_exception(exc)

    def _cancel_later(self, task_id: str) -> None:
        """Asks the coordinator to cancel a task, without waiting (TaskFuture.cancel)."""
        if self._stub is None or self._loop.is_closed():
            return
        self._cancel_queue.append(task_id)
        if len(self._cancellers) < _MAX_CANCELS_IN_FLIGHT:
            worker = self._loop.create_task(self._send_cancels())
            self._cancellers.add(worker)
            worker.add_done_callback(self._cancellers.discard)

    async def _send_cancels(self) -> None:
        while self._cancel_queue and self._stub is not None:
            task_id = self._cancel_queue.pop()
            try:
                await self._stub.CancelTask(cs_pb2.CancelTaskRequest(task_id=task_id),
                                            timeout=self._conn.rpc_timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                _log.info("cancelling task %s: %s", task_id, errors.from_grpc(e, self.target))
            except Exception as e:  # the channel closed under us: nothing more to do
                _log.info("cancelling task %s: %s", task_id, e)
                return


async def _collect(futs: List[TaskFuture], return_exceptions: bool, timeout: Optional[float]) -> List[Any]:
    """The futures' results in order, as the sync client's map gives them.

    Without return_exceptions the first future (in order) that failed raises. Cheap on the
    way to success: one wake-up when all are done (not one per future). TimeoutError after
    ``timeout`` seconds; nothing is cancelled here.
    """
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout

    async def settle(fs) -> None:
        """Waits until every one of ``fs`` is done, or (without return_exceptions) one failed."""
        woken = loop.create_future()
        left = len(fs)

        def on_done(f: TaskFuture) -> None:
            nonlocal left
            left -= 1
            if not woken.done() and (left == 0 or not return_exceptions and
                                     (f.cancelled() or f.exception() is not None)):
                woken.set_result(None)

        for f in fs:
            f.add_done_callback(on_done)
        try:
            done, _ = await asyncio.wait([woken], timeout=None if deadline is None else deadline - loop.time())
            if not done:
                raise asyncio.TimeoutError(f"map: {sum(not f.done() for f in futs)} of {len(futs)} tasks "
                                           f"unfinished after {timeout:g}s")
        finally:
            for f in fs:
                f.remove_done_callback(on_done)

    pending = [f for f in futs if not f.done()]
    if pending:
        await settle(pending)
    out: List[Any] = []
    for f in futs:
        if not f.done():
            await settle([f])  # an earlier failure is known: this one decides which raises
        if not return_exceptions or f.cancelled() or f.exception() is None:
            out.append(f.result())  # raises the first failure in order
        else:
            out.append(f.exception())
    return out
