"""The missions API on the HTTP bridge (DESIGN.md "Missions over HTTP")."""

import pytest

EXECUTE = "/v1/missions/execute"


def execute(cluster, body, timeout=120):
    return cluster.http("POST", EXECUTE, body, timeout=timeout)


def test_a_mission_runs_and_answers_with_its_output(cluster, client):
    code, r = execute(cluster, {"mission_id": "m-ok", "code": "import sys\nprint('hello mission')\n"
                                "print('note', file=sys.stderr)", "timeout": 60,
                                "metadata": {"user": "jarvis"}})
    assert code == 200, r
    assert r["mission_id"] == "m-ok"
    assert r["success"] is True and r["error"] is None
    assert r["stdout"] == "hello mission\n" and "note" in r["stderr"]
    assert r["exit_code"] == 0
    assert isinstance(r["execution_time"], (int, float)) and r["execution_time"] >= 0
    meta = r["metadata"]
    assert meta["task_id"].startswith("task-") and meta["device_id"] in ("w1", "w2")
    assert meta["status"] == "success"
    task = client.get(meta["task_id"])
    assert task["task_type"] == "python_script"
    assert task["metadata"]["mission_id"] == "m-ok" and task["metadata"]["user"] == "jarvis"
    assert task["requirements"]["timeout_seconds"] == 60
    assert task["payload"]["code"].startswith("import sys")


def test_a_mission_on_a_chosen_device(cluster):
    for device in ("w1", "w2"):
        code, r = execute(cluster, {"mission_id": f"m-{device}", "code": "print(1)", "target_device_id": device})
        assert code == 200, r
        assert r["success"] is True and r["metadata"]["device_id"] == device


def test_a_mission_no_worker_can_run_is_503_at_once_and_wait_0_queues_it(cluster, client):
    code, r = execute(cluster, {"mission_id": "m-away", "code": "print(1)", "target_device_id": "sleeping-pc"},
                      timeout=10)
    assert code == 503, r
    assert r["success"] is False and r["metadata"]["task_id"] is None
    assert "worker 'sleeping-pc' is not connected" in r["error"] and "nothing was submitted" in r["error"]
    code, r = cluster.http("POST", EXECUTE + "?wait=0",
                           {"mission_id": "m-later", "code": "print(1)", "target_device_id": "sleeping-pc"})
    assert code == 202, r
    queued = client.get(r["metadata"]["task_id"])
    assert queued["status"] == "queued" and queued["unschedulable_reason"]
    client.cancel(queued["task_id"])


def test_a_failing_mission(cluster):
    code, r = execute(cluster, {"mission_id": "m-bad", "code": "import sys\nprint('before')\n"
                                "raise RuntimeError('mission broke')"})
    assert code == 200, r
    assert r["mission_id"] == "m-bad"
    assert r["success"] is False
    assert isinstance(r["error"], str) and r["error"]
    assert r["exit_code"] == 1 and "mission broke" in r["stderr"] and r["stdout"] == "before\n"
    assert r["metadata"]["status"] == "failed"


def test_a_mission_that_times_out(cluster):
    code, r = execute(cluster, {"mission_id": "m-slow", "code": "import time\ntime.sleep(30)", "timeout": 1})
    assert code == 200, r
    assert r["success"] is False and r["error"]
    assert r["metadata"]["status"] == "timeout"


BAD_MISSIONS = [
    ({"code": "print(1)"}, "mission_id"),
    ({"mission_id": 7, "code": "print(1)"}, "mission_id"),
    ({"mission_id": "m"}, "code"),
    ({"mission_id": "m", "code": ["print(1)"]}, "code"),
    ({"mission_id": "m", "code": "print(1)", "requirements": "numpy"}, "requirements"),
    ({"mission_id": "m", "code": "print(1)", "requirements": [3]}, "requirements"),
    ({"mission_id": "m", "code": "print(1)", "timeout": 0}, "timeout"),
    ({"mission_id": "m", "code": "print(1)", "timeout": "soon"}, "timeout"),
    ({"mission_id": "m", "code": "print(1)", "keep_alive": "yes"}, "keep_alive"),
    ({"mission_id": "m", "code": "print(1)", "browser_interaction": 1}, "browser_interaction"),
    ({"mission_id": "m", "code": "print(1)", "metadata": ["a"]}, "metadata"),
    ({"mission_id": "m", "code": "print(1)", "target_device_id": ["w1"]}, "target_device_id"),
]


@pytest.mark.parametrize("body,field", BAD_MISSIONS, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_MISSIONS)])
def test_bad_missions_are_400_naming_the_field(cluster, body, field):
    code, r = execute(cluster, body, timeout=10)
    assert code == 400, r
    assert field in r["error"], r


def test_a_body_that_is_not_json_is_400(cluster):
    code, r = execute(cluster, b"{not json", timeout=10)
    assert code == 400 and r["error"], r


def test_browser_control_without_browser_workers_is_503(cluster):
    for operation in ("start", "stop", "status"):
        code, r = cluster.http("POST", "/v1/browser/control", {"operation": operation, "port": 9222}, timeout=10)
        assert code == 503, r
        assert r["success"] is False and r["is_running"] is False
        assert "no worker can run browser tasks" in r["message"]
        assert "--allow browser" in r["message"], r


def test_browser_control_bad_operation_is_400(cluster):
    code, r = cluster.http("POST", "/v1/browser/control", {"operation": "explode"}, timeout=10)
    assert code == 400, r
    assert "operation" in r.get("error", r.get("message", "")), r
