"""Bearer tokens and roles (DESIGN.md "Security options"): the SDK sends the token, the
coordinator's refusals become rc.Unauthenticated / rc.PermissionDenied."""

import asyncio
import os
import secrets

import pytest

import retire_cluster as rc
import rc_cluster

TOKENS = {role: secrets.token_hex(24) for role in ("admin", "submit", "read")}


@pytest.fixture(scope="module")
def auth_cluster():
    tmp = rc_cluster.make_tmp("tokens")
    path = os.path.join(tmp, "clients")
    with open(path, "w") as f:
        f.write("# role token name\n")
        f.write(f"admin {TOKENS['admin']} root\nsubmit {TOKENS['submit']} alice\nread {TOKENS['read']} auditor\n")
    c = rc_cluster.Cluster("tokens", tmp=tmp, workers=("w1",), worker_args=["--allow", "python_script"],
                           coordinator_args=["--client-tokens-file", path], admin_token=TOKENS["admin"])
    yield c.start()
    c.close()


def test_submit_role_submits(auth_cluster):
    with rc.Client(auth_cluster.target, token=TOKENS["submit"]) as c:
        f = c.submit("echo", {"who": "alice"})
        assert f.result(timeout=30) == {"who": "alice"}
        assert c.get(f.task_id)["owner"] == "alice"


def test_read_role_cannot_submit_but_reads(auth_cluster):
    with rc.Client(auth_cluster.target, token=TOKENS["submit"]) as alice:
        task_id = alice.submit("echo", {}).task_id
    with rc.Client(auth_cluster.target, token=TOKENS["read"]) as c:
        f = c.submit("echo", {"who": "auditor"})
        with pytest.raises(rc.PermissionDenied):
            f.result(timeout=15)
        with pytest.raises(rc.PermissionDenied):
            c.cancel(task_id)
        assert c.wait(task_id, timeout=30)["owner"] == "alice"
        assert any(t["task_id"] == task_id for t in c.list(limit=10))


def test_wrong_or_no_token_is_unauthenticated(auth_cluster):
    for token in (secrets.token_hex(24), ""):
        with rc.Client(auth_cluster.target, token=token) as c:
            with pytest.raises(rc.Unauthenticated):
                c.stats()
            with pytest.raises(rc.Unauthenticated):
                c.submit("echo", {}).result(timeout=15)


def test_token_from_the_environment(auth_cluster, monkeypatch):
    monkeypatch.setenv("RETIRE_CLUSTER_TOKEN", TOKENS["submit"])
    with rc.Client(auth_cluster.target) as c:
        assert c.submit("echo", {"env": 1}).result(timeout=30) == {"env": 1}
    monkeypatch.setenv("RETIRE_CLUSTER_TOKEN", TOKENS["read"])
    with rc.Client(auth_cluster.target) as c:
        with pytest.raises(rc.PermissionDenied):  # not Unauthenticated: the read token was sent
            c.submit("echo", {}).result(timeout=15)
    monkeypatch.setenv("RETIRE_CLUSTER_COORDINATOR", auth_cluster.target)
    with rc.Client() as c:  # the target from the environment too
        assert c.target == auth_cluster.target
        assert c.stats()["online_devices"] == 1


def test_aio_tokens(auth_cluster):
    async def main():
        async with rc.aio.Client(auth_cluster.target, token=TOKENS["submit"]) as c:
            assert await (await c.submit("echo", {"aio": 1})) == {"aio": 1}
        async with rc.aio.Client(auth_cluster.target, token=TOKENS["read"]) as c:
            with pytest.raises(rc.PermissionDenied):
                await c.submit("echo", {})
        async with rc.aio.Client(auth_cluster.target, token=secrets.token_hex(24)) as c:
            with pytest.raises(rc.Unauthenticated):
                await c.stats()
    asyncio.run(asyncio.wait_for(main(), 60))


def test_missions_need_the_submit_role(auth_cluster):
    mission = {"mission_id": "auth-1", "code": "print('hi')"}
    code, body = auth_cluster.http("POST", "/v1/missions/execute", mission, token=secrets.token_hex(24))
    assert code == 401, body
    code, body = auth_cluster.http("POST", "/v1/missions/execute", mission, token=TOKENS["read"])
    assert code == 403, body
    assert "error" in body
    code, body = auth_cluster.http("POST", "/v1/missions/execute", mission, token=TOKENS["submit"], timeout=90)
    assert code == 200, body
    assert body["success"] is True and body["stdout"] == "hi\n"
