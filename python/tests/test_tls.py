"""TLS to the coordinator, with certificates from scripts/dev-certs.sh: tls_ca as an argument
or $RETIRE_CLUSTER_TLS_CA; a client that does not trust the server gets rc.Unavailable."""

import asyncio
import os
import subprocess

import pytest

import retire_cluster as rc
import rc_cluster


def dev_certs(dirname):
    subprocess.run([os.path.join(rc_cluster.REPO, "scripts", "dev-certs.sh"), dirname], check=True,
                   stdout=subprocess.DEVNULL, timeout=60)
    return {name: os.path.join(dirname, name)
            for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


@pytest.fixture(scope="module")
def tls_cluster():
    tmp = rc_cluster.make_tmp("tls")
    try:
        certs = dev_certs(os.path.join(tmp, "certs"))
        other = dev_certs(os.path.join(tmp, "other"))
    except BaseException:
        rc_cluster.shutil.rmtree(tmp, ignore_errors=True)
        raise
    c = rc_cluster.Cluster("tls", tmp=tmp, workers=("w1",),
                           tls=(certs["server.pem"], certs["server.key"], certs["ca.pem"]))
    c.ca, c.other_ca = certs["ca.pem"], other["ca.pem"]
    c.certs, c.other_certs = certs, other
    yield c.start()
    c.close()


@pytest.fixture(scope="module")
def mtls_cluster(tls_cluster):
    certs = tls_cluster.certs
    c = rc_cluster.Cluster("mtls", workers=("w1",), tls=(certs["server.pem"], certs["server.key"], certs["ca.pem"]),
                           mtls=(certs["client.pem"], certs["client.key"]))
    yield c.start()
    c.close()


def test_tls_ca_argument(tls_cluster):
    with rc.Client(tls_cluster.target, tls_ca=tls_cluster.ca) as c:
        f = c.submit("echo", {"tls": True})
        assert f.result(timeout=30) == {"tls": True}
        assert c.get(f.task_id) == tls_cluster.http("GET", f"/tasks/{f.task_id}")[1]
        assert c.stats()["online_devices"] == 1


def test_tls_ca_from_the_environment(tls_cluster, monkeypatch):
    monkeypatch.setenv("RETIRE_CLUSTER_TLS_CA", tls_cluster.ca)
    with rc.Client(tls_cluster.target) as c:
        assert c.submit("echo", {"env": True}).result(timeout=30) == {"env": True}


def test_plaintext_or_another_ca_is_refused(tls_cluster):
    for kwargs in ({}, {"tls_ca": tls_cluster.other_ca}):
        with rc.Client(tls_cluster.target, rpc_timeout=3, **kwargs) as c:
            with pytest.raises(rc.Unavailable) as e:
                c.stats()
            assert tls_cluster.target in str(e.value)


def test_unreadable_ca_is_named():
    with pytest.raises(OSError, match="tls_ca"):
        rc.Client("127.0.0.1:1", tls_ca="/nonexistent/ca.pem")


def test_aio_tls(tls_cluster):
    async def main():
        async with rc.aio.Client(tls_cluster.target, tls_ca=tls_cluster.ca) as c:
            return await (await c.submit("echo", {"aio": "tls"}))
    assert asyncio.run(asyncio.wait_for(main(), 60)) == {"aio": "tls"}


def test_mtls_client_certificate(mtls_cluster, tls_cluster, monkeypatch):
    certs = tls_cluster.certs
    with rc.Client(mtls_cluster.target, tls_ca=certs["ca.pem"], tls_cert=certs["client.pem"],
                   tls_key=certs["client.key"]) as c:
        assert c.submit("echo", {"mtls": 1}).result(timeout=30) == {"mtls": 1}
    monkeypatch.setenv("RETIRE_CLUSTER_TLS_CA", certs["ca.pem"])
    monkeypatch.setenv("RETIRE_CLUSTER_TLS_CERT", certs["client.pem"])
    monkeypatch.setenv("RETIRE_CLUSTER_TLS_KEY", certs["client.key"])
    with rc.Client(mtls_cluster.target) as c:
        assert c.stats()["online_devices"] == 1
    monkeypatch.delenv("RETIRE_CLUSTER_TLS_CERT")
    monkeypatch.delenv("RETIRE_CLUSTER_TLS_KEY")
    other = tls_cluster.other_certs
    for kwargs in ({}, {"tls_cert": other["client.pem"], "tls_key": other["client.key"]}):
        # No client certificate, or one of another CA (the CA still from the environment).
        with rc.Client(mtls_cluster.target, rpc_timeout=3, **kwargs) as c:
            with pytest.raises(rc.Unavailable):
                c.stats()
