"""The rendered book as a reader meets it: every page opened in headless Chromium.

The book (built once per session by the ``smoke_book`` fixture in conftest.py, or taken from
``$SHARPMEM_TEST_BOOK_HTML``) is served over HTTP from 127.0.0.1, and Chromium is driven over
its DevTools protocol (no chromedriver needed). A page fails on:

- any request answered with an error status (a missing static asset is a 404), a failed
  load, a console error or an uncaught exception;
- a MathJax error ("Math Processing Error", an error node), raw TeX left in the visible
  text, or equations set in anything but the STIX-Web web fonts MathJax ships with;
- a figure without a caption ("Figure N: ..."), without alt text that says what it shows,
  or one not rendered sharp (at least 1.5 image pixels per CSS pixel);
- a visible ``{glue`` placeholder;
- tables that show raw Python (None, True, False, nan, 7.252e-05, snake_case headers), cells
  without padding, glued text set in bold, or a page wider than the window.

Screenshots of the methods page's equations, a chapter figure and the verdict table go to
``test-output/`` for a person to look at.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from sharpmem_lib.pipeline import REPO_ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1000", "--hide-scrollbars"]
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static"}
GENERATED = {"genindex.html", "py-modindex.html", "search.html"}  # Sphinx's own pages: no figures or tables of ours



def needs_browser(test):
    """Opens the book in Chromium: slow, and skipped only where Chromium is not installed."""
    test = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")(test)
    return pytest.mark.slow(test)


# --- a static file server that remembers what it answered -------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    served: list[tuple[str, int]]

    def log_request(self, code="-", size="-"):
        self.served.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def site(book_html):
    served: list[tuple[str, int]] = []
    handler = type("Handler", (_Handler,), {"served": served})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(book_html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()


# --- a minimal DevTools-protocol client --------------------------------------------------------------------


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, profile_dir: Path):
        import websocket

        profile_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        pages = []
        while not pages and time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                pages = [t for t in json.load(resp) if t["type"] == "page"]
            time.sleep(0.1)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], suppress_origin=True, timeout=120)
        self._id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate, wait until the page has loaded, then for MathJax to finish typesetting."""
        self.evaluate("window.__left_behind = true")  # a mark that the next page will not have
        self.events.clear()
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + 60
        while not self.evaluate("!window.__left_behind && document.readyState === 'complete'"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load within 60 s")
            time.sleep(0.1)
        self.evaluate(MATHJAX_DONE)
        time.sleep(0.3)  # let late console messages and requests arrive

    def problems(self) -> list[str]:
        """Console errors, exceptions, failed loads and error responses since the last open()."""
        self.send("Runtime.evaluate", expression="0")  # collects the events that arrived meanwhile
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                values = (str(a.get("value", a.get("description", ""))) for a in p["args"])
                out.append("console error: " + " ".join(values))
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"uncaught exception: {d.get('exception', {}).get('description', d.get('text'))}")
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"log error: {p['entry']['text']} {p['entry'].get('url', '')}")
            elif m == "Network.responseReceived" and p["response"]["status"] >= 400:
                out.append(f"HTTP {p['response']['status']}: {p['response']['url']}")
            elif m == "Network.loadingFailed" and not p.get("canceled"):
                out.append(f"load failed: {p.get('errorText')} ({p.get('type')})")
        return out

    def screenshot(self, selector: str, path: Path) -> bool:
        """PNG of the first element matching ``selector`` (with a margin); False if none."""
        box = self.evaluate(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            if (!el) return null;
            el.scrollIntoView();
            const r = el.getBoundingClientRect();
            return {{x: r.left + window.scrollX, y: r.top + window.scrollY, w: r.width, h: r.height}};
        }})()""")
        if not box:
            return False
        clip = {"x": max(box["x"] - 10, 0), "y": max(box["y"] - 10, 0), "width": box["w"] + 20,
                "height": min(box["h"] + 20, 4000), "scale": 1}
        shot = self.send("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return True

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# Resolves when MathJax 2 has typeset the page (its startup signal has posted "End" and its
# queue is empty); at once on pages that do not load MathJax; rejects after 30 s.
MATHJAX_DONE = """new Promise((resolve, reject) => {
    const start = Date.now();
    const poll = () => {
        if (Date.now() - start > 30000) return reject(new Error('MathJax did not finish within 30 s'));
        if (!document.querySelector('script[src*="MathJax.js"]')) return resolve('no mathjax');
        const hub = window.MathJax && MathJax.Hub;
        const done = hub && hub.Startup && hub.Startup.signal.posted.includes('End') && hub.queue.pending === 0;
        return done ? resolve('typeset') : setTimeout(poll, 100);
    };
    poll();
})"""

# What a reader sees, gathered in the page.
PAGE_FACTS = r"""(() => {
    const article = document.querySelector('article') || document.body;
    const skip = 'pre, code, script, style, .MathJax, .MathJax_Display, .MathJax_Preview, .MathJax_MathML, '
               + '.highlight, .MJX_Assistive_MathML, nav, .bd-sidebar-primary, .bd-sidebar-secondary';
    const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
    let text = '';
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const el = n.parentElement;
        if (!el || el.closest(skip)) continue;
        if (el.offsetParent === null && getComputedStyle(el).position !== 'fixed') continue;  // hidden
        text += n.textContent + ' ';
    }
    const hjax = window.MathJax && MathJax.OutputJax && MathJax.OutputJax['HTML-CSS'];
    const images = [...article.querySelectorAll('img')].map(img => {
        const fig = img.closest('figure');
        const cap = fig && fig.querySelector('figcaption');
        return {src: img.getAttribute('src').slice(0, 80), alt: img.getAttribute('alt') || '',
                caption: cap ? cap.innerText.trim() : '', natural: img.naturalWidth, shown: img.clientWidth};
    });
    // provenance tables (class sharpmem-full) record parameter values as code, on purpose
    const cells = [...article.querySelectorAll('table:not(.sharpmem-full) td, table:not(.sharpmem-full) th')];
    const pad = cells.filter(c => c.innerText.trim()).map(c => parseFloat(getComputedStyle(c).paddingLeft)
                                                           + parseFloat(getComputedStyle(c).paddingRight));
    return {
        text: text,
        title: document.title,
        mathSpans: document.querySelectorAll('.math, span.math, div.math').length,
        typeset: document.querySelectorAll('.MathJax, .MathJax_Display').length,
        mathErrors: document.querySelectorAll('.MathJax_Error, merror, .merror').length,
        font: hjax ? (hjax.fontInUse || '') : '',
        images: images,
        cells: cells.map(c => ({text: c.innerText.trim(), head: !!c.closest('thead')})),
        minPadding: pad.length ? Math.min(...pad) : null,
        boldGlue: [...article.querySelectorAll('span.pasted-text')]
                  .filter(s => parseInt(getComputedStyle(s).fontWeight) >= 600).length,
        pageWidth: document.documentElement.scrollWidth,
        windowWidth: window.innerWidth,
    };
})()"""


# --- the checks ---------------------------------------------------------------------------------------------


def book_pages(html: Path) -> list[Path]:
    """Every page of the book (not the redirect that Jupyter Book writes as index.html)."""
    return sorted(p for p in html.rglob("*.html") if not SKIP_DIRS & set(p.relative_to(html).parts)
                  and 'http-equiv="Refresh"' not in p.read_text(errors="replace")[:2000])


def math_problems(facts: dict) -> list[str]:
    import re

    out = []
    if "Math Processing Error" in facts["text"] or facts["mathErrors"]:
        out.append(f"math error ({facts['mathErrors']} error nodes)")
    raw = re.findall(r"\\[()\[\]]|\$\$|\\begin\{|\\[a-zA-Z]{2,}", facts["text"])
    if raw:
        out.append(f"raw TeX visible: {sorted(set(raw))[:5]}")
    if facts["mathSpans"]:
        if not facts["typeset"]:
            out.append(f"{facts['mathSpans']} math elements, none typeset")
        if facts["font"] != "STIX-Web":
            out.append(f"equations set in {facts['font'] or 'no web font'!r}, not the STIX-Web fonts MathJax ships")
    return out


def figure_problems(facts: dict) -> list[str]:
    import re

    out = []
    for img in facts["images"]:
        where = img["src"]
        if not re.match(r"Figure (S\d+\.\d+|\d+[a-z]?(–[a-z])?): \S", img["caption"]):
            out.append(f"figure without a numbered caption ('Figure 3a: ...'): {where} caption={img['caption'][:40]!r}")
        alt = img["alt"].strip()
        if len(alt) < 20 or re.fullmatch(r"[0-9a-f]{16,}(\.\w+)?", alt) or alt == img["caption"]:
            out.append(f"figure without alt text that says what it shows: {where} alt={alt[:40]!r}")
        if img["shown"] and img["natural"] < 1.5 * img["shown"]:
            out.append(f"blurry figure: {img['natural']} image pixels shown over {img['shown']} CSS pixels: {where}")
    return out


def table_problems(facts: dict) -> list[str]:
    import re

    out = []
    raw_values = {"None", "True", "False", "nan", "NaN", "<NA>", "NaT"}
    for cell in facts["cells"]:
        t = cell["text"]
        if t in raw_values or re.search(r"\d\.?\d*e[+-]\d\d", t):
            out.append(f"raw Python value in a table: {t!r}")
        if cell["head"] and re.fullmatch(r"[a-z0-9]+(_[a-z0-9@%.]+)+", t):
            out.append(f"code name as a table header: {t!r}")
    if facts["minPadding"] is not None and facts["minPadding"] < 4:
        out.append(f"table cells without padding ({facts['minPadding']} px)")
    if facts["boldGlue"]:
        out.append(f"{facts['boldGlue']} glued values set in bold")
    if facts["pageWidth"] > facts["windowWidth"] + 1:
        out.append(f"page wider than the window ({facts['pageWidth']} > {facts['windowWidth']} px)")
    return sorted(set(out))


@pytest.fixture(scope="module")
def visited(site, book_html, tmp_path_factory):
    """Open every page once; return {page: (facts, browser problems)} and the server's log."""
    root, served = site
    browser = Browser(tmp_path_factory.mktemp("chromium-profile"))
    out = {}
    shots = REPO_ROOT / "test-output"
    shots.mkdir(exist_ok=True)
    try:
        for page in book_pages(book_html):
            rel = page.relative_to(book_html).as_posix()
            browser.open(f"{root}/{rel}")
            out[rel] = (browser.evaluate(PAGE_FACTS), browser.problems())
            if rel == "book/methods.html":
                browser.screenshot(".math-wrapper, div.math", shots / "methods-equations.png")
            elif rel == "notebooks/01_toy_example.html":
                browser.screenshot("figure", shots / "chapter1-figure.png")
            elif rel == "book/results.html":
                browser.screenshot("table", shots / "verdict-table.png")
    finally:
        browser.close()
    return out, served


@needs_browser
def test_every_page_opens(visited, book_html):
    pages, _ = visited
    expected = {"book/intro.html", "book/results.html", "book/methods.html", "book/rerun.html", "book/api.html"}
    expected |= {f"notebooks/{p.stem}.html" for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert expected <= set(pages), f"pages missing from the book: {sorted(expected - set(pages))}"


@needs_browser
def test_no_missing_asset_nor_console_error(visited):
    pages, served = visited
    failed = sorted({f"{code} {path}" for path, code in served if code >= 400})
    assert not failed, f"the server answered errors: {failed[:20]}"
    problems = {page: p for page, (_, p) in pages.items() if p}
    assert not problems, json.dumps(problems, indent=1)[:4000]


@needs_browser
def test_math_is_typeset(visited):
    pages, _ = visited
    problems = {page: math_problems(facts) for page, (facts, _) in pages.items()}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, json.dumps(problems, indent=1)[:4000]
    assert pages["book/methods.html"][0]["typeset"] >= 6, "the methods page's equations were not typeset"


@needs_browser
def test_figures_are_captioned_and_sharp(visited):
    pages, _ = visited
    problems = {page: figure_problems(facts) for page, (facts, _) in pages.items() if page not in GENERATED}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, json.dumps(problems, indent=1)[:4000]
    for chapter in ("01_toy_example", "02_memorization_buckets", "04_mitigation"):
        assert pages[f"notebooks/{chapter}.html"][0]["images"], f"{chapter}: no figure"


@needs_browser
def test_no_glue_placeholder_visible(visited):
    pages, _ = visited
    shown = [page for page, (facts, _) in pages.items() if "{glue" in facts["text"]]
    assert not shown, f"'{{glue' shows on {shown}"


@needs_browser
def test_tables_read_like_a_paper(visited):
    pages, _ = visited
    problems = {page: table_problems(facts) for page, (facts, _) in pages.items() if page not in GENERATED}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, json.dumps(problems, indent=1)[:4000]


# --- the checks themselves, on made-up page facts (fast, no browser) ---------------------------------------


def _facts(**kw):
    base = dict(text="", mathSpans=0, typeset=0, mathErrors=0, font="", images=[], cells=[], minPadding=None,
                boldGlue=0, pageWidth=1000, windowWidth=1000)
    return {**base, **kw}


@pytest.mark.parametrize("facts, bad", [
    (_facts(text="eq. [Math Processing Error] holds", mathSpans=2, typeset=2, font="STIX-Web"), True),
    (_facts(text=r"where \(\mathcal{D}'\) is", mathSpans=1, typeset=0), True),
    (_facts(mathSpans=3, typeset=3, font="generic"), True),
    (_facts(text="typeset fine", mathSpans=3, typeset=3, font="STIX-Web"), False),
])
def test_math_check_catches_errors(facts, bad):
    assert bool(math_problems(facts)) == bad


@pytest.mark.parametrize("img, bad", [
    (dict(src="a.png", alt="3f2a9c0d1e2b3c4d5e6f7a8b9c0d1e2f.png", caption="", natural=1600, shown=800), True),
    (dict(src="a.png", alt="Accuracy per bucket for SGD and SAM", caption="", natural=1600, shown=800), True),
    (dict(src="a.png", alt="Accuracy per bucket for SGD and SAM", caption="Figure 3a: accuracy per bucket",
          natural=800, shown=800), True),
    (dict(src="a.png", alt="Accuracy per bucket for SGD and SAM", caption="Figure 3a: accuracy per bucket",
          natural=1600, shown=800), False),
])
def test_figure_check_catches_missing_captions(img, bad):
    assert bool(figure_problems(_facts(images=[img]))) == bad


@pytest.mark.parametrize("cells, bad", [
    ([dict(text="None", head=False)], True),
    ([dict(text="7.252e-05", head=False)], True),
    ([dict(text="test_acc_p", head=True)], True),
    ([dict(text="7.3 × 10⁻⁵", head=False), dict(text="p (paired t)", head=True)], False),
])
def test_table_check_catches_raw_python(cells, bad):
    assert bool(table_problems(_facts(cells=cells, minPadding=8))) == bad
