"""The asyncio client's one WaitTasks stream (the twin of client/async.h ``ResultStream``).

Every wait of a client travels on one bidi stream: task ids go out batched (while a write
is on the wire, new ids queue and the next write carries them all), and the coordinator
sends each task back once, when it is terminal. When the stream breaks, the open waits
stay pending (they are asyncio futures: nothing raises in the waiter) and their ids are
sent again on a new stream, after a backoff bounded by ``MAX_BACKOFF``. A break the
coordinator means for good (UNAUTHENTICATED, PERMISSION_DENIED, ...) fails the open waits
instead. Not thread-safe: everything runs on the client's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Dict, List, Optional

import grpc

from retire_cluster import errors
from retire_cluster.v1 import client_service_pb2 as cs_pb2

_log = logging.getLogger("retire_cluster.aio")

FIRST_BACKOFF = 0.05  # seconds before the first reconnect after a break
MAX_BACKOFF = 2.0     # reconnects never wait longer than this
MAX_IDS_PER_WRITE = 10000
# With many waits open, a message carrying few results makes the reader pause before the next
# read: the coordinator's writes then wait (the wait channel has a small HTTP/2 window) and
# the results that finish meanwhile travel together. Each message read costs grpc.aio a loop
# turn and a thread hop; with few waits open (one task at a time) every result is read at once.
SMALL_MESSAGE = 64
PAUSE = 0.002  # seconds

# Breaks worth a new stream; any other code is the coordinator's final word (bad token, ...).
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
                        grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL,
                        grpc.StatusCode.RESOURCE_EXHAUSTED})
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]

# A waiter is an asyncio future; Deliver(waiter, task) / Fail(waiter, exc) finish it.
Deliver = Callable[[Any, Any], None]
Fail = Callable[[Any, BaseException], None]


class WaitStream:
    """Waits for many tasks on one WaitTasks stream; see the module docstring.

    ``open_call()`` starts a new stream call; ``deliver(waiter, task)`` hands a terminal
    ``pb.Task`` to a waiter, ``fail(waiter, exc)`` an exception.
    """

    def __init__(self, open_call: Callable[[], Any], deliver: Deliver, fail: Fail, target: str):
        self._open_call = open_call
        self._deliver = deliver
        self._fail = fail
        self._target = target
        self._waits: Dict[str, List[Any]] = {}   # task id -> open waiters
        self._queued: List[str] = []             # ids not yet written on the current stream
        self._wake = asyncio.Event()             # set when _queued gained ids
        self._runner: Optional[asyncio.Task] = None
        self._call = None                        # the current stream call
        self._closed = False
        self.breaks = 0                          # streams that broke (for tests and diagnostics)
        self.last_error: Optional[BaseException] = None

    def add(self, task_id: str, waiter: Any) -> None:
        """Starts waiting for ``task_id``; ``waiter`` gets the terminal task (or an error)."""
        waiters = self._waits.get(task_id)
        if waiters is None:
            self._waits[task_id] = [waiter]
            self._queued.append(task_id)
            self._wake.set()
        else:
            waiters.append(waiter)  # already asked for: one answer serves them all
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())

    def discard(self, task_id: str, waiter: Any) -> None:
        """Stops delivering to ``waiter`` (a wait that timed out); the id stays on the stream."""
        waiters = self._waits.get(task_id)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waits[task_id]  # its answer, if it comes, is dropped

    @property
    def open_waits(self) -> int:
        return len(self._waits)

    async def close(self, error: BaseException) -> None:
        """Ends the stream; every open waiter fails with ``error``."""
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            try:
                await runner
            except asyncio.CancelledError:
                pass
        call, self._call = self._call, None
        if call is not None:
            # Let gRPC finish the cancelled call on this loop: its last events arriving after
            # the loop closed make grpc.aio print "Event loop is closed" (grpc/grpc#34139).
            try:
                await asyncio.wait_for(call.code(), 1.0)
            except (asyncio.TimeoutError, asyncio.CancelledError, grpc.RpcError):
                pass
        waits, self._waits = self._waits, {}
        for waiters in waits.values():
            for w in waiters:
                self._fail(w, error)

    async def _run(self) -> None:
        """Owns the stream: opens it, re-opens it after a break, ends when nothing is open."""
        backoff = FIRST_BACKOFF
        try:
            while not self._closed:
                self._queued = list(self._waits)  # a new stream asks for every open wait
                self._wake.set()
                call = self._call = self._open_call()
                writer = asyncio.get_running_loop().create_task(self._write(call))
                error: Optional[BaseException] = None
                try:
                    while True:
                        response = await call.read()
                        if response is grpc.aio.EOF:
                            error = errors.Unavailable(f"coordinator {self._target} ended the wait stream",
                                                       "UNAVAILABLE")
                            break
                        backoff = FIRST_BACKOFF
                        self._dispatch(response)
                        if len(response.tasks) < SMALL_MESSAGE and len(self._waits) > SMALL_MESSAGE:
                            await asyncio.sleep(PAUSE)
                except grpc.RpcError as e:
                    error = errors.from_grpc(e, self._target)
                    if e.code() not in _RETRYABLE:
                        self._fail_all(error)
                except Exception as e:  # noqa: BLE001 - a grpc.aio usage error: a new stream, as for a break
                    error = errors.RpcError(f"wait stream failed: {e!r}", "UNKNOWN")
                finally:
                    writer.cancel()
                    call.cancel()
                self.breaks += 1
                self.last_error = error
                _log.info("wait stream broke (%s); %d waits open", error, len(self._waits))
                if not self._waits:
                    break  # the next add() starts a new stream
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        finally:
            if self._runner is asyncio.current_task():
                self._runner = None

    async def _write(self, call) -> None:
        try:
            while True:
                if not self._queued:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                ids = self._queued[:MAX_IDS_PER_WRITE]
                del self._queued[:MAX_IDS_PER_WRITE]
                await call.write(cs_pb2.WaitTasksRequest(task_ids=ids))
        except (grpc.RpcError, asyncio.InvalidStateError):
            pass  # the stream broke: the reader sees it, and a new stream asks for every open wait

    def _dispatch(self, response) -> None:
        waits = self._waits
        for task in response.tasks:
            waiters = waits.pop(task.task_id, None)
            if waiters:
                for w in waiters:
                    self._deliver(w, task)
        for e in response.errors:
            if e.error_code == _UNAVAILABLE:
                continue  # the coordinator is stopping: the next stream asks again
            waiters = waits.pop(e.task_id, None)
            if waiters:
                exc = errors.from_code_number(e.error_code, e.error_message or f"task {e.task_id}", self._target)
                for w in waiters:
                    self._fail(w, exc)

    def _fail_all(self, error: BaseException) -> None:
        waits, self._waits = self._waits, {}
        for waiters in waits.values():
            for w in waiters:
                self._fail(w, error)
