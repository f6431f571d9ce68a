"""Network loss while waiting (issue 15 "Bad input"): the coordinator stops while a future
waits -> result() raises rc.Unavailable in bounded time; after the coordinator is back on the
same port and data dir, the same future's result() succeeds."""

import asyncio
import threading
import time

import pytest

import retire_cluster as rc
import rc_cluster

UNAVAILABLE_WITHIN = 15.0  # seconds from the coordinator's exit to result() raising


@pytest.fixture()
def own_cluster():
    c = rc_cluster.Cluster("restart", workers=("w1",))
    yield c.start()
    c.close()


def wait_running(client, task_id):
    rc_cluster.wait_for(lambda: client.get(task_id)["status"] == "running", 15,
                        lambda: f"{task_id} never ran")


def stop_coordinator(cluster):
    code = cluster.coordinator.stop()
    assert code is not None, "the coordinator did not exit"


def test_sync_future_survives_a_coordinator_restart(own_cluster):
    c = rc.Client(own_cluster.target, rpc_timeout=3)
    try:
        f = c.submit("sleep", {"duration": 3})
        wait_running(c, f.task_id)
        outcome = {}

        def waiter():
            try:
                outcome["result"] = f.result(timeout=60)
            except BaseException as e:  # noqa: B902 - recorded for the assertion below
                outcome["error"] = e
            outcome["at"] = time.monotonic()

        t = threading.Thread(target=waiter, daemon=True)
        t.start()
        time.sleep(0.3)  # the wait is on the stream
        assert t.is_alive(), outcome
        stop_coordinator(own_cluster)
        stopped = time.monotonic()
        t.join(UNAVAILABLE_WITHIN + 5)
        assert not t.is_alive(), "result() still blocked after the coordinator stopped"
        assert isinstance(outcome.get("error"), rc.Unavailable), outcome
        assert outcome["at"] - stopped < UNAVAILABLE_WITHIN
        assert not f.done()  # still pending: it may be waited on again
        with pytest.raises(rc.Unavailable):  # and says so again while the coordinator is away
            f.result(timeout=30)

        own_cluster.coordinator.start()  # at once, on the same ports and data dir
        assert f.result(timeout=60) == {"slept_for": 3}
        assert c.get(f.task_id)["status"] == "success"
        # The client keeps working for new tasks too.
        assert c.submit("echo", {"after": "restart"}).result(timeout=30) == {"after": "restart"}
    finally:
        c.close()


def test_aio_future_survives_a_coordinator_restart(own_cluster):
    async def main():
        async with rc.aio.Client(own_cluster.target, rpc_timeout=3) as c:
            fut = await c.submit("sleep", {"duration": 3})
            for _ in range(150):
                if (await c.get(fut.task_id))["status"] == "running":
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)  # the wait is on the stream
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, stop_coordinator, own_cluster)
            await loop.run_in_executor(None, own_cluster.coordinator.start)
            # An asyncio.Future ends once: it either rode out the break or ended Unavailable.
            try:
                assert await asyncio.wait_for(asyncio.shield(fut), 60) == {"slept_for": 3}
            except rc.Unavailable:
                pass
            return await c.wait(fut.task_id, timeout=60)
    final = asyncio.run(asyncio.wait_for(main(), 120))
    assert final["status"] == "success" and final["result"] == {"slept_for": 3}
