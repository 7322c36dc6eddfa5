"""A person at a real browser: headless Chromium, driven with the keyboard over the DevTools
protocol (on a pipe: no port, no extra packages), through mcpgate's sign-in and consent pages.

usage: browser_pages.py CHROMIUM AUTHORIZE_URL ERROR_URL EMAIL PASSWORD SCREENSHOT_DIR

It only observes; the Rust test decides. Prints one JSON report: per page the title, heading,
visible text, form fields with their labels, the keyboard focus path, whether the focus is
visible, and whether the page fits a 360px-wide phone screen; every URL the browser requested;
where the consent form sent the browser. Screenshots: signin.png, consent.png, error.png.
"""

import base64
import fcntl
import json
import os
import select
import subprocess
import sys
import tempfile
import time

WIDTH, HEIGHT = 720, 760


class Browser:
    def __init__(self, chromium: str):
        self.profile = tempfile.TemporaryDirectory()
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()
        # Out of the way of 3 and 4, which the browser expects (--remote-debugging-pipe).
        to_browser_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        from_browser_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)

        def fds():
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--no-first-run", "--no-default-browser-check",
             "--hide-scrollbars", "--force-color-profile=srgb", "--lang=en-US",
             f"--user-data-dir={self.profile.name}", f"--window-size={WIDTH},{HEIGHT}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=fds, pass_fds=(3, 4, to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def send(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self, timeout=30):
        # Never block for ever: a message that does not come (a navigation that did not
        # happen) is an error with a traceback, not a hung test.
        deadline = time.time() + timeout
        while b"\0" not in self.buffer:
            left = deadline - time.time()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise RuntimeError(f"the browser sent nothing for {timeout}s")
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("the browser closed the DevTools pipe")
            self.buffer += chunk
        msg, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(msg)

    def wait_event(self, method, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    del self.events[i]
                    return e
            self.events.append(self._read(max(deadline - time.time(), 0.1)))
        raise RuntimeError(f"timed out waiting for {method}")

    def open_tab(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.send(f"{domain}.enable")
        # Headless has no window focus; without this, :focus-visible and autofocus never show.
        self.send("Emulation.setFocusEmulationEnabled", {"enabled": True})
        self.viewport(WIDTH, HEIGHT)

    def viewport(self, width, height):
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1,
                   "mobile": width < 500})

    def loaded(self, action):
        """Runs `action` (which navigates) and waits for the new page's load event."""
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        action()
        self.wait_event("Page.loadEventFired")

    def goto(self, url):
        self.loaded(lambda: self.send("Page.navigate", {"url": url}))

    def wait_for(self, expression, timeout=10):
        """Polls `expression` until it is true (autofocus, for one, runs after the load event:
        typing before it lands types into nothing, and the Enter that follows submits nothing)."""
        deadline = time.time() + timeout
        while not self.js(expression):
            if time.time() > deadline:
                raise RuntimeError(f"timed out waiting for {expression}")
            time.sleep(0.05)

    def js(self, expression):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def key(self, key, code, vk, text=None):
        down = {"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk}
        if text:
            down["text"] = text
        self.send("Input.dispatchKeyEvent", down)
        self.send("Input.dispatchKeyEvent",
                  {"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk})

    def tab(self):
        self.key("Tab", "Tab", 9)

    def enter(self):
        self.key("Enter", "Enter", 13, "\r")

    def type(self, text):
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                     "clip": self.clip()})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def clip(self):
        # The page down to the footer, not the empty viewport below it.
        height = self.js("Math.ceil(document.querySelector('footer').getBoundingClientRect().bottom) + 40")
        return {"x": 0, "y": 0, "width": WIDTH, "height": max(height, 200), "scale": 1}

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except RuntimeError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.profile.cleanup()


FOCUSED = """(() => { const e = document.activeElement; if (!e || e === document.body) return null;
  return { tag: e.tagName.toLowerCase(), id: e.id || null, type: e.type || null,
           text: (e.innerText || e.value || '').trim().slice(0, 40),
           outline: getComputedStyle(e).outlineStyle }; })()"""

PAGE = """(() => ({
  title: document.title, lang: document.documentElement.lang, url: location.href,
  h1: [...document.querySelectorAll('h1')].map(h => h.innerText.trim()),
  text: document.body.innerText,
  fields: [...document.querySelectorAll('input:not([type=hidden]), select, textarea')].map(f => ({
    id: f.id, type: f.type, required: f.required, autocomplete: f.autocomplete,
    labels: [...(f.labels || [])].map(l => l.innerText.trim()) })),
  buttons: [...document.querySelectorAll('button')].map(b => b.innerText.trim()),
  positive_tabindex: document.querySelectorAll('[tabindex]:not([tabindex="0"]):not([tabindex^="-"])').length,
  scripts: document.scripts.length,
  images: document.images.length,
}))()"""

EMAIL_FOCUSED = "document.activeElement && document.activeElement.id === 'email'"

FITS = "document.documentElement.scrollWidth <= window.innerWidth"


def observe(b: Browser, shot: str) -> dict:
    page = b.js(PAGE)
    page["focused_on_load"] = b.js(FOCUSED)
    b.screenshot(shot)
    b.viewport(360, 740)
    page["fits_phone"] = b.js(FITS)
    b.viewport(WIDTH, HEIGHT)
    return page


def main(chromium, authorize_url, error_url, email, password, shots):
    b = Browser(chromium)
    report = {}
    try:
        b.open_tab()
        b.goto(authorize_url)
        b.wait_for(EMAIL_FOCUSED)
        signin = observe(b, os.path.join(shots, "signin.png"))
        # Type the email where autofocus put the cursor, Tab to the password, Tab to the
        # button, Enter: the way a keyboard user signs in.
        path = [b.js(FOCUSED)]
        b.type(email)
        b.tab()
        path.append(b.js(FOCUSED))
        b.type(password)
        b.tab()
        path.append(b.js(FOCUSED))
        signin["focus_path"] = path
        report["signin"] = signin
        b.loaded(b.enter)

        consent = observe(b, os.path.join(shots, "consent.png"))
        path = []
        for _ in range(8):
            b.tab()
            focused = b.js(FOCUSED)
            path.append(focused)
            if focused and focused["tag"] == "button" and focused["text"] == "Allow":
                break
        consent["focus_path"] = path
        report["consent"] = consent
        b.loaded(b.enter)
        report["after_consent_url"] = b.js("location.href")

        b.goto(error_url)
        report["error"] = observe(b, os.path.join(shots, "error.png"))
        report["requested"] = sorted({e["params"]["request"]["url"] for e in b.events
                                      if e.get("method") == "Network.requestWillBeSent"})
    finally:
        b.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:7])
