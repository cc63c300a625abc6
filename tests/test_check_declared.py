"""`check DIR`: the live objects against the declared ones, as a CI job reads them (exit 0, 1 or 2)."""

import json

import pytest


@pytest.fixture
def declared(write_config, sandbox, store_url, cli, cli_json, tmp_path):
    """A config and a directory declaring every agent as `show --json` prints it; (config, directory)."""
    config = write_config(sandbox, store_url)
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    folder = tmp_path / "declared" / "prod" / "agents"
    folder.mkdir(parents=True)
    for agent in sandbox.objects("agents"):
        (folder / f"{agent['id']}.json").write_text(json.dumps(cli_json(config, "show", agent["id"]), indent=2))
    return config, tmp_path / "declared"


def test_files_saved_from_show_are_in_sync(declared, cli):
    config, directory = declared
    result = cli(config, "check", str(directory))
    assert result.exit_code == 0, result.output
    assert "in sync: 5 declared objects" in result.stdout


def test_an_out_of_band_edit_differs_with_its_changes(declared, sandbox, cli):
    config, directory = declared
    agent = sandbox.objects("agents")[0]
    sandbox.edit("agents", agent["id"], model="gpt-5-nano")
    result = cli(config, "check", str(directory), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["in_sync"] is False and list(document) == ["in_sync", "differs", "missing", "undeclared",
                                                               "violations"]
    [item] = document["differs"]
    assert item["object_id"] == agent["id"] and item["file"].endswith(f"{agent['id']}.json")
    assert item["changes"] == [{"path": "model", "op": "changed", "old": "gpt-5-nano", "new": agent["model"]}]


def test_a_declared_object_not_live_is_missing_and_strict_names_what_no_file_declares(declared, sandbox, cli):
    config, directory = declared
    gone = sandbox.objects("agents")[0]
    sandbox.remove("agents", gone["id"])
    for path in list((directory / "prod" / "agents").iterdir())[:2]:
        if gone["id"] not in path.name:
            path.unlink()
    plain = cli(config, "check", str(directory))
    assert plain.exit_code == 1 and f"missing: prod/agents {gone['name']}" in plain.stdout
    strict = cli(config, "check", str(directory), "--strict", "--json")
    assert len(json.loads(strict.stdout)["undeclared"]) >= 1


def test_a_file_that_cannot_be_read_is_one_line_naming_it(declared, cli):
    config, directory = declared
    bad = directory / "prod" / "agents" / "broken.json"
    bad.write_text("{not json")
    result = cli(config, "check", str(directory))
    assert result.exit_code == 2 and str(bad) in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_live_object_that_breaks_a_rule_fails_the_check(declared, cli):
    config, directory = declared
    with open(config, "a") as file:
        file.write('\n[[rules]]\nname = "impossible"\nkinds = ["agents"]\nexpression = "false"\n')
    result = cli(config, "check", str(directory))
    assert result.exit_code == 1 and "breaks rule impossible" in result.stdout


def test_check_writes_nothing_to_the_record(declared, sandbox, cli, engine):
    from sqlalchemy import text

    config, directory = declared
    sandbox.edit("agents", sandbox.objects("agents")[0]["id"], model="gpt-5-nano")

    def counts():
        with engine.connect() as connection:
            return [connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608 - our names
                    for table in ("versions", "events", "polls", "resources", "alerts", "outbox")]

    before = counts()
    assert cli(config, "check", str(directory)).exit_code == 1
    assert counts() == before


def _declare(directory, agent_id: str, **fields) -> None:
    path = directory / "prod" / "agents" / f"{agent_id}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def test_apply_dir_converges_each_object_that_differs_from_its_file(declared, sandbox, cli, cli_json):
    config, directory = declared
    agent = sandbox.objects("agents")[0]
    _declare(directory, agent["id"], model="gpt-5-mini")
    dry = cli(config, "apply", str(directory), "--by", "ci", "--dry-run")
    assert dry.exit_code == 0 and "dry run, nothing sent" in dry.stdout
    assert sandbox.get("agents", agent["id"])["model"] == agent["model"]
    result = cli(config, "apply", str(directory), "--by", "ci")
    assert result.exit_code == 0, result.output
    assert "applied, recorded as version 2 (was 1)" in result.stdout
    assert sandbox.get("agents", agent["id"])["model"] == "gpt-5-mini"
    assert [(v["origin"], v["actor"]) for v in cli_json(config, "history", agent["id"])][-1] == ("apply", "ci")
    assert cli(config, "check", str(directory)).exit_code == 0
    assert "nothing to apply" in cli(config, "apply", str(directory), "--by", "ci").stdout


def test_apply_dir_creates_nothing_and_says_so(declared, sandbox, cli):
    config, directory = declared
    (directory / "prod" / "agents" / "New Agent.json").write_text(json.dumps({"name": "New Agent", "model": "gpt-5"}))
    result = cli(config, "apply", str(directory), "--by", "ci")
    assert result.exit_code == 1 and "declared but not live; not created" in result.stderr
