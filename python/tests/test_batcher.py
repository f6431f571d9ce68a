"""The submit queue's lone submit (SubmitAndWatch), against a fake channel: what each first
snapshot does to the future, deterministically (test_futures.py runs it for real)."""

import grpc

import retire_cluster as rc
from retire_cluster._batcher import SubmitBatcher, simple_spec
from retire_cluster.futures import TaskFuture
from retire_cluster.v1 import task_pb2


class FakeWatch:
    """A SubmitAndWatch call: yields `snapshots`, or raises `error` at the first read."""

    def __init__(self, snapshots, error=None):
        self._snapshots = list(snapshots)
        self._error = error
        self.cancelled = False

    def __iter__(self):
        return self

    def __next__(self):
        if self._error is not None:
            raise self._error
        if not self._snapshots:
            raise StopIteration
        return self._snapshots.pop(0)

    def cancel(self):
        self.cancelled = True


class FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


class FakeChannel:
    def __init__(self, watch):
        self.watch = watch
        self.requests = []

    def unary_unary(self, *args, **kwargs):
        def call(request, **kw):
            raise AssertionError("a lone submit must not go as SubmitBatch")
        return call

    def unary_stream(self, method, **kwargs):
        assert method.endswith("/SubmitAndWatch")

        def call(request, **kw):
            self.requests.append(request)
            return self.watch
        return call


def submit_one(watch):
    channel = FakeChannel(watch)
    accepted = []
    batcher = SubmitBatcher(channel, [], 5.0, "fake:1", accepted.extend)
    future = TaskFuture(client=None)
    batcher.add(simple_spec("echo", '{"n":1}'), future)
    assert batcher.drain(10.0)
    batcher.stop(1.0)
    return channel, future, accepted


def snapshot(status, result=""):
    t = task_pb2.Task(task_id="task-1", status=status, result=result)
    t.spec.task_type = "echo"
    return t


def test_a_terminal_first_snapshot_ends_the_future_without_the_wait_stream():
    watch = FakeWatch([snapshot(task_pb2.TASK_STATUS_SUCCESS, '{"n":1}')])
    channel, future, accepted = submit_one(watch)
    # The request is the spec framed as field 1: a SubmitRequest.
    assert channel.requests == [b"\n" + bytes([len(simple_spec("echo", '{"n":1}'))]) + simple_spec("echo", '{"n":1}')]
    assert future.task_id == "task-1"
    assert future.result(timeout=0) == {"n": 1}
    assert accepted == [] and not watch.cancelled


def test_a_running_first_snapshot_cancels_the_watch_and_waits_on_the_stream():
    watch = FakeWatch([snapshot(task_pb2.TASK_STATUS_RUNNING)])
    _, future, accepted = submit_one(watch)
    assert future.task_id == "task-1"
    assert not future.done()
    assert accepted == [future] and watch.cancelled


def test_a_refused_lone_submit_fails_the_future_with_the_coordinators_error():
    watch = FakeWatch([], FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "spec.timeout: at most 86400 s"))
    _, future, accepted = submit_one(watch)
    err = future.exception(timeout=0)
    assert isinstance(err, rc.InvalidArgument) and "spec.timeout" in str(err)
    assert accepted == []


def test_a_call_that_ends_without_a_snapshot_fails_the_future():
    _, future, accepted = submit_one(FakeWatch([]))
    assert isinstance(future.exception(timeout=0), rc.Error)
    assert accepted == []
