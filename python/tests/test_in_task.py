"""The SDK inside a python_script task: `import retire_cluster` works without listing it in
requirements, and rc.Client() submits children through RETIRE_CLUSTER_* (DESIGN.md "Workflows")."""

import json

CHILD_CODE = """
import json, retire_cluster as rc
assert rc.current_task_id(), "RETIRE_CLUSTER_TASK_ID is not set"
with rc.Client() as c:
    child = c.submit("echo", {"from": "inside", "parent": rc.current_task_id()})
    print(json.dumps({"child": child.task_id, "result": child.result(timeout=30)}))
"""


def run_parent(client, payload):
    parent = client.submit("python_script", payload, max_retries=0, timeout=120)
    exc = parent.exception(timeout=150)
    assert exc is None, f"{exc}\nstdout: {parent.task()['stdout']}\nstderr: {parent.task()['stderr']}"
    out = parent.result()
    said = json.loads(out["stdout"])
    assert said["result"] == {"from": "inside", "parent": parent.task_id}
    child = client.get(said["child"])
    assert child["status"] == "success"
    assert child["parent_task_id"] == parent.task_id and child["depth"] == 1
    assert [t["task_id"] for t in client.list(parent=parent.task_id)] == [said["child"]]
    return out


def test_a_script_submits_a_child_with_the_sdk(client):
    run_parent(client, {"code": CHILD_CODE})


def test_a_keep_alive_script_in_a_venv_submits_a_child(client):
    out = run_parent(client, {"code": CHILD_CODE, "keep_alive": True})
    assert out.get("environment"), out  # it ran in the worker's virtualenv
