"""Waits for every acknowledged task of bench/restart_chaos.sh while the coordinator is
killed and restarted, and records the outcome each Wait delivered, as soon as it was
delivered: "task_id status attempts worker_device_id n". A result reaches waiters before
its own commit (issue 18), so some of these were seen just before a crash that lost
their record; the script then checks that the stored outcome is the same one.

usage: chaos_waiter.py TARGET ACKED_GLOB OUT STOP_FILE
Runs until STOP_FILE exists and every id read so far has an outcome (or 120 s more pass).
"""
import concurrent.futures
import glob
import os
import sys
import threading
import time

import retire_cluster as rc


def main() -> int:
    target, acked_glob, out_path, stop_file = sys.argv[1:5]
    client = rc.Client(target, rpc_timeout=5.0)
    lock = threading.Lock()
    out = open(out_path, "a", buffering=1)
    offsets: dict = {}
    pending = set()

    def wait_one(task_id: str) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                t = client.wait(task_id, timeout=30)
            except Exception:  # the coordinator is down or restarting: wait again
                time.sleep(0.05)
                continue
            n = (t.get("result") or {}).get("n") if isinstance(t.get("result"), dict) else None
            with lock:
                out.write(f"{task_id} {t['status']} {t['attempts']} {t['worker_device_id']} {n}\n")
                pending.discard(task_id)
            return
        with lock:
            pending.discard(task_id)
            print(f"chaos_waiter: gave up waiting for {task_id}", file=sys.stderr)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=48)
    stop_seen_at = None
    while True:
        for path in glob.glob(acked_glob):
            with open(path) as f:
                f.seek(offsets.get(path, 0))
                data = f.read()
                complete = data[: data.rfind("\n") + 1]  # only whole lines
                offsets[path] = offsets.get(path, 0) + len(complete)
            for line in complete.splitlines():
                task_id = line.split()[0]
                with lock:
                    pending.add(task_id)
                pool.submit(wait_one, task_id)
        if os.path.exists(stop_file):
            stop_seen_at = stop_seen_at or time.monotonic()
            with lock:
                left = len(pending)
            if left == 0 or time.monotonic() - stop_seen_at > 120:
                break
        time.sleep(0.05)
    pool.shutdown(wait=False, cancel_futures=True)
    out.close()
    os._exit(0)  # waits still blocked on a dead stream must not hold the exit


if __name__ == "__main__":
    sys.exit(main())
