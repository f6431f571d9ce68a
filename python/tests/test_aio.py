"""rc.aio.Client: the same API with await (grpc.aio). Each test runs its own event loop."""

import asyncio

import pytest

import retire_cluster as rc

NO_SUCH_TASK = "task-0000000000000000"


def run(coro, limit=60):
    return asyncio.run(asyncio.wait_for(coro, limit))


def test_submit_and_await(cluster):
    async def main():
        async with rc.aio.Client(cluster.target) as c:
            fut = await c.submit("echo", {"aio": True}, priority="high")
            assert isinstance(fut, asyncio.Future)
            assert isinstance(fut, rc.aio.TaskFuture)
            assert fut.task_id.startswith("task-")  # known once submit returned
            assert await fut == {"aio": True}
            task = fut.task()
            assert task["status"] == "success" and task["task_id"] == fut.task_id
            assert await c.get(fut.task_id) == task
            assert (await c.wait(fut.task_id, timeout=10))["status"] == "success"
            return fut.task_id
    task_id = run(main())
    code, body = cluster.http("GET", f"/tasks/{task_id}")
    assert code == 200 and body["priority"] == "high"


def test_gather_many(cluster):
    async def main():
        async with rc.aio.Client(cluster.target) as c:
            futs = await asyncio.gather(*(c.submit("echo", {"i": i}) for i in range(100)))
            return await asyncio.gather(*futs)
    assert run(main()) == [{"i": i} for i in range(100)]


def test_map_list_workers_stats(cluster):
    async def main():
        c = rc.aio.Client(cluster.target)
        try:
            got = await c.map("echo", [{"m": i} for i in range(30)])
            assert got == [{"m": i} for i in range(30)]
            mixed = await c.map("python_script", [{"code": "print(1)"}, {"code": "raise SystemExit(5)"}],
                                max_retries=0, return_exceptions=True)
            assert mixed[0]["stdout"] == "1\n" and isinstance(mixed[1], rc.TaskFailed)
            with pytest.raises(rc.TaskFailed):
                await c.map("python_script", [{"code": "raise SystemExit(5)"}], max_retries=0)
            listed = await c.list(task_type="echo", limit=2)
            assert len(listed) == 2 and all(t["task_type"] == "echo" for t in listed)
            workers = await c.workers()
            assert sorted(w["device_id"] for w in workers) == ["w1", "w2"]
            stats = await c.stats()
            assert stats["online_devices"] == 2
        finally:
            await c.close()
    run(main())


def test_errors(cluster):
    async def main():
        async with rc.aio.Client(cluster.target) as c:
            failed = await c.submit("python_script", {"code": "raise SystemExit(9)"}, max_retries=0)
            with pytest.raises(rc.TaskFailed) as e:
                await failed
            assert e.value.task["task_id"] == failed.task_id and e.value.task["exit_code"] == 9
            with pytest.raises(rc.NotFound):
                await c.get(NO_SUCH_TASK)
            with pytest.raises(rc.InvalidArgument):
                await c.submit("echo", {}, after=[NO_SUCH_TASK])
            with pytest.raises(TypeError, match="bogus"):
                await c.submit("echo", {}, bogus=1)
            with pytest.raises(rc.InvalidArgument, match="payload"):
                await c.submit("echo", {"x": object()})
            sleeper = await c.submit("sleep", {"duration": 30})
            with pytest.raises(rc.DeadlineExceeded):
                await c.wait(sleeper.task_id, timeout=0.3)
            await c.cancel(sleeper.task_id)
    run(main())


def test_cancel(cluster):
    async def main():
        async with rc.aio.Client(cluster.target) as c:
            fut = await c.submit("sleep", {"duration": 60})
            for _ in range(150):
                if (await c.get(fut.task_id))["status"] == "running":
                    break
                await asyncio.sleep(0.1)
            assert await c.cancel(fut.task_id) == {"task_id": fut.task_id, "cancelled": True}
            with pytest.raises(rc.TaskCancelled) as e:
                await fut
            assert e.value.task["status"] == "cancelled"
    run(main())
