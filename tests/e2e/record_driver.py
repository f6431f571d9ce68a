#!/usr/bin/python3
"""Plays a person in front of a browser_record recording, over CDP.

usage: record_driver.py CDP_URL PAGE_PREFIX NAME [close]

Finds the page whose URL starts with PAGE_PREFIX on the browser at CDP_URL, clicks the
"Name" text box, types NAME, clicks the "Send" button (trusted input events, as a mouse and
keyboard make them, so Playwright's recorder sees them), waits for the page's title to
become "sent NAME", then closes the page when asked to (which ends the recording).
Prints what it did; exits non-zero naming the step that failed. Every wait is bounded.
"""
import json
import sys
import time
import urllib.request

import websocket  # Debian python3-websocket


def targets(cdp_url):
    with urllib.request.urlopen(cdp_url + "/json/list", timeout=5) as r:
        return json.load(r)


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=10, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.time() + 10
        while time.time() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
        raise RuntimeError(f"{method}: no answer within 10 s")

    def evaluate(self, expr):
        return self.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")

    def click(self, selector):
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        x, y = box
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def main():
    cdp_url, prefix, name = sys.argv[1], sys.argv[2], sys.argv[3]
    close = len(sys.argv) > 4 and sys.argv[4] == "close"
    page = None
    deadline = time.time() + 20
    while time.time() < deadline and page is None:
        for t in targets(cdp_url):
            if t.get("type") == "page" and t.get("url", "").startswith(prefix):
                page = t
                break
        else:
            time.sleep(0.2)
    if page is None:
        sys.exit(f"no page starting with {prefix} at {cdp_url}")
    p = Page(page["webSocketDebuggerUrl"])
    # The recorder's script attaches to the page after load: wait until the form is there.
    deadline = time.time() + 20
    while time.time() < deadline and not p.evaluate("document.readyState === 'complete' && !!document.querySelector('#n')"):
        time.sleep(0.2)
    time.sleep(1)  # the recorder's overlay installs its listeners after load
    # The recorder performs a recorded click itself before the page sees it: wait (bounded)
    # until the text box has the focus, then type, and check the text arrived.
    focused = False
    for _ in range(3):
        p.click("#n")
        deadline = time.time() + 10
        while time.time() < deadline and not focused:
            focused = p.evaluate("document.activeElement === document.querySelector('#n')")
            time.sleep(0.2)
        if focused:
            break
    if not focused:
        sys.exit("clicking the Name box did not focus it")
    for ch in name:
        p.call("Input.dispatchKeyEvent", type="keyDown", text=ch, key=ch)
        p.call("Input.dispatchKeyEvent", type="keyUp", key=ch)
    deadline = time.time() + 10
    while time.time() < deadline and p.evaluate("document.querySelector('#n').value") != name:
        time.sleep(0.2)
    time.sleep(1)  # the recorder turns the typing into one fill action after a pause
    p.click("button")
    deadline = time.time() + 10
    title = ""
    while time.time() < deadline:
        title = p.evaluate("document.title")
        if title == f"sent {name}":
            break
        time.sleep(0.2)
    if title != f"sent {name}":
        sys.exit(f"the page's title is {title!r}, not 'sent {name}': the click did not reach the page")
    print(f"driver: filled Name with {name!r}, clicked Send, title {title!r}")
    time.sleep(1)  # the recorder writes its output at most every 250 ms
    if close:
        p.call("Page.close")
        print("driver: closed the page")


if __name__ == "__main__":
    main()
