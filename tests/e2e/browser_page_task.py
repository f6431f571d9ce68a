# A python_script task for tests/e2e/browser_test.sh and bench/browser_bench.sh: opens a tab
# at @URL@ in the browser the worker gave the task (RC_CDP_URL), waits until the page's title
# starts with @WANT@, prints `title=<title>` and closes the tab. Only the standard library and
# Debian's python3-websocket. Every wait is bounded (10 s).
import json
import os
import sys
import time
import urllib.parse
import urllib.request

import websocket

base = os.environ["RC_CDP_URL"]
profile = os.environ.get("RC_BROWSER_PROFILE", "")
version = json.load(urllib.request.urlopen(base + "/json/version", timeout=10))
print("browser=" + version.get("Browser", "?") + " profile=" + profile)
tab = json.load(urllib.request.urlopen(
    urllib.request.Request(base + "/json/new?" + urllib.parse.quote("@URL@", safe=":/?=&"), method="PUT"), timeout=10))
ws = websocket.create_connection(tab["webSocketDebuggerUrl"], timeout=10, suppress_origin=True)
title = ""
deadline = time.time() + 10
n = 0
while time.time() < deadline:
    n += 1
    ws.send(json.dumps({"id": n, "method": "Runtime.evaluate", "params": {"expression": "document.title"}}))
    while True:
        msg = json.loads(ws.recv())
        if msg.get("id") == n:
            break
    title = msg.get("result", {}).get("result", {}).get("value", "")
    if title.startswith("@WANT@"):
        break
    time.sleep(0.1)
ws.close()
urllib.request.urlopen(base + "/json/close/" + tab["id"], timeout=10).read()
print("title=" + title)
sys.exit(0 if title.startswith("@WANT@") else 3)
