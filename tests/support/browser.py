"""Headless Chromium (Debian package) driven over the DevTools protocol: the dashboards' browser tests and benchmark.

No Playwright/Selenium: Chromium is started with --remote-debugging-port and driven over its websocket with the
`websockets` package already in the lock (uvicorn[standard]).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str:
    for name in CHROMIUM:
        if found := shutil.which(name):
            return found
    raise RuntimeError("Chromium is not installed: `make test` installs it (apt-get install -y chromium)")


# The dashboard page has settled: its last element is drawn, no script run is in progress, and every chart has drawn
# its canvas/svg.
SETTLED_JS = """(() => {
  if (!document.querySelector('.st-key-page-rendered')) return false;
  if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
  if (document.querySelector('[data-testid="stSkeleton"]')) return false;
  for (const chart of document.querySelectorAll('[data-testid="stVegaLiteChart"]'))
    if (!chart.querySelector('canvas, svg')) return false;
  return true;
})()"""


class Browser:
    def __init__(self, width: int = 1400, height: int = 1000):
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        self.proc = subprocess.Popen(
            [chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
             f"--user-data-dir={self.profile}", "--remote-debugging-port=0", f"--window-size={width},{height}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"Chromium did not start: {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.errors: list[str] = []

    def send(self, method: str, **params):
        message_id = next(self.ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("method") == "Runtime.exceptionThrown":
                self.errors.append(json.dumps(message["params"])[:500])
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float = 60, stable: float = 0.4) -> float:
        """Seconds until `expression` is true and stays true for `stable` seconds (polled every 50 ms)."""
        started = time.monotonic()
        since = None
        while time.monotonic() < started + timeout:
            if self.evaluate(expression):
                since = since or time.monotonic()
                if time.monotonic() - since >= stable:
                    return since - started
            else:
                since = None
            time.sleep(0.05)
        raise TimeoutError(f"not true after {timeout} s: {expression[:120]}")

    def open_page(self, url: str, timeout: float = 60) -> float:
        """Navigate and wait until the dashboard page settled; returns the seconds it took."""
        self.evaluate("document.body && (document.body.innerHTML = '')")  # no settled marker left from before
        started = time.monotonic()
        self.goto(url)
        self.wait_for(SETTLED_JS, timeout)
        return time.monotonic() - started - 0.4

    def screenshot(self, path: Path) -> None:
        """The whole page (the app scrolls inside its main section: measure that)."""
        height = self.evaluate("""Math.max(document.body.scrollHeight,
            ...[...document.querySelectorAll('section, [data-testid="stMain"], [data-testid="stAppViewContainer"]')]
              .map(e => e.scrollHeight))""") or 1000
        width = self.evaluate("window.innerWidth")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=min(int(height), 12000),
                  deviceScaleFactor=1, mobile=False)
        # the relayout at the new size is painted by the second animation frame (no fixed sleep)
        self.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        self.send("Emulation.clearDeviceMetricsOverride")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def panel_states_js() -> str:
    """Per panel container (.st-key-panel-<name>): what it shows."""
    return """(() => [...document.querySelectorAll('[class*="st-key-panel-"]')].map(el => {
      const key = [...el.classList].find(c => c.startsWith('st-key-panel-')).slice('st-key-panel-'.length);
      const text = el.innerText;
      return {
        panel: key,
        chart: !!el.querySelector('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg'),
        table: !!el.querySelector('[data-testid="stDataFrame"]'),
        rows: (text.match(/Rows [0-9,]+–[0-9,]+ of ([0-9,]+)/) || [null, null])[1],
        metrics: [...el.querySelectorAll('[data-testid="stMetricValue"]')].map(m => m.innerText),
        no_data: text.includes('No data in this range'),
        error: !!el.querySelector('[data-testid="stException"], [data-testid="stAlertContentError"]'),
      };
    }))()"""


def number(text: str) -> float:
    return float(re.sub(r"[^0-9.\-]", "", text) or "nan")
