"""Rules say what is allowed: a version that breaks one is a violation, alerted even on the baseline; the
version that satisfies it again is resolved; a rule that cannot be evaluated says so."""

import pytest

from watcher.config.model import parse_config
from watcher.errors import ConfigError

APPROVED = '''
[[rules]]
name = "approved-models"
kinds = ["agents"]
expression = "self.model in ['gpt-5', 'gpt-5-mini']"
message = "model must be an approved one"
'''


@pytest.fixture
def ruled(write_config, sandbox, store_url):
    """A config with one rule on agents; every seeded agent's model decides what it says."""
    def write(rules: str = APPROVED, extra: str = "") -> str:
        return write_config(sandbox, store_url, extra=rules + extra)

    return write


def rule_events(cli_json, config) -> list[tuple[str, str, str]]:
    return [(e["change"], e["rule"], e["object_id"]) for e in cli_json(config, "events") if e["rule"]]


def _approve_all_but(sandbox, keep: str) -> None:
    for agent in sandbox.objects("agents"):
        if agent["id"] != keep:
            sandbox.edit("agents", agent["id"], model="gpt-5")


def test_a_rule_that_does_not_compile_is_a_config_error_naming_the_rule_and_where():
    with pytest.raises(ConfigError, match=r"rules\[0\] \(approved\): the expression does not compile: at line 1, "
                                          r"column 16"):
        parse_config('[[rules]]\nname = "approved"\nexpression = "self.model in ["\n')


def test_a_version_that_breaks_a_rule_on_the_baseline_is_a_violation(ruled, sandbox, cli, cli_json):
    offender = sandbox.objects("agents")[0]
    _approve_all_but(sandbox, offender["id"])
    sandbox.edit("agents", offender["id"], model="gpt-4.1-nano")
    config = ruled()
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    [event] = [e for e in cli_json(config, "events") if e["rule"]]
    assert (event["change"], event["rule"], event["object_id"], event["message"], event["severity"]) == \
        ("violation", "approved-models", offender["id"], "model must be an approved one", "high")


def test_the_version_that_satisfies_it_again_is_resolved_and_breaking_it_again_is_a_new_violation(
        ruled, sandbox, cli, cli_json):
    offender = sandbox.objects("agents")[0]
    _approve_all_but(sandbox, offender["id"])
    sandbox.edit("agents", offender["id"], model="gpt-4.1-nano")
    config = ruled()
    cli(config, "snapshot", "--no-email")
    sandbox.edit("agents", offender["id"], model="gpt-5-mini")
    cli(config, "snapshot", "--no-email")
    sandbox.edit("agents", offender["id"], model="o3")
    cli(config, "snapshot", "--no-email")
    assert rule_events(cli_json, config) == [("violation", "approved-models", offender["id"]),
                                             ("resolved", "approved-models", offender["id"]),
                                             ("violation", "approved-models", offender["id"])]


def test_a_version_still_breaking_the_rule_is_no_second_violation(ruled, sandbox, cli, cli_json):
    offender = sandbox.objects("agents")[0]
    _approve_all_but(sandbox, offender["id"])
    sandbox.edit("agents", offender["id"], model="gpt-4.1-nano")
    config = ruled()
    cli(config, "snapshot", "--no-email")
    sandbox.edit("agents", offender["id"], model="gpt-4.1-nano", instructions="Still unapproved.")
    cli(config, "snapshot", "--no-email")
    assert [change for change, _rule, _id in rule_events(cli_json, config)] == ["violation"]


def test_a_rule_that_cannot_be_evaluated_on_an_object_is_a_violation_that_says_so(ruled, sandbox, cli, cli_json):
    rule = '[[rules]]\nname = "needs-owner"\nkinds = ["agents"]\nexpression = "self.cost_center != \'\'"\n'
    config = ruled(rule)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    events = [e for e in cli_json(config, "events") if e["rule"] == "needs-owner"]
    assert events and all(e["change"] == "violation" for e in events)
    assert all(e["message"].startswith("cannot be evaluated on this object: ") for e in events)


def test_a_rule_only_looks_at_its_kinds_and_the_objects_its_match_names(ruled, sandbox, cli, cli_json):
    named = sandbox.objects("agents")[1]
    rule = ('[[rules]]\nname = "no-nano"\nkinds = ["agents"]\n'
            f'match = {{ name = "{named["name"]}" }}\nexpression = "self.model != \'gpt-4.1-nano\'"\n')
    for agent in sandbox.objects("agents"):
        sandbox.edit("agents", agent["id"], model="gpt-4.1-nano")
    for assistant in sandbox.objects("assistants"):
        sandbox.edit("assistants", assistant["id"], model="gpt-4.1-nano")
    config = ruled(rule)
    cli(config, "snapshot", "--no-email")
    assert rule_events(cli_json, config) == [("violation", "no-nano", named["id"])]


def test_a_violation_on_the_baseline_is_mailed_though_the_baseline_tells_no_drift(
        sandbox, mail_config, smtp_server, cli, monkeypatch):
    offender = sandbox.objects("agents")[0]
    _approve_all_but(sandbox, offender["id"])
    sandbox.edit("agents", offender["id"], model="gpt-4.1-nano")
    server = smtp_server()
    config = mail_config(sandbox, server)
    with open(config, "a") as file:
        file.write(APPROVED)
    assert cli(config, "snapshot").exit_code == 0
    [mail] = server.wait_for(1)
    assert mail.subject.startswith("[prod] [high] agent ")
    assert mail.subject.endswith("breaks rule approved-models: model must be an approved one")
    assert "breaks rule approved-models on prod" in mail.text


def test_rules_lists_each_rule_with_the_objects_breaking_it_now(ruled, sandbox, cli, cli_json):
    offender = sandbox.objects("agents")[0]
    _approve_all_but(sandbox, offender["id"])
    sandbox.edit("agents", offender["id"], model="gpt-4.1-nano")
    config = ruled(APPROVED + '\n[[rules]]\nname = "named"\nexpression = "has(self.id)"\nseverity = "low"\n')
    cli(config, "snapshot", "--no-email")
    approved, named = cli_json(config, "rules")
    assert (approved["name"], approved["kinds"], approved["severity"]) == ("approved-models", ["agents"], "high")
    assert [(b["object_id"], b["version"], b["message"]) for b in approved["breaking"]] == \
        [(offender["id"], 1, "model must be an approved one")]
    assert (named["name"], named["kinds"], named["breaking"]) == ("named", None, [])
    shown = cli(config, "rules").stdout
    assert "approved-models (high, agents): 1 object breaking it" in shown and "named (low, every kind): 0 objects" in shown
    sandbox.edit("agents", offender["id"], model="gpt-5")
    cli(config, "snapshot", "--no-email")
    assert cli_json(config, "rules")[0]["breaking"] == []


def test_the_objects_breaking_a_rule_read_in_plain_sql_are_the_ones_the_models_give(ruled, sandbox, cli, store_url,
                                                                                    engine):
    from sqlalchemy.orm import Session

    from watcher.record import overview_orm, overview_sql
    from watcher.record.connection import open_database

    cli(ruled(), "snapshot", "--no-email")
    with Session(engine) as session, open_database(store_url) as db:
        assert overview_sql.breaking(db) == overview_orm.breaking(session) != []


def test_metrics_count_the_objects_breaking_each_rule(ruled, sandbox, cli, web_server):
    from conftest import http_request

    cli(config := ruled(), "snapshot", "--no-email")
    text = http_request("GET", web_server(config) + "/metrics").text
    breaking = sum(1 for a in sandbox.objects("agents") if a["model"] not in ("gpt-5", "gpt-5-mini"))
    assert f'assistant_watcher_rule_violations{{rule="approved-models"}} {float(breaking)}' in text
