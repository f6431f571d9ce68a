"""Submits batched under load, as client/async.h ``SubmitBatcher``.

While ``max_in_flight`` SubmitBatch calls are on the wire, new submits queue, and the next
call carries everything queued (up to ``max_batch`` specs and about ``max_batch_bytes``).
An idle batcher sends a lone submit at once, so batching never adds a delay. Answers
arrive on gRPC's thread: each future learns its task id (or its refusal), and the accepted
ones are handed to ``on_accepted`` (the wait stream) in one go.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, List, Sequence

import grpc

from retire_cluster.errors import Error, from_code_number, from_grpc
from retire_cluster.futures import TaskFuture
from retire_cluster.v1 import client_service_pb2 as cs
from retire_cluster.v1 import task_pb2

MAX_IN_FLIGHT = 4
MAX_BATCH = 2000
MAX_BATCH_BYTES = 3 << 20  # under the coordinator's 4 MiB message limit; a larger spec goes alone


class SubmitBatcher:
    def __init__(self, stub, metadata, rpc_timeout: float, target: str,
                 on_accepted: Callable[[List[TaskFuture]], None],
                 max_in_flight: int = MAX_IN_FLIGHT, max_batch: int = MAX_BATCH,
                 max_batch_bytes: int = MAX_BATCH_BYTES) -> None:
        self._call = stub.SubmitBatch
        self._metadata = metadata
        self._rpc_timeout = rpc_timeout
        self._target = target
        self._on_accepted = on_accepted
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._max_batch_bytes = max_batch_bytes
        self._cv = threading.Condition()
        # Guarded by _cv:
        self._specs: List[task_pb2.TaskSpec] = []
        self._futures: List[TaskFuture] = []
        self._in_flight = 0    # calls on the wire
        self._answering = 0    # calls whose answers are still being handed out
        self._closed = False

    def add(self, spec: task_pb2.TaskSpec, future: TaskFuture) -> None:
        with self._cv:
            if self._closed:
                raise RuntimeError("the client is closed")
            self._specs.append(spec)
            self._futures.append(future)
            if self._in_flight >= self._max_in_flight:
                return
            batch = self._take_locked()
        self._start(*batch)

    def add_many(self, specs: Sequence[task_pb2.TaskSpec], futures: Sequence[TaskFuture]) -> None:
        with self._cv:
            if self._closed:
                raise RuntimeError("the client is closed")
            self._specs.extend(specs)
            self._futures.extend(futures)
            batches = []
            while self._specs and self._in_flight < self._max_in_flight:
                batches.append(self._take_locked())
        for batch in batches:
            self._start(*batch)

    def queued(self) -> int:
        with self._cv:
            return len(self._specs) + self._in_flight * self._max_batch

    def drain(self, timeout: float) -> bool:
        """Stops taking submits and waits (up to timeout) until every queued one is answered."""
        deadline = time.monotonic() + timeout
        with self._cv:
            self._closed = True
            while self._specs or self._in_flight or self._answering:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def _take_locked(self):
        specs = self._specs
        n = min(len(specs), self._max_batch)
        if n > 1:
            size = 0
            limit = self._max_batch_bytes
            for i in range(n):
                size += specs[i].ByteSize() + 4
                if size > limit and i > 0:
                    n = i
                    break
        batch = (specs[:n], self._futures[:n])
        del specs[:n]
        del self._futures[:n]
        self._in_flight += 1
        self._answering += 1
        return batch

    def _start(self, specs: List[task_pb2.TaskSpec], futures: List[TaskFuture]) -> None:
        try:
            call = self._call.future(cs.SubmitBatchRequest(specs=specs), timeout=self._rpc_timeout,
                                     metadata=self._metadata)
        except Exception as e:  # e.g. the channel is closed
            self._answer(futures, None, Error(f"submit not sent: {e}"))
            return
        call.add_done_callback(lambda c: self._finished(c, futures))

    def _finished(self, call, futures: List[TaskFuture]) -> None:
        try:
            response = call.result()
            error = None
        except grpc.RpcError as e:
            response, error = None, from_grpc(e, self._target)
        except Exception as e:  # a cancelled call (the channel closed under it)
            response, error = None, Error(f"submit failed: {e!r}")
        self._answer(futures, response, error)

    def _answer(self, futures: List[TaskFuture], response, error) -> None:
        # The next call leaves before this one's answers are handed out: keeps the wire busy.
        with self._cv:
            self._in_flight -= 1
            batch = self._take_locked() if self._specs and self._in_flight < self._max_in_flight else None
        if batch is not None:
            self._start(*batch)
        try:
            if error is None and len(response.results) != len(futures):
                error = Error(f"coordinator answered {len(response.results)} of {len(futures)} submits")
            if error is not None:
                for f in futures:
                    f._refused(error)
                return
            accepted = []
            for i, (f, r) in enumerate(zip(futures, response.results)):
                if r.error_code == 0:
                    f._accepted(r.accepted.task_id)
                    accepted.append(f)
                else:  # "specs[7].timeout: ..." names the batch's entry; the caller knows one submit
                    why = r.error_message
                    prefix = f"specs[{i}]."
                    f._refused(from_code_number(r.error_code, why[len(prefix):] if why.startswith(prefix) else why,
                                                self._target))
            if accepted:
                self._on_accepted(accepted)
        finally:
            with self._cv:
                self._answering -= 1
                self._cv.notify_all()
