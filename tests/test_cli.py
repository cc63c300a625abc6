"""The command line: snapshot's exit codes and summary, and the JSON shapes of the contract."""

import json

import pytest
from config_text import KEY_ENV, target_toml

EVENT_KEYS = ["id", "target", "kind", "object_id", "name", "change", "from_version", "to_version", "paths",
              "detected_at", "window_start", "acked_by", "acked_at", "note", "severity", "actor", "rule", "message"]
HISTORY_KEYS = ["number", "hash", "observed_at", "origin", "actor", "note"]


@pytest.fixture
def config(write_config, sandbox, store_url):
    return write_config(sandbox, store_url)


@pytest.fixture
def edited(config, cli, sandbox):
    """A baseline, then an out-of-band edit of one assistant, then a second snapshot."""
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    victim = sandbox.objects("assistants")[0]
    sandbox.edit("assistants", victim["id"], model="gpt-4.1-nano", instructions=victim["instructions"] + "\nAlways cite policy.")
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    return victim


def test_snapshot_prints_one_summary_line_per_target_and_kind(config, cli):
    result = cli(config, "snapshot", "--no-email")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "prod/assistants: baseline recorded, 5 objects in 1 page",
        "prod/agents: baseline recorded, 5 objects in 1 page",
    ]


def test_snapshot_says_when_drift_was_recorded_but_no_channel_tells_anyone(config, cli, sandbox):
    assert cli(config, "snapshot", "--no-email").stderr == ""  # a baseline is no drift
    sandbox.remove("agents", sandbox.objects("agents")[0]["id"])
    result = cli(config, "snapshot", "--no-email")
    assert result.exit_code == 0
    assert result.stderr == ("note: 1 drift event recorded, but no alert channel is configured ([smtp] or "
                             "[[channels]]): nobody was told\n")


def test_snapshot_summary_counts_drift(edited, config, cli, sandbox):
    sandbox.remove("agents", sandbox.objects("agents")[0]["id"])
    result = cli(config, "snapshot", "--no-email")
    assert result.stdout.splitlines() == [
        "prod/assistants: 5 objects in 1 page, no drift",
        "prod/agents: 4 objects in 1 page, 1 deleted",
    ]


def test_snapshot_exits_1_when_a_poll_failed(config, cli, sandbox):
    sandbox.fail_next(10, status=502, message="bad gateway")
    result = cli(config, "snapshot", "--no-email")
    assert result.exit_code == 1
    assert "prod/assistants: FAILED: HTTP 502: bad gateway" in result.stdout


def test_snapshot_exits_0_when_a_kind_is_not_served(config, cli, sandbox):
    sandbox.retire("agents")
    result = cli(config, "snapshot", "--no-email")
    assert result.exit_code == 0
    assert "prod/agents: not served by this endpoint" in result.stdout


def test_snapshot_of_an_unknown_target_exits_2(config, cli):
    result = cli(config, "snapshot", "--target", "staging")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Invalid value for '--target': no target named 'staging' (configured: prod)")


def test_snapshot_without_the_api_key_exits_2_naming_the_variable(config, cli, monkeypatch):
    monkeypatch.delenv("WATCHER_TEST_SANDBOX_KEY")
    result = cli(config, "snapshot")
    assert result.exit_code == 2
    assert "environment variable WATCHER_TEST_SANDBOX_KEY is not set" in result.stderr


def test_events_json_shape(edited, config, cli_json):
    [event] = cli_json(config, "events")
    assert list(event) == EVENT_KEYS
    assert (event["target"], event["kind"], event["object_id"], event["change"]) == ("prod", "assistants", edited["id"], "modified")
    assert (event["from_version"], event["to_version"], event["paths"]) == (1, 2, ["instructions", "model"])
    assert event["detected_at"].endswith("Z") and event["window_start"].endswith("Z")
    assert (event["severity"], event["actor"]) == ("high", None)


def test_events_open_excludes_acknowledged(edited, config, cli, cli_json):
    [event] = cli_json(config, "events")
    result = cli(config, "ack", str(event["id"]), "--by", "alice", "--note", "approved change")
    assert result.exit_code == 0
    assert cli_json(config, "events", "--open") == []
    [acked] = cli_json(config, "events")
    assert (acked["acked_by"], acked["note"]) == ("alice", "approved change")


def test_a_second_acknowledgement_is_refused_and_keeps_the_first(edited, config, cli, cli_json):
    [event] = cli_json(config, "events")
    cli(config, "ack", str(event["id"]), "--by", "alice", "--note", "expected")
    result = cli(config, "ack", str(event["id"]), "--by", "bob")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: event {event['id']} was already acknowledged by alice at ")
    [kept] = cli_json(config, "events")
    assert (kept["acked_by"], kept["note"]) == ("alice", "expected")


@pytest.mark.parametrize("command", [("show", "--version", "0"), ("diff", "--to", "0")])
def test_version_zero_is_not_taken_for_the_current_one(edited, config, cli, command):
    result = cli(config, command[0], edited["id"], *command[1:])
    assert result.exit_code == 1
    assert "no version 0" in result.stderr


def test_events_since_filters_by_detection_time(edited, config, cli_json):
    assert len(cli_json(config, "events", "--since", "1h")) == 1
    assert cli_json(config, "events", "--since", "2999-01-01T00:00:00Z") == []


def test_history_json_shape(edited, config, cli_json):
    versions = cli_json(config, "history", edited["id"])
    assert [list(v) for v in versions] == [HISTORY_KEYS, HISTORY_KEYS]
    assert [(v["number"], v["origin"]) for v in versions] == [(1, "baseline"), (2, "poll")]
    assert len(versions[0]["hash"]) == 64


def test_object_can_be_named_by_its_unique_name(edited, config, cli_json):
    assert cli_json(config, "history", edited["name"]) == cli_json(config, "history", edited["id"])


def test_show_json_is_the_canonical_body(edited, config, cli_json):
    current = cli_json(config, "show", edited["id"])
    first = cli_json(config, "show", edited["id"], "--version", "1")
    assert current["model"] == "gpt-4.1-nano" and first["model"] == edited["model"]
    assert current["id"] == edited["id"]


def test_show_at_a_time_before_the_edit_gives_the_old_version(edited, config, cli_json):
    history = cli_json(config, "history", edited["id"])
    assert cli_json(config, "show", edited["id"], "--at", history[0]["observed_at"])["model"] == edited["model"]
    assert cli_json(config, "show", edited["id"], "--at", history[1]["observed_at"])["model"] == "gpt-4.1-nano"


def test_show_at_a_time_before_the_first_poll_is_an_error(edited, config, cli):
    result = cli(config, "show", edited["id"], "--at", "2001-01-01T00:00:00Z")
    assert result.exit_code == 1
    assert "was not yet recorded at 2001-01-01T00:00:00Z" in result.stderr


def test_diff_json_shape(edited, config, cli_json):
    document = cli_json(config, "diff", edited["id"])
    assert list(document) == ["object_id", "from", "to", "changes"]
    assert (document["object_id"], document["from"], document["to"]) == (edited["id"], 1, 2)
    model = next(c for c in document["changes"] if c["path"] == "model")
    assert model == {"path": "model", "op": "changed", "old": edited["model"], "new": "gpt-4.1-nano"}


def test_diff_prints_a_unified_diff_for_instructions(edited, config, cli):
    result = cli(config, "diff", edited["id"])
    assert result.exit_code == 0
    assert "+Always cite policy." in result.stdout
    assert "\x1b[" not in result.stdout  # not a terminal: no colour


def test_unknown_object_is_one_line_exit_1(edited, config, cli):
    result = cli(config, "history", "asst_nope")
    assert result.exit_code == 1
    assert result.stderr == ("error: no recorded object has the id or name 'asst_nope' "
                             "(`assistant-watcher objects` lists them)\n")


def test_a_name_on_two_objects_asks_for_the_id(config, cli, sandbox):
    first = sandbox.objects("assistants")[0]
    sandbox.add("agents", name=first["name"], model="gpt-5")
    cli(config, "snapshot", "--no-email")
    result = cli(config, "history", first["name"])
    assert result.exit_code == 1
    assert "names 2 objects" in result.stderr and "give the id instead, or add --kind KIND" in result.stderr


def test_an_id_on_two_targets_asks_for_the_target_not_the_id(sandbox, write_config, sqlite_url, cli, tmp_path):
    config = write_config(sandbox, sqlite_url)
    with open(config, "a") as file:
        file.write(target_toml(sandbox.url, name="staging", kinds=["assistants", "agents"]))
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    ref = sandbox.objects("assistants")[0]["id"]
    result = cli(config, "history", ref)
    assert result.exit_code == 1 and result.stderr.rstrip().endswith("add --target NAME")
    assert "give the id" not in result.stderr
    assert cli(config, "history", ref, "--target", "staging").exit_code == 0


def test_diff_names_the_version_the_user_gave(edited, config, cli):
    result = cli(config, "diff", edited["id"], "--to", "7")
    assert result.exit_code == 1 and "has no version 7" in result.stderr


def test_show_prints_json_with_real_newlines_and_escaped_remote_text(sandbox, config, cli):
    victim = sandbox.objects("assistants")[0]
    sandbox.edit("assistants", victim["id"], instructions="line one\nline two \u202e evil", name="Bot\x1b[31m")
    cli(config, "snapshot", "--no-email")
    shown = cli(config, "show", victim["id"]).stdout
    body = shown.split("\n", 1)[1]
    assert json.loads(body)["instructions"] == "line one\nline two \u202e evil"  # still JSON, the same value
    assert "\\x0a" not in shown and "\x1b" not in shown and "\u202e" not in shown


@pytest.mark.parametrize("command", [["show", "{id}", "--json"], ["objects", "--json"], ["events", "--json"],
                                     ["diff", "{id}", "--json"]])
def test_json_output_escapes_what_a_terminal_would_act_on(sandbox, config, cli, command):
    victim = sandbox.objects("assistants")[0]
    cli(config, "snapshot", "--no-email")
    sandbox.edit("assistants", victim["id"], instructions="fine \u202e evil \x9b31m", name="Bot\x1b[31m\u2066")
    cli(config, "snapshot", "--no-email")
    result = cli(config, *[part.format(id=victim["id"]) for part in command])
    assert result.exit_code == 0, result.stderr
    assert not {"\u202e", "\x9b", "\x1b", "\u2066"} & set(result.stdout)
    assert "\\u202e" in result.stdout or "\\u2066" in result.stdout  # escaped, still the same JSON


def test_events_table_is_readable(edited, config, cli):
    lines = cli(config, "events").stdout.splitlines()
    assert lines[0].split() == ["id", "detected", "where", "object", "change", "severity", "versions", "paths", "who",
                                "reviewed"]
    assert "modified" in lines[1] and "1→2" in lines[1] and "instructions, model" in lines[1]
    assert "modified  high " in lines[1], "a model change is high: the table says so without --json"
    assert "unknown (out of band)" in lines[1], "no source knows who edits an assistant"


def test_events_show_the_review_note(edited, config, cli):
    [line] = cli(config, "events").stdout.splitlines()[1:]
    event_id = line.split()[0]
    assert cli(config, "ack", event_id, "--by", "alice", "--note", "approved in CHG-7").exit_code == 0
    assert "alice: approved in CHG-7" in cli(config, "events").stdout


def test_v_shows_the_watchers_debug_lines_and_vv_the_libraries_too(sandbox, write_config, sqlite_url):
    import subprocess
    import sys

    config = write_config(sandbox, sqlite_url)
    env = {**__import__("os").environ}
    one = subprocess.run([sys.executable, "-m", "watcher", "--config", config, "-v", "snapshot", "--no-email"],
                         capture_output=True, text=True, env=env)
    assert one.returncode == 0
    assert "DEBUG watcher" in one.stderr and "DEBUG httpx" not in one.stderr and "DEBUG httpcore" not in one.stderr
    two = subprocess.run([sys.executable, "-m", "watcher", "--config", config, "-vv", "snapshot", "--no-email"],
                         capture_output=True, text=True, env=env)
    assert two.returncode == 0 and "DEBUG openai" in two.stderr  # the libraries' internals
    # Never the HTTP clients' own URL lines: a Slack or Teams webhook URL is a secret.
    assert " httpx2:" not in two.stderr and " httpx:" not in two.stderr and " httpcore" not in two.stderr


def test_a_base_url_that_serves_no_kind_fails_the_snapshot_and_says_what_to_check(sandbox, tmp_path, cli,
                                                                                  monkeypatch):
    monkeypatch.setenv(KEY_ENV, sandbox.api_key)
    root = sandbox.url.removesuffix("/v1")  # the usual mistake: the host without /v1
    config = tmp_path / "wrong.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "w.db"}"\n\n{target_toml(root)}')
    result = cli(config, "snapshot", "--no-email")
    assert result.exit_code == 1
    assert f"prod: FAILED: no kind is served at {root}" in result.stderr and "check the target's base_url" in \
        result.stderr
    assert cli(config, "snapshot", "--no-email").exit_code == 1  # and again, while nothing is asked


@pytest.fixture
def skills_config(write_config, sqlite_url):
    """A recorded account with two skills, whose versions carry their skill's name."""
    from watcher.sandbox.server import Sandbox

    with Sandbox(assistants=0, agents=0, skills=2) as sb:
        yield write_config(sb, sqlite_url, target_extra='kinds = ["skills", "skill_versions"]'), sb


def test_a_skill_version_is_named_after_its_skill_and_its_version(skills_config, cli):
    """A version's own name is its skill's: "<skill> / <version>" tells a skill and each of its versions apart."""
    config, sb = skills_config
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    skill = sb.objects("skills")[0]
    version = next(v for v in sb.objects("skill_versions") if v["skill_id"] == skill["id"])
    assert cli(config, "history", skill["name"]).stdout.startswith(f"prod/skills/{skill['id']} ")
    named = cli(config, "history", f"{skill['name']} / {version['version']}")
    assert named.exit_code == 0, named.output
    assert named.stdout.startswith(f"prod/skill_versions/{skill['id']}/{version['version']} ")


def test_a_name_shared_by_two_kinds_asks_for_the_kind(config, cli, sandbox):
    assistant = sandbox.objects("assistants")[0]
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], name=assistant["name"])
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    ambiguous = cli(config, "history", assistant["name"])
    assert ambiguous.exit_code == 1 and ambiguous.stderr.rstrip().endswith("give the id instead, or add --kind KIND")
    chosen = cli(config, "history", assistant["name"], "--kind", "assistants")
    assert chosen.exit_code == 0 and chosen.stdout.startswith(f"prod/assistants/{assistant['id']} ")


def test_a_misspelt_kind_option_gets_a_did_you_mean(config, cli):
    for args in (["objects"], ["snapshot"], ["history", "anything"]):
        result = cli(config, *args, "--kind", "agent")
        assert result.exit_code == 2 and "unknown kind 'agent' (did you mean 'agents'?)" in result.stderr, args


def test_a_usage_error_is_one_line_naming_where_help_is(config, cli):
    for args, message in ((["prune", "--keep-days", "0"], "Invalid value for '--keep-days'"),
                          (["ack", "abc", "--by", "me"], "Invalid value for 'EVENT'"),
                          (["snapsht"], "No such command 'snapsht'")):
        result = cli(config, *args)
        assert result.exit_code == 2, args
        [line] = result.stderr.splitlines()
        assert line.startswith(f"error: {message}") and line.endswith(" --help')"), line


def test_no_command_shows_the_help_not_an_error(cli):
    result = cli(None)
    assert "Commands:" in result.output and "snapshot" in result.output
    assert not result.output.startswith("error:")


def test_diff_of_a_version_recorded_for_a_rules_change_says_so(sandbox, write_config, sqlite_url, cli):
    agent = sandbox.objects("agents")[0]
    sandbox.edit("agents", agent["id"], metadata={"hwm": "1", "team": "ops"})
    hidden = write_config(sandbox, sqlite_url, target_extra='ignore = ["metadata.hwm"]')
    assert cli(hidden, "snapshot", "--no-email").exit_code == 0
    shown = write_config(sandbox, sqlite_url)
    assert cli(shown, "snapshot", "--no-email").exit_code == 0
    result = cli(shown, "diff", agent["id"])
    assert "note: version 2 was recorded because the watcher's rules changed" in result.stdout


def test_a_time_the_watcher_cannot_read_is_a_usage_error(config, cli):
    for args in (["events", "--since", "garbage"], ["show", "anything", "--at", "garbage"]):
        result = cli(config, *args)
        assert result.exit_code == 2, args
        [line] = result.stderr.splitlines()
        assert line.startswith("error: Invalid value for") and "cannot read time 'garbage'" in line, line


def test_a_target_neither_configured_nor_recorded_is_refused_not_answered_with_nothing(config, cli):
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    for args in (["events"], ["objects"], ["snapshot"], ["events", "--follow"], ["history", "anything"],
                 ["show", "anything"], ["diff", "anything"]):
        result = cli(config, *args, "--target", "nope")
        assert result.exit_code == 2, args
        assert "no target named 'nope' (configured: prod)" in result.stderr, args
    assert cli(config, "events", "--target", "prod").exit_code == 0


def test_objects_takes_several_kinds(config, cli, cli_json):
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    both = cli_json(config, "objects", "--kind", "agents", "--kind", "assistants")
    assert sorted({o["kind"] for o in both}) == ["agents", "assistants"] and len(both) == 10
    assert {o["kind"] for o in cli_json(config, "objects", "--kind", "agents")} == {"agents"}


def test_diff_of_an_object_with_one_version_says_there_is_nothing_to_compare_yet(config, cli, sandbox):
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    result = cli(config, "diff", sandbox.objects("assistants")[0]["id"])
    assert result.exit_code == 0 and result.stdout.rstrip().endswith(
        "only version 1 is recorded, nothing to compare it with (a change the watcher records becomes version 2)")


def test_diff_of_a_deleted_object_with_one_version_does_not_promise_a_version_2(config, cli, sandbox):
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    victim = sandbox.objects("assistants")[0]["id"]
    sandbox.remove("assistants", victim)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    result = cli(config, "diff", victim)
    assert result.exit_code == 0 and result.stdout.rstrip().endswith("(its deletion is an event, not a version)")


# --- several daemons, many targets (issue 11) ---


def test_status_names_the_process_that_did_each_last_poll(sandbox, write_config, sqlite_url, cli, cli_json):
    from watcher.poll.outcome import WORKER

    config = write_config(sandbox, sqlite_url)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    polls = cli_json(config, "status")["polls"]
    assert [(p["kind"], p["worker"], p["enabled"]) for p in polls] == \
        [("agents", WORKER, True), ("assistants", WORKER, True)]
    assert WORKER in cli(config, "status").stdout


def test_a_disabled_target_is_not_polled_and_its_history_stays_readable(sandbox, write_config, sqlite_url, cli,
                                                                         cli_json):
    config = write_config(sandbox, sqlite_url)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    with open(config, "a") as file:  # the same target, now disabled, beside one that is polled
        file.write("\n" + target_toml(sandbox.url, name="other", kinds=["assistants"]))
    text = open(config).read().replace('kinds = ["assistants", "agents"]\n',
                                       'kinds = ["assistants", "agents"]\nenabled = false\n', 1)
    open(config, "w").write(text)
    sandbox.edit("assistants", sandbox.objects("assistants")[0]["id"], model="gpt-4.1-nano")
    result = cli(config, "snapshot", "--no-email")
    assert result.exit_code == 0 and "prod/" not in result.stdout and "other/assistants" in result.stdout
    polls = {(p["target"], p["kind"]): p for p in cli_json(config, "status")["polls"]}
    assert polls[("prod", "assistants")]["enabled"] is False and polls[("other", "assistants")]["enabled"] is True
    assert polls[("prod", "assistants")]["objects"] == 5  # its record, still there
    assert cli_json(config, "events") == []  # prod's drift was not polled, so not recorded
    assert "(disabled)" in cli(config, "status").stdout
