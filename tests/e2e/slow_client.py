"""Slow clients against the real coordinator's HTTP port (tests/e2e/slow_client_test.sh).

Opens IDLE idle TCP connections and POLLS long polls (GET /tasks/{id}/wait on tasks no
worker can run), then times /healthz, a submit (POST /tasks) and /metrics on fresh
connections. Prints each latency; exits 1 when a median is over the limit or a long poll
was answered early, 2 when the setup fails. Standard library only (Debian's python3).
usage: slow_client.py HOST:PORT [IDLE] [POLLS] [LIMIT_MS]
"""
import http.client
import json
import select
import socket
import statistics
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
idle_n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
polls_n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
limit_ms = float(sys.argv[4]) if len(sys.argv) > 4 else 100.0
TRIES = 5
TASK = json.dumps({"task_type": "echo", "requirements": {"required_tags": ["no-such-tag"]}})


def request(method, path, body=None):
    """One request on a fresh connection; returns (status, body, milliseconds)."""
    start = time.monotonic()
    c = http.client.HTTPConnection(host, port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        return r.status, data, (time.monotonic() - start) * 1000
    finally:
        c.close()


def main():
    sockets = []
    try:
        task_ids = []
        for _ in range(polls_n):
            status, data, _ = request("POST", "/tasks", TASK)
            if status != 201:
                print("setup: submit answered", status, data, file=sys.stderr)
                return 2
            task_ids.append(json.loads(data)["task_id"])
        for _ in range(idle_n):
            s = socket.create_connection((host, port), timeout=10)
            sockets.append(s)
        polls = []
        for i in range(polls_n):
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(("GET /tasks/%s/wait?timeout=120 HTTP/1.1\r\nHost: t\r\n\r\n" % task_ids[i]).encode())
            sockets.append(s)
            polls.append(s)
        time.sleep(0.5)  # every poll is read and waiting by now
        answered, _, _ = select.select(polls, [], [], 0)
        if answered:
            print("FAIL: %d long polls were answered or closed early" % len(answered))
            return 1

        failed = False
        for name, method, path, body, want in (
            ("/healthz", "GET", "/healthz", None, 200),
            ("submit", "POST", "/tasks", TASK, 201),
            ("/metrics", "GET", "/metrics", None, 200),
        ):
            times = []
            for _ in range(TRIES):
                status, data, ms = request(method, path, body)
                if status != want:
                    print("FAIL: %s answered %d: %r" % (name, status, data[:200]))
                    return 1
                times.append(ms)
            median = statistics.median(times)
            ok = median < limit_ms
            failed |= not ok
            print("%-9s median %6.1f ms, max %6.1f ms over %d tries (limit %g ms) %s"
                  % (name, median, max(times), TRIES, limit_ms, "ok" if ok else "FAIL"))
        # The idle connections and polls are all still open (nothing was dropped to cope).
        closed, _, _ = select.select(sockets, [], [], 0)
        if closed:
            print("FAIL: %d idle connections or polls were closed or answered meanwhile" % len(closed))
            return 1
        print("held %d idle connections and %d long polls throughout" % (idle_n, polls_n))
        return 1 if failed else 0
    finally:
        for s in sockets:
            s.close()


sys.exit(main())
