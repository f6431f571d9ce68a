"""Submits batched under load, as client/async.h ``SubmitBatcher``.

While ``max_in_flight`` SubmitBatch calls are on the wire, new submits queue, and the next
call carries everything queued (up to ``max_batch`` specs and about ``max_batch_bytes``).
An idle batcher sends a lone submit at once, so batching never adds a delay. Answers
arrive on gRPC's thread: each future learns its task id (or its refusal), and the accepted
ones are handed to ``on_accepted`` (the wait stream) in one go.

Specs are queued serialized and a request is the concatenation of its specs framed as
field 1 of SubmitBatchRequest (the protobuf wire format), so a batch costs one join
instead of a copy of every spec message into the request.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, List, Optional, Sequence, Tuple

import grpc

from retire_cluster.errors import Error, from_code_number, from_grpc
from retire_cluster.futures import TaskFuture
from retire_cluster.v1 import client_service_pb2 as cs

MAX_IN_FLIGHT = 4
MAX_BATCH = 2000
MAX_BATCH_BYTES = 3 << 20  # under the coordinator's 4 MiB message limit; a larger spec goes alone
_SUBMIT_BATCH = "/retire_cluster.v1.ClientService/SubmitBatch"


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative int."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def simple_spec(task_type: str, payload_json: str) -> bytes:
    """TaskSpec(task_type=..., payload=...).SerializeToString(), without the message object."""
    t = task_type.encode()
    p = payload_json.encode()
    return b"\n" + varint(len(t)) + t + b"\x12" + varint(len(p)) + p


def with_payload(spec: bytes, payload_json: str) -> bytes:
    """A serialized spec without a payload plus one (a later field wins when parsed)."""
    p = payload_json.encode()
    return spec + b"\x12" + varint(len(p)) + p


class SubmitBatcher:
    def __init__(self, channel: grpc.Channel, metadata: Sequence[Tuple[str, str]], rpc_timeout: float, target: str,
                 on_accepted: Callable[[List[TaskFuture]], None],
                 max_in_flight: int = MAX_IN_FLIGHT, max_batch: int = MAX_BATCH,
                 max_batch_bytes: int = MAX_BATCH_BYTES) -> None:
        self._call = channel.unary_unary(_SUBMIT_BATCH, request_serializer=None,
                                         response_deserializer=cs.SubmitBatchResponse.FromString)
        self._metadata = metadata
        self._rpc_timeout = rpc_timeout
        self._target = target
        self._on_accepted = on_accepted
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._max_batch_bytes = max_batch_bytes
        self._lock = threading.Lock()   # a plain lock on the submit path; _cv only for drain
        self._cv = threading.Condition(self._lock)
        # Guarded by _lock:
        self._specs: List[bytes] = []   # framed serialized specs
        self._futures: List[TaskFuture] = []
        self._in_flight = 0    # calls on the wire
        self._answering = 0    # calls whose answers are still being handed out
        self._closed = False

    def add(self, spec: bytes, future: TaskFuture) -> None:
        """Queues one serialized TaskSpec for ``future`` (framed as SubmitBatchRequest field 1)."""
        framed = b"\n" + varint(len(spec)) + spec
        with self._lock:
            if self._closed:
                raise RuntimeError("the client is closed")
            self._specs.append(framed)
            self._futures.append(future)
            if self._in_flight >= self._max_in_flight:
                return
            batch = self._take_locked()
        self._start(*batch)

    def add_many(self, specs: Sequence[bytes], futures: Sequence[TaskFuture]) -> None:
        """Queues serialized TaskSpecs, one per future."""
        framed = [b"\n" + varint(len(spec)) + spec for spec in specs]
        with self._lock:
            if self._closed:
                raise RuntimeError("the client is closed")
            self._specs.extend(framed)
            self._futures.extend(futures)
            batches = []
            while self._specs and self._in_flight < self._max_in_flight:
                batches.append(self._take_locked())
        for batch in batches:
            self._start(*batch)

    def queued(self) -> int:
        with self._lock:
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

    def _take_locked(self) -> Tuple[List[bytes], List[TaskFuture]]:
        specs = self._specs
        n = min(len(specs), self._max_batch)
        if n > 1:
            size = 0
            limit = self._max_batch_bytes
            for i in range(n):
                size += len(specs[i])
                if size > limit and i > 0:
                    n = i
                    break
        batch = (specs[:n], self._futures[:n])
        del specs[:n]
        del self._futures[:n]
        self._in_flight += 1
        self._answering += 1
        return batch

    def _start(self, specs: List[bytes], futures: List[TaskFuture]) -> None:
        try:
            call = self._call.future(b"".join(specs), timeout=self._rpc_timeout,
                                     metadata=self._metadata)
        except Exception as e:  # e.g. the channel is closed
            self._answer(futures, None, Error(f"submit not sent: {e}"))
            return
        call.add_done_callback(lambda c: self._finished(c, futures))

    def _finished(self, call: grpc.Future, futures: List[TaskFuture]) -> None:
        try:
            response = call.result()
            error = None
        except grpc.RpcError as e:
            response, error = None, from_grpc(e, self._target)
        except Exception as e:  # a cancelled call (the channel closed under it)
            response, error = None, Error(f"submit failed: {e!r}")
        self._answer(futures, response, error)

    def _answer(self, futures: List[TaskFuture], response: Optional[cs.SubmitBatchResponse],
                error: Optional[Exception]) -> None:
        # The next call leaves before this one's answers are handed out: keeps the wire busy.
        with self._lock:
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
