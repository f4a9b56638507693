"""Headless Chromium driven over the DevTools protocol (websocket-client), for the tests that look at
a page as a person would: the formgrader's buttons, the class report, a student's JupyterLab; and the
JupyterLab server those pages come from (:func:`jupyter_lab`). Debian's `chromium` (installed by
`.ci/run` where missing); the tests that use it are skipped where it is absent."""
from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket

from tpkit import release

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Until `url` answers; fails at once if `proc` (the server behind it) has exited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the server of {url} exited with status {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def stop(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM (a server cleans up on it), SIGKILL after `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def jupyter_lab(folder: Path, log: Path, token: str, args=(), env: dict | None = None, timeout: float = 120):
    """`jupyter lab` started in `folder` (as the README tells: the course folder for the formgrader, the
    student's folder for a release) on a free loopback port with `token`, `args` added to its command
    line, `env` (default: nbgrader's commands' environment) plus a private runtime folder (no server file
    left in the user's home); yields its URL once it answers, stops it on exit. Its output goes to `log`."""
    port = free_port()
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root",
           "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}", *args]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="jupyter-runtime-") as runtime, open(log, "wb") as out:
        env = dict(env if env is not None else release.nbgrader_env(), JUPYTER_RUNTIME_DIR=runtime)
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{url}/api/status?token={token}", timeout=timeout, proc=proc)
            yield url
        finally:
            stop(proc)


class Page:
    """One browser tab: navigate, evaluate JavaScript, wait for a condition, take a screenshot."""

    def __init__(self, ws_url: str):
        self.ws = websocket.create_connection(ws_url, timeout=120, suppress_origin=True)
        self._id = 0
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def goto(self, url: str, ready: str = "document.readyState === 'complete'", timeout: float = 60) -> None:
        self.send("Page.navigate", url=url)
        time.sleep(0.2)
        self.wait(ready, timeout)

    def eval(self, expression: str):
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expression: str, timeout: float = 60) -> None:
        """Until `expression` is true; across a navigation (a click on a link), which an evaluation can meet."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.eval(f"!!({expression})"):
                    return
            except RuntimeError as error:
                if "navigated" not in str(error) and "context" not in str(error):
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(expression)
            time.sleep(0.25)

    def click(self, x: float, y: float) -> None:
        """A real mouse click at (x, y) (Chromium's input events, as a person clicks)."""
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def click_on(self, selector: str, timeout: float = 60) -> None:
        """Scroll the first element matching the CSS `selector` into view and click its centre."""
        found = f"document.querySelector({json.dumps(selector)})"
        self.wait(f"{found} && {found}.getClientRects().length", timeout)
        x, y = self.eval(f"(() => {{ const e = {found}; e.scrollIntoView({{block: 'center'}}); "
                         "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        self.click(x, y)

    def type(self, text: str) -> None:
        """Type `text` into the focused element, one key at a time."""
        for char in text:
            self.send("Input.dispatchKeyEvent", type="keyDown", text=char, unmodifiedText=char, key=char)
            self.send("Input.dispatchKeyEvent", type="keyUp", key=char)

    def press(self, key: str, code: int) -> None:
        """A special key (`key` as in KeyboardEvent.key, `code` its Windows virtual key code: Tab 9, Escape 27)."""
        for kind in ("rawKeyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code,
                      nativeVirtualKeyCode=code)

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params = {"format": "png"}
        if full_page:
            size = self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size[0], "height": min(size[1], 12000), "scale": 1})
        data = self.send("Page.captureScreenshot", **params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)


@contextlib.contextmanager
def browser(profile: Path, width: int = 1280, height: int = 900):
    """A headless Chromium with its own profile folder; yields a :class:`Page`."""
    port = free_port()
    proc = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         f"--window-size={width},{height}", f"--user-data-dir={profile}",
         # offline, as the tests' pages must work: a CDN (the formgrader's MathJax) fails at once, not after a DNS wait
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         f"--remote-debugging-port={port}", "--remote-allow-origins=*", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    page = None
    try:
        wait_http(f"http://127.0.0.1:{port}/json/version", timeout=60, proc=proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
            target = next(t for t in json.load(r) if t.get("type") == "page")
        page = Page(target["webSocketDebuggerUrl"])
        yield page
    finally:
        if page is not None:
            with contextlib.suppress(Exception):
                page.ws.close()
        stop(proc, grace=10)
