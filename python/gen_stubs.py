#!/usr/bin/env python3
"""Generates the gRPC and protobuf stubs of the Python SDK from ../proto.

The stubs land in retire_cluster/v1/ (kept out of git): the .proto files import each other as
"retire_cluster/v1/x.proto", so the generated modules import each other as
``retire_cluster.v1.x_pb2``, the package they live in. Uses Debian's ``protoc`` and
``grpc_python_plugin`` (protobuf-compiler, protobuf-compiler-grpc); nothing from PyPI.

usage: gen_stubs.py [--proto-dir DIR] [--out-dir DIR]
Run by the CMake build (target python_sdk) and by setup.py when the stubs are missing.
"""

import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = ["task.proto", "worker.proto", "client_service.proto", "worker_service.proto"]


def find_plugin():
    for name in ("grpc_python_plugin",):
        path = shutil.which(name)
        if path:
            return path
    return None


def generate(proto_dir, out_dir):
    """Writes retire_cluster/v1/*_pb2*.py under out_dir; raises RuntimeError naming what is missing."""
    protoc = shutil.which("protoc")
    plugin = find_plugin()
    if protoc is None or plugin is None:
        raise RuntimeError("generating the SDK's stubs needs protoc and grpc_python_plugin "
                           "(apt-get install protobuf-compiler protobuf-compiler-grpc)")
    sources = [os.path.join(proto_dir, "retire_cluster", "v1", p) for p in PROTOS]
    for s in sources:
        if not os.path.isfile(s):
            raise RuntimeError(f"missing {s}: run from a retire-cluster checkout (proto/ beside python/)")
    os.makedirs(os.path.join(out_dir, "retire_cluster", "v1"), exist_ok=True)
    cmd = [protoc, f"-I{proto_dir}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
           f"--plugin=protoc-gen-grpc_python={plugin}"] + sources
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proto-dir", default=os.path.join(HERE, "..", "proto"))
    ap.add_argument("--out-dir", default=HERE)
    args = ap.parse_args()
    try:
        generate(os.path.abspath(args.proto_dir), os.path.abspath(args.out_dir))
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(f"gen_stubs: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
