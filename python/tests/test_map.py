"""Client.map: many tasks of one type, results in the payloads' order."""

import pytest

import retire_cluster as rc


def test_map_keeps_the_order(client):
    payloads = [{"i": i, "pad": "x" * (i % 7)} for i in range(200)]
    assert client.map("echo", payloads, timeout=60) == payloads


def test_map_of_python_eval(client):
    got = client.map("python_eval", [{"expression": "1+1"}, {"expression": "2*3"}, {"expression": "sum(range(5))"}],
                     timeout=60)
    assert got == [{"value": 2}, {"value": 6}, {"value": 10}]


def test_map_of_nothing(client):
    assert client.map("echo", []) == []


def test_map_raises_the_first_failure(client):
    payloads = [{"code": "print('a')"}, {"code": "raise SystemExit(7)"}, {"code": "print('c')"}]
    with pytest.raises(rc.TaskFailed) as e:
        client.map("python_script", payloads, max_retries=0, timeout=60)
    assert e.value.task["payload"] == {"code": "raise SystemExit(7)"}
    assert e.value.task["status"] == "failed"


def test_map_return_exceptions_puts_them_in_place(client):
    payloads = [{"code": "print('a')"}, {"code": "raise SystemExit(7)"}, {"code": "print('c')"}]
    got = client.map("python_script", payloads, max_retries=0, timeout=60, return_exceptions=True)
    assert len(got) == 3
    assert got[0]["stdout"] == "a\n" and got[2]["stdout"] == "c\n"
    assert isinstance(got[1], rc.TaskFailed)
    assert got[1].task["exit_code"] == 7


def test_map_timeout(client):
    with pytest.raises(TimeoutError):  # concurrent.futures.TimeoutError is TimeoutError on 3.11
        client.map("sleep", [{"duration": 3}, {"duration": 3}], timeout=0.5)


def test_map_checks_every_payload_before_sending(client):
    newest = client.list(limit=1)[0]["task_id"]
    with pytest.raises(rc.InvalidArgument, match="payload"):
        client.map("echo", [{"ok": 1}, {"bad": object()}])
    with pytest.raises(TypeError, match="payload"):
        client.map("echo", [{"ok": 1}, ["not", "a", "dict"]])
    with pytest.raises(TypeError, match="bogus"):
        client.map("echo", [{"ok": 1}], bogus=True)
    assert client.list(limit=1)[0]["task_id"] == newest  # nothing was submitted
