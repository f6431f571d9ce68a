"""One WaitTasks stream per client: every wait of the client travels on it.

As client/async.h ``ResultStream``: ids go out batched (gRPC writes one message at a time,
so ids queued meanwhile travel together in the next one), terminal tasks come back as they
end and a reader thread ends the futures. Unlike the C++ stream, a break does not end the
waits: every open wait gets :class:`Unavailable` delivered to the threads blocked on it,
stays registered, and is sent again on the next stream, opened after a bounded backoff.
So callbacks, ``concurrent.futures.wait`` and a later ``result()`` still get the outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import grpc

from retire_cluster.errors import Error, RpcError, Unavailable, forget_call, from_code_number, from_grpc
from retire_cluster.futures import TaskFuture
from retire_cluster.v1 import client_service_pb2 as cs
from retire_cluster.v1 import client_service_pb2_grpc as cs_grpc

_log = logging.getLogger("retire_cluster")
MIN_BACKOFF = 0.05
MAX_BACKOFF = 2.0
_IDLE_POLL = 1.0      # how often an idle thread re-checks for close (it is also woken)
_SMALL_MESSAGE = 64   # results per message (and open waits) that make a stream busy
_PAUSE = 0.002        # seconds a busy stream waits between reads
_MAX_IDS = 10000      # ids per request: well under the coordinator's 4 MiB message limit
READY_TIMEOUT = 5.0   # after a break: how long one reconnect attempt waits for a connection


class Waiter:
    """The client's wait stream (started on the first wait, closed by ``close``)."""

    def __init__(self, channel: grpc.Channel, metadata: Sequence[Tuple[str, str]], target: str) -> None:
        self._channel = channel
        self._stub = cs_grpc.ClientServiceStub(channel)
        self._metadata = metadata
        self._target = target
        self._cv = threading.Condition()
        # Guarded by _cv:
        self._waits: Dict[str, List[TaskFuture]] = {}   # open waits by task id
        self._pending: List[str] = []                    # ids not yet sent on the current stream
        self._generation = 0                             # bumps when a stream ends
        self._closed = False
        self._call: Optional[grpc.Future] = None
        self._thread: Optional[threading.Thread] = None

    def add(self, futures: List[TaskFuture]) -> None:
        """Registers the waits of futures whose task ids are known."""
        with self._cv:
            if not self._closed:
                waits = self._waits
                pending = self._pending
                for f in futures:
                    tid = f._task_id
                    same = waits.get(tid)
                    if same is None:
                        waits[tid] = [f]
                        pending.append(tid)
                    else:
                        same.append(f)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="retire-cluster-wait", daemon=True)
                    self._thread.start()
                self._cv.notify_all()
                return
        closed = Error("the client is closed")
        for f in futures:
            f._fail(closed)

    def discard(self, future: TaskFuture) -> None:
        """Forgets one future's wait (Client.wait after its timeout)."""
        with self._cv:
            same = self._waits.get(future._task_id)
            if same is not None and future in same:
                same.remove(future)
                if not same:
                    del self._waits[future._task_id]  # the coordinator's answer is then ignored

    def close(self, timeout: float) -> None:
        """Ends the stream; waits still open fail with rc.Error (the client is closed)."""
        with self._cv:
            self._closed = True
            call, thread = self._call, self._thread
            orphans = [f for same in self._waits.values() for f in same]
            self._waits = {}
            self._cv.notify_all()
        if call is not None:
            call.cancel()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        closed = Error("the client was closed before the task ended")
        for f in orphans:
            f._fail(closed)

    # -- the stream thread ---------------------------------------------------------------

    def _run(self) -> None:
        backoff = MIN_BACKOFF
        cv = self._cv
        lost = False  # the last stream broke: wait for the connection before the next one
        while True:
            with cv:
                while not self._closed and not self._waits:
                    cv.wait(_IDLE_POLL)  # nothing to wait for: no stream until there is
                if self._closed:
                    return
            if lost:
                # A stream opened on a broken connection fails at once; gRPC reconnects on
                # its own (within about 2 s of the coordinator's return, RECONNECT_OPTIONS).
                # Each READY_TIMEOUT that passes without a connection tells the waiters
                # blocked since before it began (a fresh result() waits for the next one).
                attempt = time.monotonic()
                try:
                    grpc.channel_ready_future(self._channel).result(timeout=READY_TIMEOUT)
                except grpc.FutureTimeoutError:
                    self._break_all(Unavailable(f"coordinator {self._target} unavailable: no connection "
                                                f"for {READY_TIMEOUT:.0f}s", "UNAVAILABLE"), attempt)
                    continue
            with cv:
                if self._closed:
                    return
                generation = self._generation
                first = list(self._waits)  # every open wait, re-added after a break
                self._pending = []
            call = self._stub.WaitTasks(self._requests(generation, first), metadata=self._metadata)
            with cv:
                self._call = call
                closed = self._closed
            if closed:
                call.cancel()
            delivered = False
            try:
                for response in call:
                    delivered = True
                    self._deliver(response)
                    # Many waits open but few results per message: pause before the next read
                    # so the coordinator's writes wait and the results finishing meanwhile
                    # travel together (each message read costs thread hops in grpcio). With
                    # few waits open (one task at a time) every result is read at once.
                    if len(response.tasks) < _SMALL_MESSAGE and len(self._waits) > _SMALL_MESSAGE:
                        time.sleep(_PAUSE)
                error: RpcError = Unavailable("the coordinator ended the wait stream", "UNAVAILABLE")
            except grpc.RpcError as e:
                error = from_grpc(e, self._target)
                forget_call(e)
            except Exception as e:  # a bug of ours must not leave every wait hanging: break, reopen
                _log.exception("retire_cluster: wait stream failed")
                error = Unavailable(f"wait stream failed: {e!r}", "UNAVAILABLE")
                call.cancel()
            with cv:
                self._generation += 1  # ends this stream's request generator
                self._call = None
                if self._closed:
                    return
            self._break_all(error, time.monotonic())
            lost = True
            if delivered:
                backoff = MIN_BACKOFF
            with cv:
                cv.wait_for(lambda: self._closed, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _break_all(self, error: RpcError, since: float) -> None:
        """Tells every open wait that the connection is lost (they stay registered)."""
        with self._cv:
            broken = [f for same in self._waits.values() for f in same]
            self._cv.notify_all()
        for f in broken:
            f._broken(error, since)

    def _requests(self, generation: int, first: List[str]) -> Iterator[cs.WaitTasksRequest]:
        """The stream's requests: gRPC pulls the next one once the previous write is done."""
        for i in range(0, len(first), _MAX_IDS):
            yield cs.WaitTasksRequest(task_ids=first[i:i + _MAX_IDS])
        cv = self._cv
        while True:
            with cv:
                while not self._pending and self._generation == generation and not self._closed:
                    cv.wait(_IDLE_POLL)
                if self._generation != generation or self._closed:
                    return
                ids = self._pending[:_MAX_IDS]
                del self._pending[:_MAX_IDS]
            yield cs.WaitTasksRequest(task_ids=ids)

    def _deliver(self, response: cs.WaitTasksResponse) -> None:
        ready = []
        failed = []
        with self._cv:
            pop = self._waits.pop
            for t in response.tasks:
                same = pop(t.task_id, None)
                if same is not None:
                    ready.append((same, t))
            for e in response.errors:  # unknown id, not this token's task: final
                same = pop(e.task_id, None)
                if same is not None:
                    failed.append((same, from_code_number(e.error_code, e.error_message, self._target)))
        for same, t in ready:  # outside our lock: futures run user callbacks
            for f in same:
                f._finish_task(t)
        for same, err in failed:
            for f in same:
                f._fail(err)
