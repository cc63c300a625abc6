"""The pages in a real browser (Debian's chromium, driven by Playwright) against a real server."""

from __future__ import annotations

import re

import pytest
from conftest import HTTP_TOKEN, HTTP_TOKEN_ENV

HOSTILE_NAME = '<script>window.__pwned = 1</script>Evil <img src=x onerror="window.__pwned = 2">'
HOSTILE_LINE = '<script>window.__pwned = 3</script> and <svg onload="window.__pwned = 4">'


@pytest.fixture
def site(write_config, sandbox, sqlite_url, cli, web_server):
    """A record with one hostile out-of-band edit (a script in the name and the instructions), served."""
    config = write_config(sandbox, sqlite_url,
                          extra=f'[http]\nlisten = "127.0.0.1:8080"\ntoken_env = "{HTTP_TOKEN_ENV}"\n')
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    victim = sandbox.objects("assistants")[0]
    lines = victim["instructions"].splitlines()
    lines[0] = lines[0].replace("assistant", "agent", 1)  # one changed word: highlighted
    sandbox.edit("assistants", victim["id"], name=HOSTILE_NAME,
                 instructions="\n".join(lines) + "\n" + HOSTILE_LINE)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    return {"base": web_server(config), "object_id": victim["id"]}


@pytest.fixture
def page(browser):
    context = browser.new_context()
    opened = context.new_page()
    opened.dialogs = []
    opened.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()


def assert_nothing_ran(page):
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []
    assert page.locator("script").count() == 0
    assert page.locator("img[src='x'], svg[onload]").count() == 0


def test_from_the_overview_to_a_diff(site, page):
    page.goto(site["base"] + "/")
    row = page.locator("tr.kind-status", has_text="assistants")
    assert row.locator("td[data-label='Objects']").inner_text() == "5"
    row.locator("a.open-events").click()
    assert re.search(r"/events\?.*open=1", page.url)
    page.locator("tr.event td[data-label='Object'] a").first.click()
    assert page.url.endswith(f"/objects/prod/assistants/{site['object_id']}")
    assert page.locator("tr.version td.origin").all_inner_texts() == ["seen by a poll (out of band)",
                                                                     "first seen (baseline)"]
    page.locator("a.diff-link", has_text="diff with 1").click()
    assert "/diff?" in page.url
    split = page.locator("section.change", has_text="instructions").locator("table.split")
    assert split.locator("td.del mark").first.inner_text() == "assistant"
    assert split.locator("td.add mark").first.inner_text() == "agent"
    page.locator("a", has_text="Unified").click()
    unified = page.locator("section.change", has_text="instructions").locator(".unified")
    assert unified.locator(".add", has_text="window.__pwned = 3").count() == 1
    assert_nothing_ran(page)


def test_a_script_in_a_name_or_instructions_is_shown_as_text_and_never_runs(site, page):
    object_path = f"/objects/prod/assistants/{site['object_id']}"
    for path in ("/", "/events", "/objects", object_path, object_path + "/diff", object_path + "/diff?view=unified"):
        page.goto(site["base"] + path)
        assert_nothing_ran(page)
    page.goto(site["base"] + "/events")
    assert page.locator("tr.event td[data-label='Object'] a").first.inner_text() == HOSTILE_NAME
    page.goto(site["base"] + object_path)
    assert HOSTILE_LINE in page.locator("dl.body dt:has-text('instructions') + dd").inner_text()
    assert page.locator("dl.body dt:has-text('name') + dd").inner_text() == HOSTILE_NAME


def test_ack_from_the_page_needs_the_token(site, page):
    page.goto(site["base"] + "/events?open=1")
    form_of = lambda: page.locator("tr.event").first  # noqa: E731
    form_of().locator("summary", has_text="Acknowledge").click()
    form_of().locator("input[name=by]").fill("alice")
    form_of().locator("input[name=note]").fill("expected: renamed by the team")
    form_of().locator("input[name=token]").fill("not-the-token-0123456789")
    with page.expect_navigation():
        form_of().locator("button[type=submit]").click()
    assert page.locator("h1").inner_text() == "403"
    assert page.locator("p.error").inner_text() == "wrong token"
    page.goto(site["base"] + "/events?open=1")
    form_of().locator("summary").click()
    form_of().locator("input[name=by]").fill("alice")
    form_of().locator("input[name=note]").fill("expected: renamed by the team")
    form_of().locator("input[name=token]").fill(HTTP_TOKEN)
    with page.expect_navigation():
        form_of().locator("button[type=submit]").click()
    assert page.url.endswith("/events?open=1")
    assert page.locator("tr.event").count() == 0  # the only open event is acknowledged now
    page.goto(site["base"] + "/events")
    review = page.locator("tr.event").first.locator("td[data-label='Review']")
    assert review.locator(".acked").inner_text() == "acknowledged by alice"
    assert review.locator(".note").inner_text() == "expected: renamed by the team"


def test_every_asset_comes_from_the_watcher(site, page):
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(site["base"] + f"/objects/prod/assistants/{site['object_id']}/diff")
    assert requested and all(url.startswith(site["base"] + "/") for url in requested)
    assert page.evaluate("getComputedStyle(document.querySelector('header.top')).display") == "flex"  # CSS applied


@pytest.mark.parametrize("path", ["/", "/events", "/objects", "/objects/prod/assistants/{id}",
                                  "/objects/prod/assistants/{id}/diff"])
def test_pages_fit_a_phone_screen(site, browser, path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    phone = context.new_page()
    phone.goto(site["base"] + path.format(id=site["object_id"]))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def test_an_objects_page_says_who_and_how_each_version_came(site, page, cli_json, cli, tmp_path):
    """Baseline, an out-of-band edit, then an apply and a restore through the watcher, each with its author."""
    import json

    config = str(tmp_path / "config.toml")
    body = cli_json(config, "show", site["object_id"])
    body["model"] = "gpt-4.1"
    change = tmp_path / "change.json"
    change.write_text(json.dumps(body))
    assert cli(config, "apply", str(change), "--by", "alice", "--note", "ticket 42").exit_code == 0
    assert cli(config, "restore", site["object_id"], "--version", "1", "--by", "bob").exit_code == 0
    page.goto(site["base"] + f"/objects/prod/assistants/{site['object_id']}")
    rows = [[row.locator(f"td[data-label='{column}']").inner_text() for column in ("#", "How", "Who", "Note")]
            for row in page.locator("tr.version").all()]
    assert rows == [["4", "restored through the watcher", "bob", "restored version 1"],
                    ["3", "applied through the watcher", "alice", "ticket 42"],
                    ["2", "seen by a poll (out of band)", "unknown (out of band)", ""],
                    ["1", "first seen (baseline)", "—", ""]]
    assert_nothing_ran(page)
