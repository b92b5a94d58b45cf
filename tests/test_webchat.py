"""Web chat end to end: headless Chromium (Debian's /usr/bin/chromium via playwright) on the page
served by the real Rasa server, answering from MariaDB through the real action server.

Screenshots go to test-artifacts/webchat/ (git-ignored).
"""

from __future__ import annotations

from typing import Dict, List

import playwright.sync_api as playwright_api
import pytest
import requests

from tests.servers import ARTIFACTS, SEGMENTS, current_sizes, size_text

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SHOTS = ARTIFACTS / "webchat"
DESKTOP = {"width": 1100, "height": 800}
PHONE = {"width": 390, "height": 844}
ANSWER_TIMEOUT_MS = 90_000


def size_answer(db: Dict, segment: str) -> str:
    """The size answer as the page shows it: the mrkdwn answer with its markup rendered."""
    return size_text(db, segment).replace("*", "").replace("_From", "From").rstrip("_")


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def open_page(browser, assistant, viewport=DESKTOP, **options):
    """A fresh browser context (a new conversation) on the web chat page."""
    context = browser.new_context(viewport=viewport, **options)
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.on(
        "console",
        lambda message: message.type == "error" and page.problems.append(message.text),
    )
    page.goto(assistant.webchat_url)
    page.wait_for_selector("#sizes li")
    return page


@pytest.fixture
def page(browser, assistant):
    page = open_page(browser, assistant)
    yield page
    problems = list(page.problems)
    page.context.close()
    assert problems == [], "errors in the browser console"


def answers(page):
    return page.locator(".msg.bot:not(.intro):not(.typing)")


def ask(page, text: str) -> List:
    """Type `text`, press Enter, and return the new bot messages once they are all in."""
    before = answers(page).count()
    page.fill("#message", text)
    page.press("#message", "Enter")
    page.wait_for_function(
        "n => !document.querySelector('.msg.typing') && "
        "document.querySelectorAll('.msg.bot:not(.intro):not(.typing)').length > n",
        arg=before,
        timeout=ANSWER_TIMEOUT_MS,
    )
    return [answers(page).nth(i) for i in range(before, answers(page).count())]


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_header_shows_the_current_run_and_segment_sizes(page, assistant):
    db = current_sizes(assistant)
    created = db["created_at"]
    run_line = page.inner_text("#run")
    assert run_line == (
        f"Run #{db['run_id']} · {created:%d %b %Y} {created:%H:%M} UTC · {db['total']:,} users"
    )
    items = page.locator("#sizes li")
    assert [items.nth(i).get_attribute("data-segment") for i in range(3)] == list(SEGMENTS)
    for segment in SEGMENTS:
        size, share = db["segments"][segment]
        item = page.locator(f'#sizes li[data-segment="{segment}"]')
        assert item.locator(".name").inner_text() == segment
        assert item.locator(".size").inner_text() == f"{size:,}"
        assert item.locator(".share").inner_text() == f"{share * 100:.1f}%"
    shot(page, "desktop-start")


def test_answer_matches_the_database(page, assistant):
    db = current_sizes(assistant)
    (reply,) = ask(page, "how many users are highly engaged?")
    # The answer and its source line are paragraphs of their own.
    assert reply.inner_text().replace("\n\n", "\n") == size_answer(db, "Highly Engaged")
    size = db["segments"]["Highly Engaged"][0]
    assert reply.locator("strong").all_inner_texts() == ["Highly Engaged", f"{size:,} users"]
    assert reply.locator("p.source").inner_text().startswith(f"From run #{db['run_id']} of")
    user_messages = page.locator(".msg.user").all_inner_texts()
    assert user_messages == ["how many users are highly engaged?"]


def test_buttons_send_their_payload_and_show_their_title(page, assistant):
    db = current_sizes(assistant)
    (question,) = ask(page, "describe the segment")
    buttons = question.locator(".choices button")
    assert buttons.all_inner_texts() == list(SEGMENTS)

    before = answers(page).count()
    buttons.filter(has_text="Moderate Engagement").click()
    page.wait_for_function(
        "n => !document.querySelector('.msg.typing') && "
        "document.querySelectorAll('.msg.bot:not(.intro):not(.typing)').length > n",
        arg=before,
        timeout=ANSWER_TIMEOUT_MS,
    )
    assert page.locator(".msg.user").last.inner_text() == "Moderate Engagement"
    size, share = db["segments"]["Moderate Engagement"]
    profile = answers(page).nth(before)  # then its chart, in a message of its own
    assert profile.inner_text().startswith(
        f"Moderate Engagement: {size:,} users ({share * 100:.1f}%)."
    )
    assert answers(page).last.locator("figcaption").inner_text() == (
        "Moderate Engagement against the average user"
    )
    assert all(buttons.nth(i).is_disabled() for i in range(3))
    assert buttons.filter(has_text="Moderate Engagement").get_attribute("aria-pressed") == "true"
    shot(page, "desktop-buttons")


def test_tables_and_charts_render(page, assistant):
    replies = ask(page, "compare low engagement with highly engaged")
    table = replies[0].locator("table")
    assert table.count() == 1
    assert table.locator("th").all_inner_texts() == [
        "feature",
        "Low Engagement",
        "Highly Engaged",
        "ratio",
    ]
    assert table.locator("tbody tr").count() >= 5
    assert "```" not in replies[0].inner_text()

    image = page.locator(".msg.bot img").last
    image.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    source = image.get_attribute("src")
    assert source.startswith("charts/run") and source.endswith(".png")
    assert image.get_attribute("alt") == "Chart: Low Engagement vs Highly Engaged"
    assert page.locator(".msg.bot figcaption").last.inner_text() == (
        "Low Engagement vs Highly Engaged"
    )
    chart = requests.get(assistant.webchat_url + source, timeout=30)
    assert chart.headers["Content-Type"] == "image/png"
    assert chart.content == (assistant.charts_dir / source.split("/")[-1]).read_bytes()
    shot(page, "desktop-chart")


def test_phone_sized_window(browser, assistant):
    db = current_sizes(assistant)
    page = open_page(browser, assistant, PHONE, is_mobile=True, has_touch=True)
    try:
        width = PHONE["width"]
        for segment in SEGMENTS:
            box = page.locator(f'#sizes li[data-segment="{segment}"]').bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width
            assert box["y"] + box["height"] <= PHONE["height"] / 3  # a compact header
        shot(page, "phone-start")

        replies = ask(page, "describe the highly engaged segment")
        size = db["segments"]["Highly Engaged"][0]
        assert replies[0].inner_text().startswith(f"Highly Engaged: {size:,} users")
        page.wait_for_function("() => [...document.images].every(i => i.complete)")
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, "the page scrolls sideways"
        composer = page.locator("#composer").bounding_box()
        assert composer["y"] + composer["height"] <= PHONE["height"]
        for selector in (".msg.bot .table-wrap", ".msg.bot img"):
            box = page.locator(selector).last.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, selector
        page.locator(".msg.bot .table-wrap").last.scroll_into_view_if_needed()
        shot(page, "phone-answer")
        assert page.problems == []
    finally:
        page.context.close()


def test_routes_summary_charts_and_webhook(assistant):
    base = assistant.webchat_url
    db = current_sizes(assistant)

    summary = requests.get(base + "summary", timeout=30).json()
    assert summary["ok"] is True
    assert summary["run"]["id"] == db["run_id"]
    assert summary["total_users"] == db["total"]
    assert {s["name"]: s["size"] for s in summary["segments"]} == {
        name: size for name, (size, _) in db["segments"].items()
    }

    page = requests.get(base, timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    moved = requests.get(base.rstrip("/"), allow_redirects=False, timeout=30)
    assert moved.status_code == 301 and moved.headers["Location"].endswith("/webhooks/webchat/")
    assert requests.get(base + "static/webchat.js", timeout=30).status_code == 200
    assert requests.get(base + "static/..%2Fwebchat.py", timeout=30).status_code == 404

    for name in ("..%2F..%2Fetc%2Fpasswd", "..%2Fcredentials.yml", "nope.png", ".hidden.png"):
        assert requests.get(base + "charts/" + name, timeout=30).status_code == 404, name
    outside = assistant.charts_dir.parent / "secret.png"
    outside.write_bytes(b"\x89PNG not for you")
    assert requests.get(base + "charts/..%2Fsecret.png", timeout=30).status_code == 404

    webhook = base + "webhook"
    for bad in ({"message": "hi"}, {"sender": "x", "message": "hi"}, {"sender": "abcdefgh12"}):
        assert requests.post(webhook, json=bad, timeout=30).status_code == 400, bad
    assert requests.post(webhook, data="not json", timeout=30).status_code == 400
    # The channel name is always "webchat", whatever the client claims: charts come along.
    replies = requests.post(
        webhook,
        json={"sender": "routes-test-1", "message": "show me a chart of the segment sizes"},
        timeout=120,
    ).json()
    assert any(r.get("image", "").endswith("-sizes.png") for r in replies)
    replies = requests.post(
        webhook,
        json={
            "sender": "routes-test-2",
            "message": "give me an overview of the segments",
            "input_channel": "cmdline",
        },
        timeout=120,
    ).json()
    assert any("image" in r for r in replies)

    # The same assistant over plain REST (channel "rest"): same numbers, no chart attached.
    size = db["segments"]["Highly Engaged"][0]
    (reply,) = assistant.rest("how many users are highly engaged?")
    assert reply["text"].startswith(f"*Highly Engaged* has *{size:,} users*")
    replies = assistant.rest("give me an overview of the segments")
    assert replies and not any("image" in r for r in replies)


def test_an_export_is_a_download_link_that_matches_the_database(page, assistant):
    db = current_sizes(assistant)
    replies = ask(page, "send me the list of moderate engagement users as a csv file")
    expected = {
        row[0]
        for row in assistant.sql(
            "SELECT user_id FROM user_segments WHERE run_id = :run "
            "AND segment = 'Moderate Engagement'",
            run=db["run_id"],
        )
    }
    assert (
        replies[0]
        .inner_text()
        .startswith(f"Exported all {len(expected):,} Moderate Engagement users as CSV")
    )
    link = page.locator(".msg.bot a.download").last
    title = f"moderate-engagement-users-run-{db['run_id']}.csv"
    assert link.inner_text() == f"Download {title}"
    assert link.get_attribute("download") == title
    href = link.get_attribute("href")
    assert href.startswith("exports/") and href.endswith(".csv")
    with page.expect_download() as download_info:
        link.click()
    data = open(download_info.value.path(), encoding="utf-8").read()
    ids = [line.split(",")[0] for line in data.splitlines()[1:]]
    assert set(ids) == expected and len(ids) == len(expected)

    token = href.split("/")[-1]
    served = requests.get(assistant.webchat_url + href, timeout=30)
    assert served.status_code == 200 and served.headers["Content-Type"].startswith("text/csv")
    for name in (token[:-4] + "x.csv", "..%2F" + token, token.replace(".csv", ".png")):
        assert (
            requests.get(assistant.webchat_url + "exports/" + name, timeout=30).status_code == 404
        )
