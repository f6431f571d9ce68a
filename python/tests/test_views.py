"""client.get/list/workers/stats are the HTTP API's JSON (one shape on every surface)."""

import rc_cluster
import retire_cluster as rc


def http_get(cluster, path):
    code, body = cluster.http("GET", path)
    assert code == 200, body
    return body


def test_get_equals_http_for_finished_tasks(client, cluster):
    ok = client.submit("echo", {"nested": {"a": [1, "two"]}}, metadata={"k": "v"}, max_retries=0,
                       device="w1")
    failed = client.submit("python_script", {"code": "print('out'); raise SystemExit(2)"}, max_retries=0)
    for f in (ok, failed):
        f.exception(timeout=30)
        assert client.get(f.task_id) == http_get(cluster, f"/tasks/{f.task_id}")
    assert client.get(failed.task_id)["stdout"] == "out\n"


def test_get_equals_http_for_a_pending_task_with_after(client, cluster):
    first = client.submit("sleep", {"duration": 30})
    waiting = client.submit("echo", {}, after=[(first, "any")], priority="low")
    try:
        got = client.get(waiting.task_id)
        assert got["status"] == "pending"
        assert got == http_get(cluster, f"/tasks/{waiting.task_id}")
        assert got["after"] == [{"task_id": first.task_id, "condition": "any"}]
    finally:
        client.cancel(first.task_id)
    assert waiting.result(timeout=30) == {}


def test_wait_equals_http(client, cluster):
    f = client.submit("echo", {"w": 1})
    final = client.wait(f.task_id, timeout=30)
    assert final["status"] == "success"
    assert final == http_get(cluster, f"/tasks/{f.task_id}")


def test_list_equals_http(client, cluster):
    fs = []
    for i in range(5):  # one after another, so "newest first" has one answer
        fs.append(client.submit("echo", {"list": i}))
        fs[-1].result(timeout=30)
    got = client.list(limit=5)
    assert got == http_get(cluster, "/tasks?limit=5")["tasks"]
    assert [t["task_id"] for t in got] == [f.task_id for f in reversed(fs)]  # newest first
    succeeded = client.list(status="success", task_type="echo", limit=3)
    assert len(succeeded) == 3
    assert all(t["status"] == "success" and t["task_type"] == "echo" for t in succeeded)
    assert client.list(status="success", limit=3) == http_get(cluster, "/tasks?status=success&limit=3")["tasks"]


def test_list_by_parent(client, cluster):
    code = ("import retire_cluster as rc\n"
            "with rc.Client() as c:\n"
            "    print(c.map('echo', [{'c': 1}, {'c': 2}]))\n")
    parent = client.submit("python_script", {"code": code}, max_retries=0)
    parent.result(timeout=60)
    children = client.list(parent=parent.task_id)
    assert sorted(t["payload"]["c"] for t in children) == [1, 2]
    assert all(t["parent_task_id"] == parent.task_id and t["depth"] == 1 for t in children)
    assert children == http_get(cluster, f"/tasks?parent={parent.task_id}")["tasks"]


def test_workers_and_stats_shapes(client, cluster):
    workers = client.workers()
    http_workers = http_get(cluster, "/workers")["workers"]
    assert sorted(w["device_id"] for w in workers) == ["w1", "w2"]
    assert [list(w) for w in workers] == [list(w) for w in http_workers]  # same keys, same order
    by_id = {w["device_id"]: w for w in http_workers}
    for w in workers:
        assert w["status"] == "online"
        assert "python_script" in w["task_types"] and "echo" in w["task_types"]
        assert w["slots"] == by_id[w["device_id"]]["slots"] == 4
    one = client.workers(device_id="w2")
    assert [w["device_id"] for w in one] == ["w2"]

    stats = client.stats()
    http_stats = http_get(cluster, "/stats")
    assert list(stats) == list(http_stats)
    assert stats["online_devices"] == 2 and stats["total_slots"] == 8
    assert isinstance(stats["tasks"], dict) and stats["tasks_succeeded"] > 0
    assert isinstance(stats["uptime_seconds"], (int, float))


def test_client_target(cluster):
    with rc.Client(cluster.target) as c:
        assert c.target == cluster.target


def test_get_equals_http_for_a_running_task_with_live_usage(client, cluster):
    f = client.submit("command", {"command": "sleep 60"}, max_retries=0)
    try:
        def sampled():
            u = client.get(f.task_id)["resource_usage"]
            return u["sampled_at"] is not None and u["pid"] > 0
        rc_cluster.wait_for(sampled, 30, "a live usage sample of the running command")
        # A new sample arrives every second: an HTTP read between two equal SDK reads saw
        # the same one (each sample is a new revision).
        for _ in range(50):
            before = client.get(f.task_id)
            http = http_get(cluster, f"/tasks/{f.task_id}")
            if client.get(f.task_id) == before:
                break
        else:
            raise AssertionError("the task changed between every two reads")
        assert before == http
        u = before["resource_usage"]
        assert before["status"] == "running"
        assert u["memory_bytes"] > 0 and u["cpu_percent"] >= 0 and u["sampled_at"].endswith("Z")
    finally:
        client.cancel(f.task_id)
    ended = client.wait(f.task_id, timeout=30)
    assert ended["status"] == "cancelled"
    assert ended["resource_usage"]["sampled_at"] is None and ended["resource_usage"]["pid"] == 0
    assert ended == http_get(cluster, f"/tasks/{f.task_id}")
