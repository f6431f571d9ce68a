"""Submits batched under load, as client/async.h ``SubmitBatcher``.

While ``max_in_flight`` SubmitBatch calls are on the wire, new submits queue, and the next
call carries everything queued (up to ``max_batch`` specs and about ``max_batch_bytes``).
An idle batcher sends a lone submit at once, so batching never adds a delay. When an
answer arrives each future learns its task id (or its refusal), and the accepted ones are
handed to ``on_accepted`` (the wait stream) in one go.

The calls are blocking calls made by a few sender threads of ours (started when first
needed, ended by ``stop``): a blocking call polls its own completion queue on the calling
thread, whereas each ``.future()`` call on a channel with no other call open makes grpcio
start (and end) a thread to poll the channel, a thread per lone submit.

Specs are queued serialized and a request is the concatenation of its specs framed as
field 1 of SubmitBatchRequest (the protobuf wire format), so a batch costs one join
instead of a copy of every spec message into the request.

A batch of one (a lone submit: nothing else was queued) goes as SubmitAndWatch instead,
whose request is the same bytes (the spec is field 1 of SubmitRequest too). Its first
snapshot answers the submit; when that one is terminal (a quick task: the coordinator
sends the outcome of a task that ended while its submit was committing as the first
snapshot) it also ends the future, and ``submit(...).result()`` costs one call instead
of a submit and then a wait on the wait stream. Otherwise the call is cancelled (the
watch, not the task) and the wait joins the wait stream like any other.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

import grpc

from retire_cluster import _views
from retire_cluster.errors import Error, forget_call, from_code_number, from_grpc
from retire_cluster.futures import TaskFuture
from retire_cluster.v1 import client_service_pb2 as cs
from retire_cluster.v1 import task_pb2

MAX_IN_FLIGHT = 4
MAX_BATCH = 2000
MAX_BATCH_BYTES = 3 << 20  # under the coordinator's 4 MiB message limit; a larger spec goes alone
_SUBMIT_BATCH = "/retire_cluster.v1.ClientService/SubmitBatch"
_SUBMIT_AND_WATCH = "/retire_cluster.v1.ClientService/SubmitAndWatch"
_IDLE_POLL = 1.0  # how often an idle sender re-checks for release() (stop() wakes it)
_log = logging.getLogger("retire_cluster")


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
    """The client's submit queue and its sender threads (see the module docstring).

    A sender takes a batch, makes the call, and before handing out the answers wakes
    another sender for what queued meanwhile, so the wire stays busy: up to
    ``max_in_flight`` calls on the wire and one more sender handing out answers.
    """

    def __init__(self, channel: grpc.Channel, metadata: Sequence[Tuple[str, str]], rpc_timeout: float, target: str,
                 on_accepted: Callable[[List[TaskFuture]], None],
                 max_in_flight: int = MAX_IN_FLIGHT, max_batch: int = MAX_BATCH,
                 max_batch_bytes: int = MAX_BATCH_BYTES) -> None:
        self._call = channel.unary_unary(_SUBMIT_BATCH, request_serializer=None,
                                         response_deserializer=cs.SubmitBatchResponse.FromString)
        self._watch = channel.unary_stream(_SUBMIT_AND_WATCH, request_serializer=None,
                                           response_deserializer=task_pb2.Task.FromString)
        self._metadata = metadata
        self._rpc_timeout = rpc_timeout
        self._target = target
        self._on_accepted = on_accepted
        self._max_in_flight = max_in_flight
        self._max_senders = max_in_flight + 1
        self._max_batch = max_batch
        self._max_batch_bytes = max_batch_bytes
        self._lock = threading.Lock()   # never held while calling gRPC or handing out answers
        self._work = threading.Condition(self._lock)   # idle senders wait here
        self._done = threading.Condition(self._lock)   # drain waits here
        # Guarded by _lock:
        self._specs: List[bytes] = []   # framed serialized specs
        self._futures: List[TaskFuture] = []
        self._in_flight = 0    # calls on the wire
        self._answering = 0    # batches taken whose answers are not all handed out yet
        self._senders: List[threading.Thread] = []   # alive
        self._starting = 0     # senders started, not yet at the queue
        self._idle = 0         # senders waiting in _work
        self._signalled = 0    # _work notifications not yet consumed by a waking sender
        self._closed = False   # no more submits (drain, stop)
        self._stopped = False  # senders end; also set without the lock by release()

    def add(self, spec: bytes, future: TaskFuture) -> None:
        """Queues one serialized TaskSpec for ``future`` (framed as SubmitBatchRequest field 1)."""
        framed = b"\n" + varint(len(spec)) + spec
        with self._lock:
            if self._closed:
                raise RuntimeError("the client is closed")
            self._specs.append(framed)
            self._futures.append(future)
            start = self._kick_locked()
        if start:
            self._start_sender()

    def add_many(self, specs: Sequence[bytes], futures: Sequence[TaskFuture]) -> None:
        """Queues serialized TaskSpecs, one per future."""
        framed = [b"\n" + varint(len(spec)) + spec for spec in specs]
        with self._lock:
            if self._closed:
                raise RuntimeError("the client is closed")
            self._specs.extend(framed)
            self._futures.extend(futures)
            start = self._kick_locked()
        if start:
            self._start_sender()

    def queued(self) -> int:
        with self._lock:
            return len(self._specs) + self._in_flight * self._max_batch

    def drain(self, timeout: float) -> bool:
        """Stops taking submits and waits (up to timeout) until every queued one is answered."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            while self._specs or self._in_flight or self._answering:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True

    def stop(self, timeout: float) -> None:
        """Ends the senders (waiting up to timeout for them); submits still queued are refused.

        Call it after closing the channel when ``drain`` timed out: a sender in a call
        returns only when the call ends.
        """
        with self._lock:
            self._closed = self._stopped = True
            futures = self._futures
            self._specs, self._futures = [], []
            senders = list(self._senders)
            self._work.notify_all()
            self._done.notify_all()
        if futures:
            error = Error("the client was closed before this submit was sent")
            for f in futures:
                f._refused(error)
        deadline = time.monotonic() + timeout
        for t in senders:
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))

    def release(self) -> None:
        """Ends idle senders within _IDLE_POLL without taking our lock (safe in a finalizer,
        which may run on any thread at any allocation). Nothing is queued then: see client._release."""
        self._stopped = True
        if self._lock.acquire(blocking=False):
            try:
                self._work.notify_all()
            finally:
                self._lock.release()

    # -- the senders -------------------------------------------------------------------------

    def _kick_locked(self) -> bool:
        """Wakes an idle sender for the queued specs if a call may leave now; True: start one.

        One at a time: the sender that takes a batch kicks the next if more remain.
        """
        if (not self._specs or self._in_flight >= self._max_in_flight or self._signalled or self._starting
                or self._stopped):
            return False
        if self._idle > self._signalled:
            self._signalled += 1
            self._work.notify()
            return False
        if len(self._senders) >= self._max_senders:
            return False  # every sender is busy; the next one back takes them
        self._starting += 1
        return True

    def _start_sender(self) -> None:
        t = threading.Thread(target=self._run, name="retire-cluster-submit", daemon=True)
        with self._lock:
            self._senders.append(t)
        try:
            t.start()
        except RuntimeError:  # no thread to be had (interpreter shutdown): send from this one
            with self._lock:
                self._senders.remove(t)
                self._starting -= 1
            self._send_here()

    def _send_here(self) -> None:
        while True:
            with self._lock:
                if not self._specs or self._in_flight >= self._max_in_flight:
                    return  # the calls on the wire send the rest when they end
                batch = self._take_locked()
            self._send(*batch)

    def _run(self) -> None:
        with self._lock:
            self._starting -= 1
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._send(*batch)
            except Exception:  # a bug of ours must not stop the sender (its batch is answered)
                _log.exception("retire_cluster: submit sender failed")
            batch = None  # an idle sender holds no future (and so no client)

    def _next_batch(self) -> Optional[Tuple[List[bytes], List[TaskFuture]]]:
        """Waits for queued specs and takes a batch; None when the sender should end."""
        with self._lock:
            while not self._specs or self._in_flight >= self._max_in_flight:
                if self._stopped or (self._closed and not self._specs):
                    self._senders.remove(threading.current_thread())
                    return None
                self._idle += 1
                self._work.wait(_IDLE_POLL)
                # Woken by _kick_locked, stop() or the poll: whichever, this one now looks.
                self._idle -= 1
                if self._signalled:
                    self._signalled -= 1
                if self._stopped:
                    self._senders.remove(threading.current_thread())
                    return None
            batch = self._take_locked()
            start = self._kick_locked()
        if start:
            self._start_sender()
        return batch

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

    def _send(self, specs: List[bytes], futures: List[TaskFuture]) -> None:
        """One blocking SubmitBatch call, then its answers handed out."""
        if len(futures) == 1:
            self._send_lone(specs[0], futures[0])
            return
        response, error = self._guarded(
            lambda: self._call(b"".join(specs), timeout=self._rpc_timeout, metadata=self._metadata))
        self._answer(futures, response, error)

    def _guarded(self, call: Callable[[], Any]) -> Tuple[Any, Optional[Exception]]:
        """``call()`` (a blocking call on the wire) and None, or None and the error its
        futures get; then the next call may leave, before this one's answers are handed
        out: keeps the wire busy."""
        value: Any = None
        error: Optional[Exception] = None
        try:
            value = call()
        except StopIteration:  # a stream that ended without a message
            error = Error("the coordinator ended the submit without answering it")
        except grpc.RpcError as e:
            error = from_grpc(e, self._target)
            forget_call(e)
        except ValueError as e:  # the channel is closed
            error = Error(f"submit not sent: {e}")
        except Exception as e:
            error = Error(f"submit failed: {e!r}")
        with self._lock:
            self._in_flight -= 1
            start = self._kick_locked()
        if start:
            self._start_sender()
        return value, error

    def _send_lone(self, request: bytes, future: TaskFuture) -> None:
        """One SubmitAndWatch call, read up to its first snapshot (see the module docstring)."""
        calls = []

        def first_snapshot() -> task_pb2.Task:
            calls.append(self._watch(request, timeout=self._rpc_timeout, metadata=self._metadata))
            return next(calls[0])

        first, error = self._guarded(first_snapshot)
        try:
            if first is None:
                future._refused(error)
                return
            future._accepted(first.task_id)
            if first.status in _views.TERMINAL:
                future._finish_task(first)  # the coordinator ended the call with it
                return
            calls[0].cancel()  # ends the watch; the task runs on, and its wait joins the stream
            self._on_accepted([future])
        finally:
            with self._lock:
                self._answering -= 1
                self._done.notify_all()

    def _answer(self, futures: List[TaskFuture], response: Optional[cs.SubmitBatchResponse],
                error: Optional[Exception]) -> None:
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
            with self._lock:
                self._answering -= 1
                self._done.notify_all()
