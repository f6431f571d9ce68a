"""Makes grpc and protobuf importable where only the SDK was put on the path.

A python_script task with ``requirements`` runs in a virtualenv of its own, which does not see
the system's packages; the worker puts this SDK on its PYTHONPATH, but the SDK needs Debian's
python3-grpcio and python3-protobuf. When they cannot be imported, the base interpreter's
package directories are appended to sys.path (after the virtualenv's own, so a task's
requirements still win) and the import is tried again.
"""

import os
import sys
import sysconfig


def _base_package_dirs():
    base = getattr(sys, "base_prefix", sys.prefix)
    dirs = [os.path.join(base, "lib", "python3", "dist-packages")]  # Debian's python3-* packages
    try:
        paths = sysconfig.get_paths(vars={"base": base, "platbase": base})
        dirs += [paths.get("purelib", ""), paths.get("platlib", "")]
    except (KeyError, ValueError):
        pass
    return [d for d in dict.fromkeys(dirs) if d and os.path.isdir(d) and d not in sys.path]


def ensure_grpc():
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401
        return
    except ImportError as first:
        missing = first
    sys.path.extend(_base_package_dirs())
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401
    except ImportError:
        raise ImportError(f"retire_cluster needs grpcio and protobuf ({missing}): on Debian "
                          "apt-get install python3-grpcio python3-protobuf") from missing
