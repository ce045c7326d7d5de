"""The HTML report drawn by headless Chromium with its network blocked: every plot drew, nothing was fetched."""

from __future__ import annotations

import html
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from experiments.compare import load, write_report
from experiments.compare._report import report_check
from tests.experiments.compare import browser

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium():
    binary = browser.chromium()
    if binary is None:
        pytest.skip("chromium is not installed and this machine could not install it: run .ci/setup-browser")
    return binary


def test_the_block_really_stops_requests(chromium, tmp_path):
    """Control: a page that fetches from a local server reaches it without the flags and not with them."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        page = tmp_path / "probe.html"
        page.write_text(
            f'<img src="http://localhost:{port}/img"><script>fetch("http://localhost:{port}/fetch")</script>'
        )
        browser.run(chromium, tmp_path / "open", page.as_uri(), "--dump-dom", blocked=False)
        assert hits, "control failed: the unblocked browser never reached the local server"
        hits.clear()
        browser.run(chromium, tmp_path / "shut", page.as_uri(), "--dump-dom")
        assert hits == []
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_report_draws_every_plot_offline(chromium, runs, tmp_path):
    views = load(["cmp-a", "cmp-b"], storage=runs.storage, workdir=runs.workdir)
    report = write_report(tmp_path / "report.html", views, hidden=["tag"])
    text = report.read_text()
    # Nothing outside the inline scripts points at the network (plotly.js's own strings hold map URLs).
    markup = re.sub(r"<script>.*?</script>", "", text, flags=re.S)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", markup)
    expected = [int(n) for n in re.findall(r'data-expected-traces="(\d+)"', text)]
    # 2 side-by-side plots; per experiment: parcoords, history, curves, scatter, importance, timeline, compute
    # (cmp-a has no batch-size parameter: its scatter is a note).
    assert len(expected) == 2 + 6 + 7

    shot = tmp_path / "report.png"
    dom = browser.run(chromium, tmp_path / "profile", report.as_uri(), "--dump-dom", f"--screenshot={shot}")
    check = report_check(dom)
    assert check is not None, dom[-2000:]
    assert check["requests"] == []
    assert check["plots"] == check["ok"] == len(expected), check["details"]
    assert [d["traces"] for d in check["details"]] == expected
    parcoords = [d for d in check["details"] if d["canvases"]]
    assert len(parcoords) == 2  # WebGL parallel coordinates, one per experiment
    # the axis --hide named starts unchecked; the others are on
    assert re.search(r'<input type="checkbox"[^>]*onchange="toggleAxis\(this\)"> tag', dom)
    assert "15 of 15 plots drawn, offline (0 network requests)" in html.unescape(dom)
    assert shot.is_file() and browser.png_colours(shot) > 32
