"""The retire_cluster Python SDK.

Installs with Debian's python3-grpcio and python3-protobuf already present (a venv made with
--system-site-packages): ``pip install ./python`` needs no build isolation and nothing from PyPI.
The gRPC stubs are generated from ../proto at build time when they are not there yet.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithStubs(build_py):
    def run(self):
        if not os.path.exists(os.path.join(HERE, "retire_cluster", "v1", "client_service_pb2_grpc.py")):
            import gen_stubs  # beside this file
            gen_stubs.generate(os.path.join(HERE, "..", "proto"), HERE)
        super().run()


setup(
    name="retire-cluster",
    version="0.1.0",
    description="Python SDK for retire-cluster, a task cluster of spare machines",
    packages=["retire_cluster", "retire_cluster.v1"],
    python_requires=">=3.9",
    # Debian's python3-grpcio (1.51) and python3-protobuf (3.21) satisfy these; pip checks
    # them against what is installed and downloads nothing when they are present.
    install_requires=["grpcio>=1.51", "protobuf>=3.21"],
    cmdclass={"build_py": BuildWithStubs},
)
