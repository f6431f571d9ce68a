"""client.tasks: published JavaScript tasks (DESIGN.md "JavaScript tasks"), sync and rc.aio.

A cluster of its own with client tokens (alice and bob submit, auditor reads, root is
admin), so ownership is tested too. Its worker runs `js` when this build has the engine
(build/worker/js/node_modules and `node` on PATH); without it a run is checked up to the
task the coordinator stored (the resolved payload), and only the result checks skip.
"""

import asyncio
import hashlib
import inspect
import os
import pathlib
import secrets
import shutil
import subprocess

import pytest

import retire_cluster as rc
import rc_cluster
from retire_cluster._js_tasks import AioJsTasks, JsTasks

TOKENS = {name: secrets.token_hex(24) for name in ("root", "alice", "bob", "auditor")}
ROLES = {"root": "admin", "alice": "submit", "bob": "submit", "auditor": "read"}


def js_engine_missing() -> str:
    """Why this build cannot run js tasks ("" when it can)."""
    modules = os.path.join(rc_cluster.build_dir(), "worker", "js", "node_modules")
    if not os.path.isdir(modules):
        return f"no js engine in this build ({modules} is missing: npm ci did not run, npm missing?)"
    if shutil.which("node") is None:
        return "no `node` on PATH for the js engine"
    # A worker built before its js handler existed would refuse `--allow js` (and every test here).
    try:
        worker = rc_cluster.binary("retire-cluster-worker")
    except RuntimeError as e:  # the cluster fixture then fails with the same words
        return str(e)
    helptext = subprocess.run([worker, "--help"], capture_output=True, text=True, timeout=10)
    if "--js-engine-dir" not in helptext.stdout + helptext.stderr:
        return "this build's worker has no js handler (no --js-engine-dir option)"
    return ""


JS_MISSING = js_engine_missing()


def module(name: str, body: str = "return {echo: input};", description: str = "Echoes its input.") -> str:
    return (f"/**\n * @task {name}\n * @description {description}\n"
            " * @param {string} input.message - the text to echo\n"
            " * @param {number} [input.times] - how often\n"
            " * @returns {Object} the input, under echo\n */\n"
            f"module.exports = async function execute(input, context) {{\n  {body}\n}};\n")


@pytest.fixture(scope="module")
def js_cluster():
    tmp = rc_cluster.make_tmp("js")
    path = os.path.join(tmp, "clients")
    with open(path, "w") as f:
        f.write("# role token name\n")
        f.writelines(f"{ROLES[who]} {TOKENS[who]} {who}\n" for who in TOKENS)
    worker_args = [] if JS_MISSING else ["--allow", "js"]
    c = rc_cluster.Cluster("js", tmp=tmp, workers=("w1",), worker_args=worker_args,
                           coordinator_args=["--client-tokens-file", path], admin_token=TOKENS["root"])
    yield c.start()
    c.close()


@pytest.fixture(scope="module")
def alice(js_cluster):
    with rc.Client(js_cluster.target, token=TOKENS["alice"]) as c:
        yield c


def as_user(cluster, who: str) -> rc.Client:
    return rc.Client(cluster.target, token=TOKENS[who])


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_publish_from_a_file_then_the_same_code_is_unchanged(alice, tmp_path):
    code = module("py-file")
    path = tmp_path / "echo.js"
    path.write_text(code)
    t = alice.tasks.publish(path)  # a pathlib.Path
    assert t["name"] == "py-file" and t["version"] == 1 and t["unchanged"] is False
    assert t["sha256"] == sha256(code) and t["code_bytes"] == len(code.encode())
    assert t["owner"] == "alice" and t["versions"] == 1 and t["created_at_ms"] > 0
    assert "Echoes its input." in t["description"]
    assert [(p["name"], p["type"], p["optional"]) for p in t["params"]] == [
        ("input.message", "string", False), ("input.times", "number", True)]
    assert t["params"][0]["description"] == "the text to echo"
    assert "the input, under echo" in t["returns"]
    assert "code" not in t

    again = alice.tasks.publish(str(path))  # a str naming an existing file
    assert again["unchanged"] is True and again["version"] == 1 and again["sha256"] == t["sha256"]

    changed = alice.tasks.publish(module("py-file", "return {echo: input, v: 2};"))  # code text
    assert changed["unchanged"] is False and changed["version"] == 2 and changed["versions"] == 2


def test_publish_code_text_under_another_name(alice):
    one_line = "/** @task py-one-line */ module.exports = (input) => input;"
    t = alice.tasks.publish(one_line, name="py-renamed")
    assert t["name"] == "py-renamed" and t["version"] == 1 and t["sha256"] == sha256(one_line)
    assert alice.tasks.show("py-renamed")["code"] == one_line


def test_list_show_and_remove(alice):
    v1, v2 = module("py-life", "return 1;"), module("py-life", "return 2;")
    alice.tasks.publish(v1)
    alice.tasks.publish(v2)

    listed = {t["name"]: t for t in alice.tasks.list()}
    assert listed["py-life"]["version"] == 2 and listed["py-life"]["versions"] == 2
    assert listed["py-life"]["sha256"] == sha256(v2)
    assert all("code" not in t for t in listed.values())

    latest = alice.tasks.show("py-life")
    assert latest["version"] == 2 and latest["code"] == v2
    first = alice.tasks.show("py-life", version=1)
    assert first["version"] == 1 and first["code"] == v1 and first["sha256"] == sha256(v1)

    assert alice.tasks.remove("py-life", version=2) == 1
    with pytest.raises(rc.NotFound):
        alice.tasks.show("py-life", version=2)
    assert alice.tasks.show("py-life")["version"] == 1
    # a removed version's number is not used again
    assert alice.tasks.publish(module("py-life", "return 3;"))["version"] == 3

    assert alice.tasks.remove("py-life") == 2
    assert "py-life" not in {t["name"] for t in alice.tasks.list()}
    with pytest.raises(rc.NotFound):
        alice.tasks.show("py-life")
    with pytest.raises(rc.NotFound):
        alice.tasks.remove("py-life")


def test_the_coordinators_refusals_carry_its_message(alice):
    with pytest.raises(rc.InvalidArgument) as e:
        alice.tasks.publish("module.exports = async function execute(input) { return input; };\n")
    assert "no JSDoc @task tag" in str(e.value) and e.value.code == "INVALID_ARGUMENT"
    with pytest.raises(rc.InvalidArgument) as e:
        alice.tasks.publish(module("py-ok"), name="-starts-with-a-dash")
    assert "name" in str(e.value)
    with pytest.raises(rc.NotFound) as e:
        alice.tasks.show("py-no-such-task")
    assert e.value.code == "NOT_FOUND"
    with pytest.raises(rc.NotFound):
        alice.tasks.show("py-file", version=999)

    f = alice.tasks.run("py-no-such-task", {"x": 1})
    with pytest.raises(rc.NotFound) as e:
        f.result(timeout=30)
    assert "py-no-such-task" in str(e.value)
    alice.tasks.publish(module("py-one"))
    with pytest.raises(rc.NotFound) as e:
        alice.tasks.run("py-one", version=7).task_id
    assert "version" in str(e.value) or "7" in str(e.value)


def test_bad_arguments_are_refused_before_anything_is_sent(alice, tmp_path):
    with pytest.raises(FileNotFoundError, match="no file 'missing.js'"):
        alice.tasks.publish("missing.js")
    with pytest.raises(FileNotFoundError):
        alice.tasks.publish(tmp_path / "missing.js")
    with pytest.raises(rc.InvalidArgument, match="path_or_code: empty"):
        alice.tasks.publish("")
    (tmp_path / "latin1.js").write_bytes(b"/** @task x */\nmodule.exports = () => '\xe9';\n")
    with pytest.raises(rc.InvalidArgument, match="not UTF-8"):
        alice.tasks.publish(tmp_path / "latin1.js")
    with pytest.raises(TypeError, match="path_or_code"):
        alice.tasks.publish(b"/** @task x */\nmodule.exports = 1;")
    with pytest.raises(TypeError, match="name"):
        alice.tasks.publish(module("x"), name=3)
    with pytest.raises(rc.InvalidArgument, match="version"):
        alice.tasks.show("py-file", version=0)
    with pytest.raises(TypeError, match="version"):
        alice.tasks.remove("py-file", version="1")
    with pytest.raises(rc.InvalidArgument, match="name"):
        alice.tasks.run("")
    with pytest.raises(rc.InvalidArgument, match="input"):
        alice.tasks.run("py-file", {"x": object()})
    with pytest.raises(rc.InvalidArgument, match="memory_mb"):
        alice.tasks.run("py-file", memory_mb=4096)
    with pytest.raises(TypeError):
        alice.tasks.run("py-file", no_such_option=1)
    with pytest.raises(rc.InvalidArgument, match="priority"):
        alice.tasks.run("py-file", priority="asap")


def test_a_name_belongs_to_its_first_publisher(js_cluster, alice):
    alice.tasks.publish(module("py-owned"))
    with as_user(js_cluster, "bob") as bob:
        with pytest.raises(rc.PermissionDenied) as e:
            bob.tasks.publish(module("py-owned", "return 'bob';"))
        assert "alice" in str(e.value)
        with pytest.raises(rc.PermissionDenied):
            bob.tasks.remove("py-owned")
        assert bob.tasks.show("py-owned")["owner"] == "alice"
    with as_user(js_cluster, "auditor") as auditor:
        assert "py-owned" in {t["name"] for t in auditor.tasks.list()}
        assert auditor.tasks.show("py-owned")["code"] == module("py-owned")
        with pytest.raises(rc.PermissionDenied):
            auditor.tasks.publish(module("py-auditor"))
    with as_user(js_cluster, "root") as root:
        assert root.tasks.remove("py-owned") == 1


def test_run_submits_a_js_task_the_coordinator_resolved(alice):
    published = alice.tasks.publish(module("py-run"))
    f = alice.tasks.run("py-run", {"message": "hi"}, memory_mb=32, priority="high", timeout=45,
                        metadata={"from": "pytest"})
    assert isinstance(f, rc.TaskFuture)
    task = alice.get(f.task_id)
    assert task["task_type"] == "js" and task["owner"] == "alice"
    assert task["priority"] == "high" and task["requirements"]["timeout_seconds"] == 45
    assert task["metadata"] == {"from": "pytest"}
    p = task["payload"]
    assert p["name"] == "py-run" and p["version"] == published["version"]
    assert p["sha256"] == published["sha256"] and p["code"] == module("py-run")
    assert p["input"] == {"message": "hi"} and p["memory_mb"] == 32

    # a pinned version stays pinned after a newer one is published
    alice.tasks.publish(module("py-run", "return {echo: input, v: 2};"))
    pinned = alice.get(alice.tasks.run("py-run", [1, 2], version=1).task_id)["payload"]
    assert pinned["version"] == 1 and pinned["input"] == [1, 2] and pinned["code"] == module("py-run")
    latest = alice.get(alice.tasks.run("py-run").task_id)["payload"]
    assert latest["version"] == 2 and latest["input"] == {}
    if JS_MISSING:
        for t in alice.list(task_type="js", status="queued"):
            alice.cancel(t["task_id"])


@pytest.mark.skipif(bool(JS_MISSING), reason=JS_MISSING)
def test_run_gives_the_modules_result_or_its_error(alice):
    alice.tasks.publish(module("py-echo"))
    f = alice.tasks.run("py-echo", {"message": "hi"}, timeout=60)
    assert f.result(timeout=90) == {"echo": {"message": "hi"}}
    futures = [alice.tasks.run("py-echo", {"i": i}) for i in range(20)]  # batched like any submit
    assert [g.result(timeout=90) for g in futures] == [{"echo": {"i": i}} for i in range(20)]

    alice.tasks.publish(module("py-throws", "throw new TypeError('bad domain ' + input.domain);"))
    f = alice.tasks.run("py-throws", {"domain": "x"}, max_retries=0)
    with pytest.raises(rc.TaskFailed) as e:
        f.result(timeout=90)
    assert "TypeError: bad domain x" in e.value.task["error_message"]


def test_aio_client_tasks(js_cluster, tmp_path):
    path = tmp_path / "aio.js"
    path.write_text(module("py-aio"))

    async def main():
        async with rc.aio.Client(js_cluster.target, token=TOKENS["alice"]) as c:
            t = await c.tasks.publish(path)
            assert t["name"] == "py-aio" and t["unchanged"] is False and t["owner"] == "alice"
            assert (await c.tasks.publish(str(path)))["unchanged"] is True
            assert (await c.tasks.publish(module("py-aio", "return 2;")))["version"] == t["version"] + 1
            assert "py-aio" in {x["name"] for x in await c.tasks.list()}
            assert (await c.tasks.show("py-aio", version=t["version"]))["code"] == module("py-aio")
            with pytest.raises(rc.InvalidArgument, match="no JSDoc @task tag"):
                await c.tasks.publish("module.exports = () => 1;")
            with pytest.raises(rc.NotFound):
                await c.tasks.run("py-aio-missing")
            fut = await c.tasks.run("py-aio", {"a": 1}, version=t["version"], priority="low")
            assert isinstance(fut, rc.aio.TaskFuture)
            stored = await c.get(fut.task_id)
            assert stored["payload"]["version"] == t["version"] and stored["payload"]["input"] == {"a": 1}
            assert stored["priority"] == "low"
            if JS_MISSING:
                fut.cancel()
            else:
                assert await asyncio.wait_for(fut, 90) == {"echo": {"a": 1}}
            assert await c.tasks.remove("py-aio") == 2
            with pytest.raises(rc.NotFound):
                await c.tasks.show("py-aio")
    asyncio.run(asyncio.wait_for(main(), 120))


@pytest.mark.parametrize("cls", [JsTasks, AioJsTasks], ids=["sync", "aio"])
def test_tasks_methods_have_docstrings_and_hints(cls):
    assert inspect.getdoc(cls)
    for name in ("publish", "list", "show", "remove", "run"):
        method = getattr(cls, name)
        assert (method.__doc__ or "").strip(), f"{cls.__name__}.{name} has no docstring"
        assert inspect.signature(method).return_annotation is not inspect.Signature.empty
    assert inspect.iscoroutinefunction(AioJsTasks.run) and not inspect.iscoroutinefunction(JsTasks.run)
    with rc.Client("127.0.0.1:1") as c:  # nothing is sent
        assert isinstance(c.tasks, JsTasks)
    assert isinstance(rc.aio.Client("127.0.0.1:1").tasks, AioJsTasks)


def test_a_path_is_a_file_and_code_is_code(tmp_path):
    from retire_cluster._js_tasks import module_code
    (tmp_path / "a.js").write_text("module.exports = 1;\n")
    assert module_code(tmp_path / "a.js") == "module.exports = 1;\n"
    assert module_code(str(tmp_path / "a.js")) == "module.exports = 1;\n"
    assert module_code(pathlib.PurePath(tmp_path / "a.js")) == "module.exports = 1;\n"
    assert module_code("/** @task t */\nreturn 1") == "/** @task t */\nreturn 1"  # a newline: code
    assert module_code("module.exports = 2") == "module.exports = 2"


def test_the_dicts_are_the_http_apis_json(js_cluster, alice):
    published = alice.tasks.publish(module("py-http"))
    code, body = js_cluster.http("POST", "/js-tasks", {"code": module("py-http")}, token=TOKENS["alice"])
    assert code == 200 and body["unchanged"] is True, body
    assert dict(body["task"], unchanged=False) == published
    code, body = js_cluster.http("GET", "/js-tasks/py-http", token=TOKENS["alice"])
    assert code == 200 and body == alice.tasks.show("py-http"), body
    code, body = js_cluster.http("GET", "/js-tasks", token=TOKENS["alice"])
    assert code == 200 and body["tasks"] == alice.tasks.list(), body
