"""client.complete_task (DESIGN.md "Browser automation"): a running attempt completed from
outside with its own token. Inside a task the SDK picks that token up from
RETIRE_CLUSTER_TOKEN, so the task's programs may complete it, and only it; a client token is
refused whatever its role, and an ended attempt's token is void. (A python_script does
not wait for callbacks: its own end decides its outcome, the completion is only accepted.)"""

import asyncio
import json

import pytest

import retire_cluster as rc

CODE = """
import asyncio, json, os, retire_cluster as rc
me = rc.current_task_id()
out = {}
with rc.Client() as c:
    out["own"] = c.complete_task(me, result={"from": "inside"})
    try:
        c.complete_task(OTHER)
    except rc.PermissionDenied as e:
        out["other"] = [e.code, e.details]

async def main():
    async with rc.aio.Client() as c:
        out["aio"] = await c.complete_task(me, "failed", {"n": 1}, error="again")
        try:
            await c.complete_task(OTHER, "failed")
        except rc.PermissionDenied as e:
            out["aio_other"] = e.code

asyncio.run(main())
out["token"] = os.environ["RETIRE_CLUSTER_TOKEN"]  # to show it is void once the task ended
print(json.dumps(out))
"""


def test_a_task_completes_itself_and_no_other(cluster, client):
    other = client.submit("echo", {}, tags=["nowhere"])  # never runs: queued
    task = client.submit("python_script", {"code": CODE.replace("OTHER", repr(other.task_id))},
                         max_retries=0, timeout=120)
    exc = task.exception(timeout=150)
    record = task.task()
    assert exc is None, f"{exc}\nstdout: {record['stdout']}\nstderr: {record['stderr']}"
    said = json.loads(record["stdout"])
    assert said["own"] == {"task_id": task.task_id, "attempt": 1, "accepted": True}
    assert said["aio"] == {"task_id": task.task_id, "attempt": 1, "accepted": True}
    assert said["other"] == ["PERMISSION_DENIED",
                             f"a task token may complete only its own task ({task.task_id}), not {other.task_id}"]
    assert said["aio_other"] == "PERMISSION_DENIED"

    # From outside with a client's credentials (here the loopback caller, admin): refused.
    with pytest.raises(rc.PermissionDenied) as refused:
        client.complete_task(task.task_id)
    assert "completing a task takes that task's own token" in refused.value.details
    # The task's own token once its attempt has ended: void.
    with rc.Client(cluster.target, token=said["token"]) as ended, pytest.raises(rc.Unauthenticated):
        ended.complete_task(task.task_id)
    # Over HTTP alike: 401 for the ended attempt's token.
    code, body = cluster.http("POST", f"/tasks/{task.task_id}/complete", {"status": "success"}, token=said["token"])
    assert code == 401, body
    client.cancel(other.task_id)


def test_arguments_are_checked_before_sending(client):
    with pytest.raises(rc.InvalidArgument, match=r'status: expected "success" or "failed", got \'done\''):
        client.complete_task("task-1", "done")
    with pytest.raises(TypeError, match="result: expected a dict"):
        client.complete_task("task-1", result=[1, 2])
    with pytest.raises(rc.InvalidArgument, match='error: only with status="failed"'):
        client.complete_task("task-1", error="why")
    with pytest.raises(rc.InvalidArgument, match="task_id: required"):
        client.complete_task("")
    with pytest.raises(TypeError, match="error: expected a string"):
        client.complete_task("task-1", "failed", error=3)

    async def aio():
        async with rc.aio.Client(client.target) as c:
            await c.complete_task("task-1", "running")
    with pytest.raises(rc.InvalidArgument, match="status: expected"):
        asyncio.run(aio())
