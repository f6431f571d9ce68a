"""TaskFuture: a ``concurrent.futures.Future`` for one task of the cluster.

The client creates one per submit (and per ``Client.future(id)``). Its states follow
concurrent.futures, so ``concurrent.futures.wait`` and ``as_completed`` work on it:

* pending while the task is queued or runs (``running()`` stays False: the future cannot
  tell queued from running; ask ``Client.get``);
* finished with the decoded result JSON when the task ends ``success``;
* finished with :class:`~retire_cluster.TaskFailed` / :class:`~retire_cluster.TaskTimeout`
  when it ends ``failed`` / ``timeout``, or with the coordinator's refusal of the submit;
* cancelled when the task ends ``cancelled`` (``cancelled()`` is True and ``result()``
  raises :class:`~retire_cluster.TaskCancelled` carrying the task).

Losing the connection does not end a pending future: a thread blocked in ``result()`` or
``exception()`` gets :class:`~retire_cluster.Unavailable`, the client re-adds the wait on
its next stream, and a later ``result()`` (and every callback) still gets the outcome.
"""

from __future__ import annotations

import concurrent.futures
import time
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from retire_cluster import _views
from retire_cluster.errors import DeadlineExceeded, Error, RpcError, TaskCancelled, Unavailable, task_error
from retire_cluster.v1 import task_pb2

if TYPE_CHECKING:  # pragma: no cover
    from retire_cluster.client import Client

_DONE = (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)
_SUCCESS = task_pb2.TASK_STATUS_SUCCESS
_CANCELLED = task_pb2.TASK_STATUS_CANCELLED
_result_value = _views.result_value


class TaskFuture(concurrent.futures.Future):
    """The outcome of one task; see the module docstring for its states.

    Created by :meth:`Client.submit`, :meth:`Client.map` and :meth:`Client.future`; do not
    call ``set_result`` / ``set_exception`` yourself.
    """

    def __init__(self, client: "Client", task_id: Optional[str] = None) -> None:
        super().__init__()
        self._client = client
        self._task_id = task_id          # None until the coordinator accepted the submit
        self._submit_error: Optional[BaseException] = None
        self._task_pb: Optional[task_pb2.Task] = None   # the terminal snapshot, converted lazily
        self._task_dict: Optional[Dict[str, Any]] = None
        self._id_waiting = False         # a thread waits in task_id (see _accepted)
        self._breaks = 0                 # connection losses seen while this wait was open
        self._break_error: Optional[RpcError] = None
        self._break_since = 0.0          # see _broken

    # -- the task id -------------------------------------------------------------------

    @property
    def task_id(self) -> str:
        """The task's id. Blocks until the coordinator accepted the submit.

        Raises the coordinator's refusal of the submit (``rc.InvalidArgument``,
        ``rc.PermissionDenied``, ``rc.ResourceExhausted``, ``rc.Unavailable``, ...), or
        ``rc.DeadlineExceeded`` if no answer came within the client's bound.
        """
        tid = self._task_id
        if tid is not None:
            return tid
        bound = self._client._submit_bound()
        deadline = time.monotonic() + bound
        with self._condition:
            self._id_waiting = True  # before reading _task_id: see _accepted
            while self._task_id is None:
                if self._submit_error is not None:
                    raise self._submit_error
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeadlineExceeded(f"submit not answered within {bound:.0f}s", "DEADLINE_EXCEEDED")
                self._condition.wait(min(left, 1.0))
            return self._task_id

    # -- waiting -----------------------------------------------------------------------

    def result(self, timeout: Optional[float] = None) -> Any:
        """The task's result JSON, decoded (None when the handler returned nothing).

        Waits up to ``timeout`` seconds (None: until the task ends). Raises
        ``rc.TaskFailed`` / ``rc.TaskTimeout`` / ``rc.TaskCancelled`` (``.task`` is the final
        task dict), the submit's refusal, ``rc.NotFound`` for an unknown task,
        ``rc.Unavailable`` when the connection is lost while waiting (the future stays
        pending: call ``result()`` again once the coordinator is back), and
        ``concurrent.futures.TimeoutError`` when ``timeout`` passes.
        """
        self._wait(timeout)
        if self._state == FINISHED:
            if self._exception is not None:
                raise self._exception
            return self._result
        raise self._cancelled_error()

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        """The exception ``result()`` would raise for the ended task, or None on success.

        Waits like ``result()`` and raises what it raises for waiting (``rc.Unavailable``,
        ``concurrent.futures.TimeoutError``); a cancelled task raises ``rc.TaskCancelled``.
        """
        self._wait(timeout)
        if self._state == FINISHED:
            return self._exception
        raise self._cancelled_error()

    def task(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """The final task as a dict (the HTTP API's shape), whatever its status.

        Waits like ``result()``. Raises the submit's refusal or the wait's error
        (``rc.NotFound``) when there is no task to show.
        """
        self._wait(timeout)
        if self._task_pb is None:
            raise self._exception  # type: ignore[misc]  # refused submit or failed wait
        return self._dict()

    def cancel(self) -> bool:
        """Asks the coordinator to cancel the task (CancelTask).

        True when the task is cancelled: the future then ends cancelled (``cancelled()`` is
        True and ``result()`` raises ``rc.TaskCancelled``). False when the task had already
        ended otherwise, or its submit was refused. Blocks until the submit is accepted.
        Raises ``rc.Unavailable`` (and the other call errors) when the coordinator cannot
        be asked.
        """
        if self._state in _DONE:
            return self._state != FINISHED
        try:
            tid = self.task_id
        except Error:
            return False
        answer = self._client._cancel_call(tid)
        if not answer.cancelled and answer.status != _CANCELLED:
            return False
        # The coordinator ended it at once; the terminal snapshot comes on the wait stream.
        if not self._wait_settled(self._client._rpc_timeout):
            snapshot = self._client._get_call(tid)
            if snapshot.status in _views.TERMINAL:
                self._finish_task(snapshot)
        return self._state in (CANCELLED, CANCELLED_AND_NOTIFIED)

    def __repr__(self) -> str:
        state = _views.status_name(self._task_pb.status) if self._task_pb is not None else self._state.lower()
        return f"<TaskFuture {self._task_id or '(not accepted yet)'} {state}>"

    # -- the client's side ---------------------------------------------------------------

    def _wait(self, timeout: Optional[float]) -> None:
        """Returns once done; raises Unavailable on a connection loss, TimeoutError on timeout."""
        if self._state in _DONE:
            return
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        with self._condition:
            seen = self._breaks
            while self._state not in _DONE:
                # Only a loss seen after this call began counts: a reconnect attempt that was
                # already failing when the coordinator came back must not fail a fresh wait.
                if self._breaks != seen and self._break_since >= started:
                    err = self._break_error
                    raise Unavailable(err.details if err else "connection lost", "UNAVAILABLE")
                if deadline is None:
                    self._condition.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise concurrent.futures.TimeoutError(
                        f"task {self._task_id or '(not accepted yet)'} did not end within {timeout}s")
                self._condition.wait(left)

    def _wait_settled(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._state not in _DONE:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
        return True

    def _cancelled_error(self) -> TaskCancelled:
        if self._exception is None:
            self._exception = task_error(self._dict())  # a TaskCancelled
        return self._exception  # type: ignore[return-value]

    def _dict(self) -> Dict[str, Any]:
        if self._task_dict is None:
            self._task_dict = _views.task_to_dict(self._task_pb)  # type: ignore[arg-type]
        return self._task_dict

    def _accepted(self, task_id: str) -> None:
        # Lock-free unless a thread waits in task_id: it sets _id_waiting before it reads
        # _task_id, we write _task_id before we read _id_waiting, so one of us sees the other.
        self._task_id = task_id
        if self._id_waiting:
            with self._condition:
                self._condition.notify_all()

    def _refused(self, error: BaseException) -> None:
        with self._condition:
            self._submit_error = error
        self._settle(None, error, False)

    def _finish_task(self, t: task_pb2.Task) -> None:
        """Ends the future from the task's terminal snapshot."""
        self._task_pb = t
        status = t.status
        if status == _SUCCESS:
            self._settle(_result_value(t) if t.result else None, None, False)
        elif status == _CANCELLED:
            self._settle(None, None, True)
        else:
            self._settle(None, task_error(self._dict()), False)

    def _fail(self, error: BaseException) -> None:
        """Ends the future with an error that is not the task's (unknown id, client closed)."""
        self._settle(None, error, False)

    def _broken(self, error: RpcError, since: float) -> None:
        """The connection carrying this wait was lost, as seen from `since` (time.monotonic()
        when the stream ended, or when the failed reconnect attempt began): wakes waiters
        that were already blocked then with Unavailable."""
        with self._condition:
            self._breaks += 1
            self._break_error = error
            self._break_since = since
            self._condition.notify_all()

    def _settle(self, result: Any, exception: Optional[BaseException], cancelled: bool) -> bool:
        """Moves to the final state once (later calls are ignored) and runs the callbacks."""
        with self._condition:
            if self._state in _DONE:
                return False
            if cancelled:
                self._state = CANCELLED_AND_NOTIFIED
                for w in self._waiters:
                    w.add_cancelled(self)
            else:
                self._result = result
                self._exception = exception
                self._state = FINISHED
                if exception is None:
                    for w in self._waiters:
                        w.add_result(self)
                else:
                    for w in self._waiters:
                        w.add_exception(self)
            if self._condition._waiters:  # threads in result()/exception(); skip the call otherwise
                self._condition.notify_all()
        self._invoke_callbacks()  # outside our lock: callbacks may call back into the client
        return True


DoneCallback = Callable[[TaskFuture], Any]
