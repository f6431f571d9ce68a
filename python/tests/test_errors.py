"""Exceptions: task endings carry the task, server refusals map to rc.* classes, and bad
arguments are refused before anything is sent (issue 15 "Bad input")."""

import socket
import time

import pytest

import retire_cluster as rc

NO_SUCH_TASK = "task-0000000000000000"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens once it is closed


def test_task_failed_carries_the_task(client):
    f = client.submit("python_script", {"code": "import sys; print('bad', file=sys.stderr); sys.exit(3)"},
                      max_retries=0)
    with pytest.raises(rc.TaskFailed) as e:
        f.result(timeout=30)
    t = e.value.task
    assert t["task_id"] == f.task_id == e.value.task_id
    assert t["status"] == "failed" and e.value.status == "failed"
    assert t["exit_code"] == 3 and "bad" in t["stderr"]
    assert t["error_message"]
    assert isinstance(f.exception(timeout=0), rc.TaskFailed)
    assert f.task()["status"] == "failed"


def test_task_timeout_carries_the_task(client):
    f = client.submit("sleep", {"duration": 30}, timeout=1, max_retries=0)
    with pytest.raises(rc.TaskTimeout) as e:
        f.result(timeout=30)
    assert e.value.task["task_id"] == f.task_id
    assert e.value.task["status"] == "timeout"


def test_not_found(client):
    with pytest.raises(rc.NotFound):
        client.get(NO_SUCH_TASK)
    with pytest.raises(rc.NotFound):
        client.wait(NO_SUCH_TASK, timeout=5)
    with pytest.raises(rc.NotFound):
        client.cancel(NO_SUCH_TASK)
    with pytest.raises(rc.NotFound):
        client.future(NO_SUCH_TASK).result(timeout=10)


def test_invalid_argument_from_the_server(client):
    f = client.submit("echo", {}, after=[NO_SUCH_TASK])  # the spec is fine; the id is unknown
    with pytest.raises(rc.InvalidArgument) as e:
        f.task_id
    assert NO_SUCH_TASK in str(e.value)
    assert e.value.code == "INVALID_ARGUMENT"
    with pytest.raises(rc.InvalidArgument):
        f.result(timeout=10)
    assert isinstance(f.exception(timeout=0), rc.InvalidArgument)
    assert f.done()


BAD_SUBMITS = [
    (TypeError, "bogus", lambda c: c.submit("echo", {}, bogus=1)),
    (rc.InvalidArgument, "payload", lambda c: c.submit("echo", {"when": object()})),
    (rc.InvalidArgument, "payload", lambda c: c.submit("echo", {"x": float("nan")})),
    (TypeError, "payload", lambda c: c.submit("echo", [1, 2])),
    (TypeError, "task_type", lambda c: c.submit(3)),
    (TypeError, "priority", lambda c: c.submit("echo", priority=5)),
    (rc.InvalidArgument, "priority", lambda c: c.submit("echo", priority="soon")),
    (TypeError, "timeout", lambda c: c.submit("echo", timeout="10")),
    (rc.InvalidArgument, "timeout", lambda c: c.submit("echo", timeout=-1)),
    (TypeError, "max_retries", lambda c: c.submit("echo", max_retries=1.5)),
    (TypeError, "tags", lambda c: c.submit("echo", tags="gpu")),
    (TypeError, "metadata", lambda c: c.submit("echo", metadata=["a"])),
    (TypeError, "after", lambda c: c.submit("echo", after=[42])),
    (rc.InvalidArgument, "condition", lambda c: c.submit("echo", after=[(NO_SUCH_TASK, "maybe")])),
]


@pytest.mark.parametrize("exc,name,call", BAD_SUBMITS, ids=[f"{e.__name__}-{n}-{i}" for i, (e, n, _) in
                                                            enumerate(BAD_SUBMITS)])
def test_bad_arguments_are_refused_before_sending(exc, name, call):
    # Nobody listens on the target: an error that needs the coordinator would be Unavailable.
    c = rc.Client(f"127.0.0.1:{closed_port()}", rpc_timeout=2)
    try:
        started = time.monotonic()
        with pytest.raises(exc) as e:
            call(c)
        assert name in str(e.value)
        assert not isinstance(e.value, rc.Unavailable)
        assert time.monotonic() - started < 1
    finally:
        c.close()


def test_bad_arguments_submit_nothing(client):
    newest = client.list(limit=1)[0]["task_id"]
    for exc, _, call in BAD_SUBMITS:
        with pytest.raises(exc):
            call(client)
    assert client.list(limit=1)[0]["task_id"] == newest


def test_unavailable_when_nobody_listens():
    c = rc.Client(f"127.0.0.1:{closed_port()}", rpc_timeout=2)
    try:
        with pytest.raises(rc.Unavailable) as e:
            c.stats()
        assert isinstance(e.value, ConnectionError)
        with pytest.raises(rc.Unavailable):
            c.submit("echo", {}).result(timeout=15)
    finally:
        c.close()
