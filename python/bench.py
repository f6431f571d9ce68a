#!/usr/bin/python3
"""Throughput and latency of retire-cluster from Python, through the SDK (rc.Client).

Run against a running cluster; bench/python_compare.sh starts one (durable store, 2 local
workers) per repetition and puts the figures next to Celery's own client, same run:

    PYTHONPATH=python /usr/bin/python3 python/bench.py --target 127.0.0.1:PORT

Phases, in this order, each timed with time.perf_counter:
  warmup     : W sequential echo round trips (not reported)
  futures    : N x client.submit("echo", {"i": i}) in a loop, then f.result() of every
               future; time = first submit .. last result; every result checked
  map        : client.map("echo", N payloads); checked the same way
  latency    : LAT sequential client.submit(...).result() round trips, each timed;
               p50/p90/p99 by nearest rank (as ../shared/peers/lib/benchlib.py)
  aio        : (--aio) rc.aio.Client: N submits gathered, then every future awaited
Per throughput phase: client_cpu_us_per_task (time.process_time of this process over N: the
Python client's own cost) and, with --cluster-pids, the cluster's CPU per task and the CPU
cores used by the machine / us (client + cluster) / other processes (a shared machine's noise).

Prints one line `RESULT {json}` (and appends the JSON to --out). --profile FILE runs the
futures phase under cProfile, writes the stats to FILE and prints the top entries to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import math
import os
import platform
import pstats
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the SDK next to this file

import retire_cluster as rc  # noqa: E402

_HZ = os.sysconf("SC_CLK_TCK")


def pct(samples, p):
    """Nearest-rank percentile, p in (0, 100] (p99 of 200 = the 198th value)."""
    s = sorted(samples)
    k = max(1, math.ceil(p / 100.0 * len(s)))
    return s[k - 1]


def lat_summary(lat_ms):
    return {"n": len(lat_ms), "p50_ms": round(pct(lat_ms, 50), 3), "p90_ms": round(pct(lat_ms, 90), 3),
            "p99_ms": round(pct(lat_ms, 99), 3), "min_ms": round(min(lat_ms), 3),
            "max_ms": round(max(lat_ms), 3), "max_at_index": lat_ms.index(max(lat_ms)),
            "mean_ms": round(statistics.fmean(lat_ms), 3),
            "n_over_100ms": sum(1 for x in lat_ms if x > 100)}


def _machine_busy_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / _HZ  # user nice system irq softirq steal


def _pid_cpu_s(pid):
    """utime+stime (+ waited-for children) of pid in seconds; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in rest[11:15]) / _HZ
    except (OSError, IndexError, ValueError):
        return 0.0


class Phase:
    """Wall time, this process's CPU and the cluster's CPU during one phase."""

    def __init__(self, n, cluster_pids):
        self.n, self.pids = n, cluster_pids

    def __enter__(self):
        self.m0, self.c0 = _machine_busy_s(), {p: _pid_cpu_s(p) for p in self.pids}
        self.p0 = time.process_time()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        client = time.process_time() - self.p0
        cluster = sum(max(0.0, _pid_cpu_s(p) - self.c0[p]) for p in self.pids)
        machine = _machine_busy_s() - self.m0
        out = {"n": self.n, "wall_s": round(self.wall, 3), "tasks_per_s": round(self.n / self.wall, 1),
               "client_cpu_us_per_task": round(client / self.n * 1e6, 1),
               "client_cores": round(client / self.wall, 2)}
        if self.pids:
            out["cluster_cpu_us_per_task"] = round(cluster / self.n * 1e6, 1)
            out["cpu"] = {"machine_cores": round(machine / self.wall, 2),
                          "ours_cores": round((client + cluster) / self.wall, 2),
                          "other_cores": round(max(0.0, machine - client - cluster) / self.wall, 2)}
        self.result = out
        return False


def check(results, n, what):
    bad = [i for i, r in enumerate(results) if r != {"i": i}]
    if len(results) != n or bad:
        raise SystemExit(f"bench.py: {what}: {len(bad)} wrong results of {len(results)} "
                         f"(first wrong: #{bad[0] if bad else '-'}; expected {n})")


def futures_phase(c, n, timeout, pids):
    with Phase(n, pids) as ph:
        futs = [c.submit("echo", {"i": i}) for i in range(n)]
        t_sub = time.perf_counter()
        results = [f.result(timeout=timeout) for f in futs]
    check(results, n, "futures")
    ph.result["submit_s"] = round(t_sub - ph.t0, 3)
    return ph.result


def map_phase(c, n, timeout, pids):
    payloads = [{"i": i} for i in range(n)]  # built before the clock starts, as Celery's group
    with Phase(n, pids) as ph:
        results = c.map("echo", payloads, timeout=timeout)
    check(results, n, "map")
    return ph.result


def latency_phase(c, n, pids):
    lat = []
    with Phase(n, pids) as ph:
        for i in range(n):
            t0 = time.perf_counter()
            r = c.submit("echo", {"i": i}).result(timeout=30)
            lat.append((time.perf_counter() - t0) * 1000)
            if r != {"i": i}:
                raise SystemExit(f"bench.py: latency: round trip {i} returned {r!r}")
    out = lat_summary(lat)
    out.update({k: v for k, v in ph.result.items() if k not in ("n", "tasks_per_s")})
    return out


async def aio_phase(args, n, timeout, pids):
    async with rc.aio.Client(args.target, args.token) as c:
        for i in range(args.warmup):
            assert await (await c.submit("echo", {"i": i})) == {"i": i}
        with Phase(n, pids) as ph:
            futs = await asyncio.gather(*(c.submit("echo", {"i": i}) for i in range(n)))
            t_sub = time.perf_counter()
            results = await asyncio.wait_for(asyncio.gather(*futs), timeout)
        check(results, n, "aio")
        ph.result["submit_s"] = round(t_sub - ph.t0, 3)
        payloads = [{"i": i} for i in range(n)]
        with Phase(n, pids) as ph2:
            results = await c.map("echo", payloads, timeout=timeout)
        check(results, n, "aio map")
        return {"futures": ph.result, "map": ph2.result}


def profiled(fn, path, top):
    prof = cProfile.Profile()
    out = prof.runcall(fn)
    prof.dump_stats(path)
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(top)
    print(s.getvalue(), file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", default=os.environ.get("RETIRE_CLUSTER_COORDINATOR"),
                    help="coordinator HOST:PORT (default $RETIRE_CLUSTER_COORDINATOR)")
    ap.add_argument("--token", default=None, help="client token (default $RETIRE_CLUSTER_TOKEN)")
    ap.add_argument("--n", type=int, default=20000, help="tasks per throughput phase (20000)")
    ap.add_argument("--lat", type=int, default=2000, help="sequential round trips (2000)")
    ap.add_argument("--warmup", type=int, default=50, help="warm-up round trips (50)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds a throughput phase may wait")
    ap.add_argument("--phases", default="futures,map,latency",
                    help="comma list of futures,map,latency,aio (default futures,map,latency)")
    ap.add_argument("--cluster-pids", default="",
                    help="comma list of coordinator/worker PIDs whose CPU to count")
    ap.add_argument("--profile", metavar="FILE",
                    help="cProfile the futures phase (main thread only) into FILE")
    ap.add_argument("--rep", type=int, default=1)
    ap.add_argument("--out", help="append the result JSON line to this file")
    a = ap.parse_args()
    if not a.target:
        ap.error("--target HOST:PORT is required (or set RETIRE_CLUSTER_COORDINATOR)")
    phases = [p for p in a.phases.split(",") if p]
    unknown = set(phases) - {"futures", "map", "latency", "aio"}
    if unknown:
        ap.error(f"--phases: unknown phase(s) {', '.join(sorted(unknown))}")
    for name in ("n", "lat"):
        if getattr(a, name) < 1:
            ap.error(f"--{name} must be >= 1")
    try:
        pids = [int(p) for p in a.cluster_pids.split(",") if p]
    except ValueError:
        ap.error(f"--cluster-pids: not a comma list of PIDs: {a.cluster_pids!r}")

    import grpc
    import google.protobuf
    load_before = os.getloadavg()[0]
    m = {}
    with rc.Client(a.target, a.token) as c:
        for i in range(a.warmup):  # connection, streams, worker threads
            if c.submit("echo", {"i": i}).result(timeout=60) != {"i": i}:
                raise SystemExit("bench.py: warm-up returned a wrong result")
        if "futures" in phases:
            run = lambda: futures_phase(c, a.n, a.timeout, pids)  # noqa: E731
            m["futures"] = profiled(run, a.profile, 30) if a.profile else run()
        if "map" in phases:
            m["map"] = map_phase(c, a.n, a.timeout, pids)
        if "latency" in phases:
            m["latency"] = latency_phase(c, a.lat, pids)
    if "aio" in phases:
        m["aio"] = asyncio.run(aio_phase(a, a.n, a.timeout, pids))
    out = {"rep": a.rep, "load_before": [load_before], "load_after": [os.getloadavg()[0]],
           "meta": {"system": "retire-cluster python sdk", "target": a.target, "n": a.n, "lat": a.lat,
                    "python": platform.python_version(), "grpcio": grpc.__version__,
                    "protobuf": google.protobuf.__version__, "sdk": rc.__version__,
                    "profiled": bool(a.profile)},
           "metrics": m}
    line = json.dumps(out, sort_keys=True)
    print("RESULT " + line, flush=True)
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
