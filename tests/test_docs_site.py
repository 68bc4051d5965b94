"""The documentation site as a reader sees it: `mkdocs build --strict` succeeds with no warning, and every page,
served over HTTP from the built site, loads in headless Chromium with its title, every image drawn and no error
in the console.

The browser is Debian's `chromium`, driven through the Chrome DevTools Protocol over a pipe
(--remote-debugging-pipe: JSON messages ending in a NUL byte on file descriptors 3 and 4), so no browser download,
no driver and no websocket library are needed. Where chromium is not installed the browser test skips, saying so.
"""

import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE_TIMEOUT_S = 20
SITE_NAME = "dlfound"
# Evaluated in each page once it has loaded: waits for every image to settle, then reports what a reader sees.
PAGE_REPORT_JS = """
(async () => {
  await Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done); })));
  return {
    title: document.title,
    h1: (document.querySelector('article h1') || {}).textContent || '',
    images: document.images.length,
    broken: [...document.images].filter(img => img.naturalWidth === 0).map(img => img.getAttribute('src')),
  };
})()
"""


class DevToolsPipe:
    """A headless Chromium and the DevTools protocol over its pipe: send a command, read its answer, keep events."""

    def __init__(self, profile: Path):
        to_browser_read, self.to_browser = os.pipe()
        self.from_browser, from_browser_write = os.pipe()

        def browser_fds():  # in the child: the protocol's pipe on the descriptors Chromium reads and writes
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        # --disable-dev-shm-usage: containers' small /dev/shm would crash the renderer.
        flags = ["--headless", "--remote-debugging-pipe", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses to run its sandbox as root (containers, CI)
        self.process = subprocess.Popen(
            [CHROMIUM, *flags, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4),
            preexec_fn=browser_fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def read_message(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError(f"chromium closed the DevTools pipe (exit code {self.process.poll()})")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + PAGE_TIMEOUT_S
        while True:
            reply = self.read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + PAGE_TIMEOUT_S
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    del self.events[i]
                    return
            self.events.append(self.read_message(deadline))

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self.to_browser)
        os.close(self.from_browser)


def console_errors(events: list[dict], session: str) -> list[str]:
    """What the console showed as an error: console.error calls, uncaught exceptions, and the browser's own error
    entries (a resource that failed to load, a blocked request)."""
    errors = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        params = event.get("params", {})
        if event.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
            errors.append(" ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"]))
        elif event.get("method") == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"{params['entry']['text']} ({params['entry'].get('url', '')})")
    return errors


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built strictly from this checkout into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("WARNING")]
    assert not warnings, "\n".join(warnings)
    return out


def serve(folder: Path):
    """A folder on a free local port, as `python -m http.server` serves it: (the server, its address)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); the site was built, not browsed")
    browser = DevToolsPipe(tmp_path / "profile")
    yield browser
    browser.close()


def page_problems(browser: DevToolsPipe, url: str, home: bool = False) -> list[str]:
    """What a reader would find wrong with the page at url: no title or heading, an image that did not load, an
    error in the console."""
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        browser.send(f"{domain}.enable", session)
    browser.send("Page.navigate", session, url=url)
    browser.wait_for("Page.loadEventFired", session)
    report = browser.send("Runtime.evaluate", session, expression=PAGE_REPORT_JS, awaitPromise=True, returnByValue=True)
    seen = report["result"]["value"]
    problems = []
    # Material titles a page "NAV TITLE - SITE NAME" and the home page "SITE NAME".
    name = seen["title"].removesuffix(f" - {SITE_NAME}").strip() if not home else seen["title"]
    if not name or (home and name != SITE_NAME) or (not home and name == seen["title"]):
        problems.append(f"{url}: the page's title is {seen['title']!r}")
    if not seen["h1"].replace("¶", "").strip():
        problems.append(f"{url}: the page has no heading")
    if seen["broken"]:
        problems.append(f"{url}: images that did not load: {seen['broken']}")
    problems += [f"{url}: console error: {error}" for error in console_errors(browser.events, session)]
    browser.send("Target.closeTarget", targetId=target)
    return problems


def test_the_generated_tables_cover_every_command_config_option_model_figure_and_public_name(site: Path):
    pages = {p.parent.relative_to(site).as_posix() for p in site.rglob("index.html")}
    for page in ("getting-started", "tour", "configs", "classifiers", "gallery", "api", "troubleshooting"):
        assert page in pages
    gallery = (site / "gallery" / "index.html").read_text()
    for spec in sorted((REPO / "configs" / "figure").glob("*.yaml")):
        assert f"figures/figure_{spec.stem}.png" in gallery, f"the gallery lacks the figure {spec.stem}"
    from dlfound.cli import COMMANDS
    from dlfound.models import ZOO

    tour = (site / "tour" / "index.html").read_text()
    for name in COMMANDS:
        assert f'id="dlfound-{name}"' in tour, f"the tour lacks the command {name}"
    configs = (site / "configs" / "index.html").read_text()
    for option in [*(REPO / "configs").glob("*/*.yaml"), *(REPO / "configs").glob("hydra/launcher/*.yaml")]:
        if option.parent.name != "figure" and not option.name.startswith("_"):
            assert f"<code>{option.stem}</code>" in configs, (
                f"the configs page lacks {option.parent.name}={option.stem}"
            )
    classifiers = (site / "classifiers" / "index.html").read_text()
    for name in ZOO:
        assert f"<code>{name}</code>" in classifiers, f"the zoo table lacks {name}"
    api = (site / "api" / "index.html").read_text()
    import dlfound

    for name in dlfound.__all__:
        if name != "__version__":
            assert f'id="dlfound.{"errors" if name == "DlfoundError" else "api"}.{name}"' in api, name


def test_the_browser_check_finds_a_missing_title_a_broken_image_and_a_console_error(browser, tmp_path):
    (tmp_path / "index.html").write_text(
        "<html><head></head><body><article><h1>A page</h1><img src='missing.png'>"
        "<script>console.error('boom')</script></article></body></html>"
    )
    server, address = serve(tmp_path)
    try:
        problems = "\n".join(page_problems(browser, f"{address}/"))
    finally:
        server.shutdown()
        server.server_close()
    assert "the page's title is ''" in problems
    assert "images that did not load: ['missing.png']" in problems
    assert "console error: boom" in problems
    assert "404" in problems  # the browser's own entry for the missing image


def test_every_page_loads_in_chromium_with_its_title_its_images_and_no_console_error(site, browser):
    pages = sorted(p.parent.relative_to(site).as_posix() for p in site.rglob("index.html"))
    assert len(pages) >= 15
    server, address = serve(site)
    try:
        problems = [
            problem
            for page in pages
            for problem in page_problems(browser, f"{address}/{'' if page == '.' else page + '/'}", home=page == ".")
        ]
    finally:
        server.shutdown()
        server.server_close()
    assert not problems, "\n".join(problems)
