"""TaskFuture: a concurrent.futures.Future for one task (DESIGN.md "Python SDK")."""

import concurrent.futures
import gc
import threading
import time

import grpc
import pytest

import retire_cluster as rc
import rc_cluster


def running(client, task_id, limit=15.0):
    rc_cluster.wait_for(lambda: client.get(task_id)["status"] == "running", limit,
                        lambda: f"{task_id} never ran: {client.get(task_id)}")


def test_submit_returns_a_future_with_the_result(client):
    f = client.submit("echo", {"message": "hi", "n": [1, 2.5, None, True]})
    assert isinstance(f, rc.TaskFuture)
    assert isinstance(f, concurrent.futures.Future)
    assert f.result(timeout=30) == {"message": "hi", "n": [1, 2.5, None, True]}
    assert f.done() and not f.cancelled()
    assert f.exception(timeout=0) is None
    assert f.task_id.startswith("task-")
    task = f.task(timeout=5)
    assert task["task_id"] == f.task_id and task["status"] == "success"
    assert client.get(f.task_id)["result"] == {"message": "hi", "n": [1, 2.5, None, True]}


def test_submit_options_reach_the_task(client):
    f = client.submit("echo", {"x": 1}, priority="high", timeout=60, max_retries=1,
                      metadata={"team": "py"}, idempotency_key="pytest-options-1")
    f.result(timeout=30)
    task = client.get(f.task_id)
    assert task["priority"] == "high"
    assert task["requirements"]["timeout_seconds"] == 60
    assert task["requirements"]["max_retries"] == 1
    assert task["metadata"] == {"team": "py"}
    assert task["idempotency_key"] == "pytest-options-1"
    again = client.submit("echo", {"x": 1}, idempotency_key="pytest-options-1")
    assert again.task_id == f.task_id  # the same key finds the same task


def test_callbacks_run_once_done_and_when_added_late(client):
    seen = []
    called = threading.Event()

    def callback(fut):
        seen.append(fut)
        called.set()

    f = client.submit("sleep", {"duration": 0.3})
    f.add_done_callback(callback)
    assert called.wait(30), "the done callback was never called"
    assert seen == [f] and f.done()
    late = []
    f.add_done_callback(late.append)  # already done: called at once
    assert late == [f]


def test_wait_and_as_completed(client):
    fs = [client.submit("echo", {"i": i}) for i in range(20)]
    done, not_done = concurrent.futures.wait(fs, timeout=30)
    assert len(done) == 20 and not not_done
    got = sorted(f.result()["i"] for f in concurrent.futures.as_completed(fs, timeout=30))
    assert got == list(range(20))
    slow = client.submit("sleep", {"duration": 1})
    fast = client.submit("echo", {"fast": True})
    first = next(concurrent.futures.as_completed([slow, fast], timeout=30))
    assert first is fast
    done, _ = concurrent.futures.wait([slow, fast], timeout=30, return_when=concurrent.futures.ALL_COMPLETED)
    assert done == {slow, fast}


def test_result_timeout_then_cancel_of_a_sleep_task(client):
    f = client.submit("sleep", {"duration": 60})
    with pytest.raises(concurrent.futures.TimeoutError):
        f.result(timeout=0.2)
    assert not f.done()
    running(client, f.task_id)
    started = time.monotonic()
    assert f.cancel() is True
    with pytest.raises(rc.TaskCancelled) as e:
        f.result(timeout=20)
    assert time.monotonic() - started < 20
    assert isinstance(e.value, concurrent.futures.CancelledError)
    assert e.value.task["task_id"] == f.task_id
    assert e.value.task["status"] == "cancelled"
    assert f.done()
    assert client.get(f.task_id)["status"] == "cancelled"


def test_future_attaches_to_an_existing_task(client):
    f = client.submit("echo", {"attach": 1})
    g = client.future(f.task_id)
    assert g.task_id == f.task_id
    assert g.result(timeout=30) == {"attach": 1}


def test_wait_get_and_cancel_by_id(client):
    f = client.submit("sleep", {"duration": 60})
    with pytest.raises(rc.DeadlineExceeded):
        client.wait(f.task_id, timeout=0.5)
    answer = client.cancel(f.task_id)
    assert answer == {"task_id": f.task_id, "cancelled": True}
    final = client.wait(f.task_id, timeout=20)
    assert final["status"] == "cancelled"
    assert client.cancel(f.task_id) == {"task_id": f.task_id, "cancelled": False}
    with pytest.raises(rc.TaskCancelled):
        f.result(timeout=20)


def test_after_waits_for_its_dependency(client):
    a = client.submit("sleep", {"duration": 1})
    b = client.submit("echo", {"after": "a"}, after=[a])
    c = client.submit("echo", {"after": "a-id"}, after=[(a.task_id, "any")])
    assert client.get(b.task_id)["status"] == "pending"
    assert b.result(timeout=30) == {"after": "a"}
    assert c.result(timeout=30) == {"after": "a-id"}
    ta, tb = client.get(a.task_id), client.get(b.task_id)
    assert ta["status"] == "success"
    assert tb["after"] == [{"task_id": a.task_id, "condition": "ok"}]
    assert tb["started_at"] >= ta["finished_at"]  # RFC 3339 UTC strings sort by time


def test_after_a_failed_dependency_cancels_and_notok_runs(client):
    bad = client.submit("python_script", {"code": "raise SystemExit(4)"}, max_retries=0)
    ok = client.submit("echo", {"never": True}, after=[bad])
    notok = client.submit("echo", {"cleanup": True}, after=[{"task_id": bad.task_id, "condition": "notok"}])
    with pytest.raises(rc.TaskFailed):
        bad.result(timeout=30)
    with pytest.raises(rc.TaskCancelled) as e:
        ok.result(timeout=30)
    assert bad.task_id in e.value.task["error_message"]
    assert notok.result(timeout=30) == {"cleanup": True}


def test_close_sends_every_queued_submit(cluster):
    with rc.Client(cluster.target) as c:
        fs = [c.submit("echo", {"i": i}) for i in range(300)]
    ids = [f.task_id for f in fs]  # known: close() sent them all before it returned
    assert len(set(ids)) == 300
    with rc.Client(cluster.target) as other:
        assert [other.wait(i, timeout=30)["result"] for i in (ids[0], ids[-1])] == [{"i": 0}, {"i": 299}]



def test_close_leaves_no_grpc_call_to_the_garbage_collector(cluster):
    """grpcio's stream calls raise themselves; kept in a reference cycle (the error's traceback
    holds the frames that hold the call) they were freed only by a cyclic collection, which at
    interpreter exit deadlocked in the call's __del__ (a stopped daemon thread held its lock):
    a python_script task that waited on a child hung at exit until its timeout. Every call the
    client made is freed by the time close() returns: a wait on the stream (cancelled by
    close) and a lone submit the coordinator refused (its SubmitAndWatch call raised)."""
    gc.collect()
    gc.disable()  # a collection during the test would hide a cycle
    try:
        with rc.Client(cluster.target) as c:
            assert c.submit("sleep", {"duration": 0.2}).exception(timeout=30) is None
            assert c._waiter._thread is not None  # the wait went on the stream
            with pytest.raises(rc.InvalidArgument, match="may only hold letters"):
                c.submit("bad type!", {}).result(timeout=30)
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collection finds unreachable stays in gc.garbage
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, grpc.RpcError)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not left, f"calls left for the garbage collector: {left}"


def test_sequential_submits_start_no_thread_per_call(cluster, monkeypatch):
    """A lone submit goes out from a long-lived sender thread: 100 sequential round trips
    start a handful of threads, not one per call (grpcio starts a thread for every
    non-blocking call on an idle channel; each cost ~0.6 ms of client CPU), and close()
    ends the senders."""
    started = []
    real_start = threading.Thread.start

    def counting_start(self, *args, **kwargs):
        started.append(self)
        return real_start(self, *args, **kwargs)

    c = rc.Client(cluster.target)
    assert c.submit("echo", {"warm": 1}).result(timeout=30) == {"warm": 1}  # the wait stream is up
    monkeypatch.setattr(threading.Thread, "start", counting_start)
    try:
        for i in range(100):
            assert c.submit("echo", {"i": i}).result(timeout=30) == {"i": i}
    finally:
        monkeypatch.undo()
        c.close()
    assert len(started) <= 10, f"{len(started)} threads started for 100 sequential round trips"
    senders = [t for t in started if t.name == "retire-cluster-submit"]
    assert not [t for t in senders if t.is_alive()], "sender threads outlive close()"


def test_a_lone_submit_of_a_longer_task_waits_on_the_stream(cluster):
    """A lone submit goes as SubmitAndWatch; a task still running when its submit is
    answered is waited for on the wait stream (its watch call cancelled, not the task)."""
    with rc.Client(cluster.target) as c:
        f = c.submit("sleep", {"duration": 1})
        f.result(timeout=30)  # raises unless it succeeded
        assert f.task(timeout=5)["status"] == "success"
        assert c._waiter._thread is not None  # the wait went on the stream
