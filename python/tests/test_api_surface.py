"""The public API as written in DESIGN.md: both clients take the same options, and
help(rc.Client.submit) documents each of them (issue 15: type hints and docstrings)."""

import inspect

import pytest

import retire_cluster as rc
from retire_cluster import _specs

OPTIONS = [n for n, p in inspect.signature(_specs.build_spec).parameters.items()
           if p.kind is p.KEYWORD_ONLY and n != "payload_json"]
PUBLIC = {
    rc.Client: ["submit", "map", "future", "get", "wait", "cancel", "list", "workers", "stats", "close"],
    rc.aio.Client: ["submit", "map", "get", "wait", "cancel", "list", "workers", "stats", "close"],
    rc.TaskFuture: ["result", "exception", "done", "cancelled", "cancel", "add_done_callback", "task"],
    rc.aio.TaskFuture: ["task"],
}


@pytest.mark.parametrize("cls", [rc.Client, rc.aio.Client], ids=["sync", "aio"])
def test_submit_takes_every_spec_option_and_documents_it(cls):
    params = inspect.signature(cls.submit).parameters
    assert [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY] == OPTIONS
    doc = inspect.getdoc(cls.submit)
    for name in OPTIONS:
        assert name in doc, f"{cls.__qualname__}.submit's docstring does not explain {name}"
    for name in ("timeout", "return_exceptions"):
        assert name in inspect.signature(cls.map).parameters


@pytest.mark.parametrize("cls", list(PUBLIC), ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_public_methods_have_docstrings_and_hints(cls):
    assert inspect.getdoc(cls)
    for name in PUBLIC[cls]:
        method = getattr(cls, name)
        assert (method.__doc__ or "").strip(), f"{cls.__qualname__}.{name} has no docstring"
        sig = inspect.signature(method)
        if name not in ("done", "cancelled", "cancel", "add_done_callback", "close"):
            assert sig.return_annotation is not inspect.Signature.empty, f"{cls.__qualname__}.{name}: no return hint"


def test_aio_future_is_an_asyncio_future_and_sync_one_a_concurrent_future():
    import asyncio
    import concurrent.futures
    assert issubclass(rc.aio.TaskFuture, asyncio.Future)
    assert issubclass(rc.TaskFuture, concurrent.futures.Future)


def test_submit_after_close_is_refused(cluster):
    c = rc.Client(cluster.target)
    c.close()
    with pytest.raises(RuntimeError):
        c.submit("echo", {})
