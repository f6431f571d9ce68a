"""`pip install ./python` into a venv made with --system-site-packages (Debian's python3-grpcio
and python3-protobuf), offline, then the package used from outside the checkout."""

import json
import os
import shutil
import subprocess

import rc_cluster

USE = """
import json, sys, retire_cluster as rc
with rc.Client(sys.argv[1]) as c:
    print(json.dumps({"file": rc.__file__, "result": c.submit("echo", {"venv": True}).result(timeout=30)}))
"""


def test_pip_install_into_a_venv(cluster, background_venv):
    tmp = background_venv.tmp
    env = background_venv.env
    # A copy of python/ (with its generated stubs), so pip's in-tree build leaves the checkout alone.
    src = os.path.join(tmp, "python")
    shutil.copytree(rc_cluster.PYTHON_DIR, src,
                    ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    venv = background_venv.ready()  # /usr/bin/python3 -m venv --system-site-packages, made meanwhile
    py = os.path.join(venv, "bin", "python")
    pip = subprocess.run([py, "-m", "pip", "install", "--no-index", "--quiet", src], env=env, cwd=tmp,
                         capture_output=True, text=True, timeout=180)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    shutil.rmtree(src)  # the installed copy must stand alone
    run = subprocess.run([py, "-c", USE, cluster.target], env=env, cwd=tmp, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    said = json.loads(run.stdout)
    assert said["file"].startswith(venv + os.sep), said
    assert said["result"] == {"venv": True}


def test_pythonpath_works_too(cluster, background_venv):
    env = dict(background_venv.env, PYTHONPATH=rc_cluster.PYTHON_DIR)
    run = subprocess.run(["/usr/bin/python3", "-c", USE, cluster.target], env=env, cwd="/", capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["result"] == {"venv": True}
