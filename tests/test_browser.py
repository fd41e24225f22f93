"""The real app in a real browser: Debian's headless Chromium driven by Playwright, with the packaged models.

One app serves a copy of the seeds for the whole module; the tests run in order (ask, upload + rebuild + ask,
hostile article) in one page, with every request the page makes recorded. Screenshots go to a temporary folder
(or to $QA_SCREENSHOT_DIR, which is how the README's pictures were made).
"""

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

import qa
from qa import ui
from qa.config import Settings

from .conftest import SEEDS

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
Q = "How many soldiers would European countries contribute?"
MUNICH_SENTENCE = "The idea is that European countries would pitch in a total of about 1,500 soldiers."
FERRY = ("Lake Varno ferry enters service\n\n"
         "The new electric ferry on Lake Varno carries 312 passengers on each crossing. It was built in the "
         "Kestrel yard and entered service in May 2026, replacing two diesel boats.\n")
OUTSIDE = "203.0.113.7"  # TEST-NET-3: never routable; any request to it is a leak
HOSTILE = (f"Harbour Lights festival <img src=x onerror=\"window.__qa_pwned='title'\">\n\n"
           f"The Harbour Lights festival in Port Elwin drew 7,300 visitors on its opening night. "
           f"<script>window.__qa_pwned='script'</script> <img src=x onerror=\"window.__qa_pwned='img'\">\n\n"
           f"Organisers said the lanterns ![tracker](http://{OUTSIDE}/pixel.png) were made by 40 volunteers. "
           f"<iframe src=\"http://{OUTSIDE}/frame\"></iframe> [click](javascript:window.__qa_pwned='link')\n")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = Path(os.environ.get("QA_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium; .ci/run does it)")
    root = tmp_path_factory.mktemp("app")
    docs, index_dir = root / "docs", root / "index"
    shutil.copytree(SEEDS, docs)
    settings = Settings(progress=False)
    qa.build_index(docs, index_dir, settings=settings)
    ui.warm_up(index_dir, settings)
    demo = ui.build_ui(index_dir, docs, settings)
    port = _free_port()
    ui.launch(demo, port=port, settings=settings, index_dir=index_dir, docs_dir=docs, prevent_thread_lock=True,
              quiet=True)
    yield f"http://127.0.0.1:{port}", docs, index_dir, settings
    demo.close()


@pytest.fixture(scope="module")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    url = server[0]
    requests, dialogs, errors = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#qa-question textarea")
        page.qa_log = {"requests": requests, "dialogs": dialogs, "errors": errors}
        yield page
        browser.close()


def _ask(page, question: str) -> None:
    """Ask and record every text the pending answer showed, to prove it streamed."""
    page.evaluate("""() => {
        window.__qa_seen = [];
        const chat = document.querySelector('#qa-chat');
        window.__qa_obs && window.__qa_obs.disconnect();
        window.__qa_obs = new MutationObserver(() => {
            const p = chat.querySelector('.qa-pending');
            if (p) window.__qa_seen.push(p.innerText);
        });
        window.__qa_obs.observe(chat, {subtree: true, childList: true, characterData: true});
    }""")
    n = page.locator(".qa-answer, .qa-abstain, .qa-error").count()
    page.fill("#qa-question textarea", question)
    page.click("#qa-ask")
    page.wait_for_function(f"document.querySelectorAll('.qa-answer, .qa-abstain, .qa-error').length > {n}",
                           timeout=120_000)


def _last_answer(page):
    return page.locator(".qa-answer, .qa-abstain, .qa-error").last


def test_asks_and_sees_a_streamed_cited_answer_with_the_sentence_highlighted(browser_page, shots):
    page = browser_page
    _ask(page, Q)
    seen = page.evaluate("window.__qa_seen")
    assert seen, "a pending answer was shown before the final one"
    last = _last_answer(page)
    assert "qa-answer" in last.get_attribute("class") and "1,500" in last.inner_text()
    page.locator(".qa-answer a.qa-cite").last.click()
    active = page.locator(".qa-src.qa-active")
    active.wait_for()
    assert active.locator("mark.qa-hl").inner_text().strip() == MUNICH_SENTENCE
    assert "002_0761b27352c754ab.txt" in active.inner_text()
    assert active.is_visible()
    time.sleep(0.6)  # let the smooth scroll settle for the picture
    page.screenshot(path=str(shots / "chat.png"))


def test_asked_what_the_articles_are_about_it_shows_each_ones_opening_on_its_own_line(browser_page, shots):
    page = browser_page
    _ask(page, "What are these articles about?")
    last = _last_answer(page)
    lines = [x for x in last.locator(".qa-text").inner_text().split("\n") if x.strip()]
    assert len(lines) == 3 and lines[0].startswith("US officials say") and "t.me" not in last.inner_text()
    assert last.locator("a.qa-cite").count() == 6
    last.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "overview.png"))
    last.locator("a.qa-cite").nth(2).click()
    active = page.locator(".qa-src.qa-active")
    active.wait_for()
    assert "001_10b1e96f4f38a7ef.txt" in active.inner_text()


def test_follow_up_shows_what_was_searched_for(browser_page):
    page = browser_page
    # A follow-up whose own words find nothing to answer with: the conversation changed what was found. ("and how
    # many US troops?" no longer serves: the recipe-384 reader answers it from passages its own search finds.)
    _ask(page, "who proposed it?")
    last = _last_answer(page)
    assert "searched for:" in last.inner_text()


def test_uploads_rebuilds_and_answers_from_the_new_article(browser_page, server, shots, tmp_path):
    page, docs = browser_page, server[1]
    (tmp_path / "ferry.md").write_text(FERRY, encoding="utf-8")
    (tmp_path / "harbour.md").write_text(HOSTILE, encoding="utf-8")
    page.click("#qa-tab-library-button, button[role=tab]:has-text('Library')")
    page.wait_for_selector("#qa-library table")
    page.set_input_files("#qa-upload input[type=file]", [str(tmp_path / "ferry.md"), str(tmp_path / "harbour.md")])
    page.wait_for_selector("#qa-upload-status .qa-ok", timeout=30_000)
    assert (docs / "ferry.md").read_text(encoding="utf-8") == FERRY
    page.evaluate("""() => {
        window.__qa_progress = false;
        new MutationObserver(() => {
            if (document.querySelector('.progress-bar, .progress-level, .eta-bar, .progress-text'))
                window.__qa_progress = true;
        }).observe(document.body, {subtree: true, childList: true});
    }""")
    page.click("#qa-rebuild")
    page.wait_for_selector("#qa-rebuild-status .qa-ok, #qa-rebuild-status .qa-error", timeout=120_000)
    status = page.inner_text("#qa-rebuild-status")
    assert "Index updated" in status and "Added (2)" in status and "ferry.md" in status
    assert page.evaluate("window.__qa_progress"), "a progress indicator was shown while rebuilding"
    assert "ferry.md" in page.inner_text("#qa-library table")
    page.wait_for_timeout(800)  # let the "pending" fade of the updated table finish before the picture
    page.screenshot(path=str(shots / "library.png"))

    page.click("button[role=tab]:has-text('Ask')")
    _ask(page, "How many passengers does the Lake Varno ferry carry on each crossing?")
    last = _last_answer(page)
    assert "qa-answer" in last.get_attribute("class") and "312" in last.inner_text()
    last.locator("a.qa-cite").first.click()
    assert "ferry.md" in page.locator(".qa-src.qa-active").inner_text()


def test_hostile_article_runs_no_script_and_loads_nothing_from_outside(browser_page, server, shots):
    page = browser_page
    _ask(page, "How many visitors did the Harbour Lights festival draw on its opening night?")
    page.click("button[role=tab]:has-text('Library')")
    page.wait_for_selector("#qa-library table")
    page.click("button[role=tab]:has-text('Ask')")
    time.sleep(1)  # give any stray onerror handler or image request time to happen
    # Nothing ran and nothing was fetched from outside...
    log = page.qa_log
    assert page.evaluate("window.__qa_pwned") is None and log["dialogs"] == []
    outside = [r for r in log["requests"] if not r.startswith((server[0], "data:", "blob:"))]
    assert outside == [], f"requests left the machine: {outside[:5]}"
    assert log["errors"] == []
    assert page.locator("#qa-sources script, #qa-sources img, #qa-sources iframe, #qa-chat img, #qa-library img"
                        ).count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    # ... because the article's markup is shown as text.
    sources = page.inner_text("#qa-sources")
    assert "harbour.md" in sources
    assert "<script>window.__qa_pwned='script'</script>" in sources
    assert f"![tracker](http://{OUTSIDE}/pixel.png)" in sources
    page.click("button[role=tab]:has-text('Library')")
    assert "<img src=x onerror=" in page.inner_text("#qa-library")
    page.click("button[role=tab]:has-text('Ask')")
    page.screenshot(path=str(shots / "hostile.png"))


def test_api_returns_the_same_answer_as_qa_answer(server):
    from gradio_client import Client

    url, _, index_dir, settings = server
    got = Client(url, verbose=False).predict(Q, None, api_name="/ask")
    want = qa.answer(Q, index_dir=index_dir, settings=settings).to_dict()
    got.pop("seconds"), want.pop("seconds")
    assert got == want and "1,500" in got["text"]
