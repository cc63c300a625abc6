"""Alerts end to end: sandbox API → `snapshot` → outbox → a real aiosmtpd server, parsed with `email`."""

import pytest

WATCHLIST = "ops@example.com"


@pytest.fixture
def server(smtp_server):
    return smtp_server()


# --- one email per event, to the watchlist and matching routes --------------------------------------


def test_an_out_of_band_edit_arrives_as_one_readable_email(sandbox, server, mail_config, cli, cli_json, store_url):
    victim = sandbox.objects("assistants")[0]
    sandbox.edit("assistants", victim["id"], name="Billing Bot")
    config = mail_config(sandbox, server, url=store_url, alerts='[[alerts.routes]]\nmatch = { name = "Billing*" }\n'
                                                                'to = ["billing-leads@example.com"]\n')
    assert cli(config, "snapshot").exit_code == 0
    assert server.messages == []  # a baseline raises no alert
    old_line = victim["instructions"].splitlines()[0]
    new_tool = {"type": "function", "function": {"name": "lookup_invoice", "description": "Find an invoice.",
                                                  "parameters": {"type": "object", "properties": {}}}}
    sandbox.edit("assistants", victim["id"], instructions=victim["instructions"].replace("never guess", "guess freely"),
                 tools=[*victim["tools"], new_tool])

    result = cli(config, "snapshot")
    assert result.exit_code == 0 and "mail: 1 email sent" in result.stdout
    [mail] = server.messages
    tool_path = f"tools[{len(victim['tools'])}]"
    assert mail.subject == f'[prod] [high] assistant "Billing Bot" modified: instructions, {tool_path}'
    assert mail.rcpt_tos == [WATCHLIST, "billing-leads@example.com"]
    assert mail.header("To") == f"{WATCHLIST}, billing-leads@example.com"
    assert mail.header("From") == "Assistant Watcher <watcher@watcher.example.com>"
    assert mail.header("Auto-Submitted") == "auto-generated" and mail.header("Date")
    assert mail.message.get_content_type() == "multipart/alternative"
    [queued] = cli_json(config, "outbox")
    assert mail.header("Message-ID") == queued["message_id"] and queued["sent_at"]

    text = mail.text
    command = f"assistant-watcher diff {victim['id']} --target prod --from 1 --to 2"
    assert 'Assistant "Billing Bot" was modified on prod (severity high).' in text
    assert f"What:  instructions, {tool_path}" in text
    assert "When:  between " in text and "(between two polls)" in text
    assert f"Where: target prod · assistants · {victim['id']} · version 1 → 2" in text
    assert f"    -{old_line}" in text and f"    +{old_line.replace('never guess', 'guess freely')}" in text
    assert f"{tool_path} (added: function lookup_invoice)" in text
    assert f'    + {tool_path}.function.name = "lookup_invoice"' in text
    assert f"Full diff:   {command}" in text
    assert cli(config, *command.split()[1:]).exit_code == 0  # the command it names works

    page = mail.html
    assert 'style="background:#dafbe1;color:#116329">+' in page  # added lines in green
    assert 'style="background:#ffebe9;color:#82071e">-' in page  # removed lines in red
    assert "lookup_invoice" in page and command in page


def test_routes_match_on_kind_target_name_and_severity(sandbox, server, mail_config, cli):
    routes = ('[[alerts.routes]]\nmatch = { kind = "agents", severity = "high" }\nto = ["agents-high@example.com"]\n'
              '[[alerts.routes]]\nmatch = { target = "staging" }\nto = ["staging@example.com"]\n'
              '[[alerts.routes]]\nmatch = { name = "*", severity = "low" }\nto = ["cosmetic@example.com"]\n'
              '[[alerts.routes]]\nmatch = { target = "pr*", kind = "assistants" }\n'
              'to = ["prod-assistants@example.com"]\n')
    config = mail_config(sandbox, server, watchlist=(), alerts=routes)
    cli(config, "snapshot")
    agents = sandbox.objects("agents")
    sandbox.edit("agents", agents[0]["id"], model="gpt-5-nano")  # high
    sandbox.edit("agents", agents[1]["id"], metadata={"team": "renamed"})  # low
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], description="Now with a new description.")  # low
    cli(config, "snapshot")
    received = {(m.subject.split('"')[1], tuple(m.rcpt_tos)) for m in server.messages}
    assert received == {
        (agents[0]["name"], ("agents-high@example.com",)),
        (agents[1]["name"], ("cosmetic@example.com",)),
        (sandbox.objects("assistants")[0]["name"], ("cosmetic@example.com", "prod-assistants@example.com")),
    }


def test_severity_is_in_the_subject_only_when_high(sandbox, server, mail_config, cli):
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    agent = sandbox.objects("agents")[0]
    sandbox.edit("agents", agent["id"], metadata={"team": "x"}, name="Renamed Agent")
    cli(config, "snapshot")
    [mail] = server.messages
    assert mail.subject.startswith('[prod] agent "Renamed Agent" modified: ')
    assert "(severity low)" in mail.text


def test_created_and_deleted_objects_are_emailed(sandbox, server, mail_config, cli):
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    created = sandbox.add("assistants", name="New Bot", model="gpt-4.1", instructions="Say hello.")
    gone = sandbox.objects("agents")[0]
    sandbox.remove("agents", gone["id"])
    cli(config, "snapshot")
    by_subject = {m.subject: m for m in server.messages}
    assert set(by_subject) == {'[prod] assistant "New Bot" created', f'[prod] [high] agent "{gone["name"]}" deleted'}
    born = by_subject['[prod] assistant "New Bot" created'].text
    assert 'model (added)\n    (absent) → "gpt-4.1"' in born
    assert f"assistant-watcher show {created['id']} --target prod --version 1" in born
    died = by_subject[f'[prod] [high] agent "{gone["name"]}" deleted'].text
    assert "last version 1" in died and f"assistant-watcher show {gone['id']} --target prod --version 1" in died
    assert "instructions" not in died and len(died.splitlines()) < 20  # what, when, where: not the whole object


def test_an_agent_email_says_when_from_its_updated_at(sandbox, server, mail_config, cli):
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    edited = sandbox.edit("agents", sandbox.objects("agents")[0]["id"], model="gpt-5-nano", updated_at=1_900_000_000)
    cli(config, "snapshot")
    [mail] = server.messages
    assert edited["updated_at"] == 1_900_000_000
    assert "When:  2030-03-17T17:46:40Z (the agent's updated_at); detected " in mail.text
    assert '    "' in mail.text and '→ "gpt-5-nano"' in mail.text  # before → after for a scalar


def test_no_rows_without_smtp_or_without_anyone_to_tell(sandbox, server, mail_config, write_config, sqlite_url, cli,
                                                       cli_json, tmp_path):
    for config in (write_config(sandbox, sqlite_url), mail_config(sandbox, server, watchlist=())):
        cli(config, "snapshot")
        victim = sandbox.objects("assistants")[0]
        sandbox.edit("assistants", victim["id"], model=f"gpt-{len(config)}-{tmp_path.name[:5]}")
        cli(config, "snapshot")
        assert cli_json(config, "outbox") == []
    assert server.messages == []


# --- digest -------------------------------------------------------------------------------------------


def test_more_events_than_the_threshold_in_one_poll_make_one_digest(sandbox, server, mail_config, cli):
    config = mail_config(sandbox, server, alerts="digest_threshold = 2\n")
    cli(config, "snapshot")
    assistants = sandbox.objects("assistants")
    for obj in assistants[:3]:
        sandbox.edit("assistants", obj["id"], model="gpt-digest")
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], model="gpt-digest")  # another poll: its own email
    cli(config, "snapshot")
    subjects = sorted(m.subject for m in server.messages)
    assert subjects == ['[prod] [high] 3 assistants changed in one poll: 3 modified',
                        f'[prod] [high] agent "{sandbox.objects("agents")[0]["name"]}" modified: model']
    digest = next(m for m in server.messages if "changed in one poll" in m.subject)
    for obj in assistants[:3]:
        assert f'high modified assistant "{obj["name"]}" ({obj["id"]}, v1 → v2): model' in digest.text
        assert f"assistant-watcher diff {obj['id']} --target prod --from 1 --to 2" in digest.text
        assert obj["name"] in digest.html
    assert "All of them: assistant-watcher events --target prod --since " in digest.text


# --- failing, recovered, retired ---------------------------------------------------------------------


def test_failing_polls_send_one_email_after_failure_after_and_one_when_recovered(sandbox, server, mail_config, cli,
                                                                                  store_url):
    config = mail_config(sandbox, server, url=store_url, target_extra='kinds = ["assistants"]',
                         alerts='failure_after = 2\n[[alerts.routes]]\nmatch = { name = "Billing*" }\n'
                                'to = ["billing@example.com"]\n')
    cli(config, "snapshot")
    sandbox.fail_next(1000, status=400, message="project suspended")
    counts = []
    for _ in range(4):
        assert cli(config, "snapshot").exit_code == 1
        counts.append(len(server.messages))
    assert counts == [0, 1, 1, 1]
    [failing] = server.messages
    assert failing.subject == "[prod] [high] watcher failing: assistants polls failed 2 times in a row"
    assert failing.rcpt_tos == [WATCHLIST]  # object routes are not for operational mail
    assert "prod/assistants: HTTP 400: project suspended" in failing.text
    assert "Failed polls:  2" in failing.text and "project suspended" in failing.html

    sandbox.reset_faults()
    assert cli(config, "snapshot").exit_code == 0
    assert cli(config, "snapshot").exit_code == 0
    assert [m.subject for m in server.messages[1:]] == [
        "[prod] watcher recovered: assistants polled again after 4 failed polls"]


def test_an_outage_of_a_target_is_one_failing_email_and_one_recovered_email_whatever_its_kinds(
        sandbox, server, mail_config, cli, store_url):
    config = mail_config(sandbox, server, url=store_url, target_extra='kinds = ["assistants", "agents"]',
                         alerts="failure_after = 2\n")
    cli(config, "snapshot")
    sandbox.fail_next(1000, status=500, message="upstream down")
    for _ in range(3):
        assert cli(config, "snapshot").exit_code == 1
    assert [m.subject for m in server.messages] == [
        "[prod] [high] watcher failing: assistants polls failed 2 times in a row"]
    sandbox.reset_faults()
    assert cli(config, "snapshot").exit_code == 0
    assert [m.subject for m in server.messages[1:]] == [
        "[prod] watcher recovered: agents polled again after 3 failed polls"]


def test_an_outage_nobody_was_told_of_ends_without_a_recovered_email(sandbox, server, mail_config, write_config,
                                                                    sqlite_url, cli):
    quiet = write_config(sandbox, sqlite_url)  # no [smtp] yet: nothing is queued, so nothing is announced
    cli(quiet, "snapshot")
    sandbox.fail_next(1000, status=400)
    for _ in range(4):
        assert cli(quiet, "snapshot").exit_code == 1
    sandbox.reset_faults()
    loud = mail_config(sandbox, server, alerts="failure_after = 2\n")
    assert cli(loud, "snapshot").exit_code == 0
    assert server.messages == []


def test_an_outage_still_on_when_mail_is_configured_is_announced_once(sandbox, server, mail_config, write_config,
                                                                     sqlite_url, cli):
    quiet = write_config(sandbox, sqlite_url, target_extra='kinds = ["agents"]')
    cli(quiet, "snapshot")
    sandbox.fail_next(1000, status=400)
    for _ in range(3):
        cli(quiet, "snapshot")
    loud = mail_config(sandbox, server, target_extra='kinds = ["agents"]', alerts="failure_after = 2\n")
    cli(loud, "snapshot")
    cli(loud, "snapshot")
    assert [m.subject for m in server.messages] == [
        "[prod] [high] watcher failing: agents polls failed 4 times in a row"]
    sandbox.reset_faults()
    cli(loud, "snapshot")
    assert server.messages[-1].subject == "[prod] watcher recovered: agents polled again after 5 failed polls"


def test_a_failure_shorter_than_failure_after_sends_nothing(sandbox, server, mail_config, cli):
    config = mail_config(sandbox, server, target_extra='kinds = ["agents"]', alerts="failure_after = 3\n")
    cli(config, "snapshot")
    sandbox.fail_next(1000, status=400)
    cli(config, "snapshot")
    cli(config, "snapshot")
    sandbox.reset_faults()
    cli(config, "snapshot")
    assert server.messages == []


def test_a_retired_kind_is_announced_once_and_its_return_too(sandbox, server, mail_config, cli, store_url):
    config = mail_config(sandbox, server, url=store_url, alerts="failure_after = 2\n")
    cli(config, "snapshot")
    sandbox.retire("assistants")
    for _ in range(3):
        assert cli(config, "snapshot").exit_code == 1
    [retired] = server.messages  # not one per poll, and no extra "failing" email
    assert retired.subject == "[prod] [high] assistants no longer served by this endpoint"
    assert "this endpoint no longer serves assistants" in retired.text and "5 recorded assistants kept" in retired.text
    sandbox.restore_kind("assistants")
    cli(config, "snapshot")
    assert [m.subject for m in server.messages[1:]] == [
        "[prod] watcher recovered: assistants polled again after 3 failed polls"]


def test_a_kind_retired_for_a_single_poll_is_announced_and_its_return_too(sandbox, server, mail_config, cli):
    config = mail_config(sandbox, server, target_extra='kinds = ["assistants"]', alerts="failure_after = 5\n")
    cli(config, "snapshot")
    sandbox.retire("assistants")
    cli(config, "snapshot")
    sandbox.restore_kind("assistants")
    cli(config, "snapshot")
    assert [m.subject for m in server.messages] == [
        "[prod] [high] assistants no longer served by this endpoint",
        "[prod] watcher recovered: assistants polled again after 1 failed poll"]


# --- hostile content ----------------------------------------------------------------------------------


def test_crlf_and_bcc_in_a_name_cannot_inject_a_header(sandbox, server, mail_config, cli):
    hostile = "Billing\r\nBcc: evil@example.com\r\nX-Injected: yes"
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], name=hostile)
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], model="gpt-4.1-nano")
    cli(config, "snapshot")
    [mail] = server.messages
    assert mail.rcpt_tos == [WATCHLIST]
    assert mail.message["Bcc"] is None and mail.message["X-Injected"] is None
    assert mail.subject == '[prod] [high] assistant "Billing Bcc: evil@example.com X-Injected: yes" modified: model'
    assert b"\nBcc:" not in mail.raw and b"\nX-Injected:" not in mail.raw


def test_script_and_markup_in_remote_content_are_escaped_in_html(sandbox, server, mail_config, cli):
    victim = sandbox.objects("assistants")[0]
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    sandbox.edit("assistants", victim["id"], name='<img src=x onerror="alert(1)">',
                 instructions=victim["instructions"] + "\n<script>alert('owned')</script>",
                 metadata={"note": "</td></tr></table><a href='javascript:alert(2)'>x</a>"})
    cli(config, "snapshot")
    [mail] = server.messages
    page = mail.html
    assert "<script" not in page and "<img" not in page and "<a href" not in page
    assert "+&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert "+<script>alert('owned')</script>" in mail.text  # plain text stays literal


def test_non_ascii_names_are_encoded_and_decode_back(sandbox, server, mail_config, cli):
    name = "Größen-Bot 請求書 ✓ — ünïcödé"
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], name=name)
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], instructions="Antworte auf Deutsch. 日本語も可。")
    cli(config, "snapshot")
    [mail] = server.messages
    assert mail.subject == f'[prod] [high] agent "{name}" modified: instructions'
    subject_line = next(line for line in mail.raw.split(b"\r\n\r\n")[0].splitlines() if line.startswith(b"Subject:"))
    assert subject_line.isascii() and b"=?utf-8?" in subject_line
    assert f'Agent "{name}" was modified' in mail.text and "+Antworte auf Deutsch. 日本語も可。" in mail.text
    assert name in mail.html


def test_control_and_bidi_characters_are_shown_not_obeyed(sandbox, server, mail_config, cli):
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], model="gpt\x1b[31m-red\u202e")
    cli(config, "snapshot")
    [mail] = server.messages
    assert "\x1b" not in mail.text and "\u202e" not in mail.text and "\u202e" not in mail.html
    assert '"gpt\\u001b[31m-red\\u202e"' in mail.text  # JSON-escaped scalar


def test_256k_instructions_with_2_percent_of_lines_edited_arrive_under_256_kib(sandbox, server, mail_config, cli,
                                                                               long_instructions):
    before = long_instructions()
    assert len(before) >= 256_000
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], instructions=before)
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    lines = before.split("\n")
    for n in range(0, len(lines), 50):  # 2% of the lines
        lines[n] = lines[n].replace("Always", "Never")
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], instructions="\n".join(lines))
    cli(config, "snapshot")
    [mail] = server.messages
    assert len(mail.raw) < 256 * 1024
    assert "    -00050 Always answer" in mail.text and "    +00050 Never answer" in mail.text


def test_a_huge_rewrite_is_cut_with_the_command_that_shows_all(sandbox, server, mail_config, cli, long_instructions):
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], instructions=long_instructions())
    config = mail_config(sandbox, server)
    cli(config, "snapshot")
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], instructions=long_instructions(verb="Never"))
    cli(config, "snapshot")
    [mail] = server.messages
    agent_id = sandbox.objects("agents")[0]["id"]
    assert len(mail.raw) < 256 * 1024
    assert f"more lines — run: assistant-watcher diff {agent_id} --target prod --from 1 --to 2" in mail.text
    assert "more lines &mdash; run <code>assistant-watcher diff" in mail.html
