"""The configuration file: every bad input exits 2 with one line naming the key."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from watcher.config.model import Config, load_config, parse_config
from watcher.errors import ConfigError
from watcher.times import parse_duration

EXAMPLE = Path(__file__).parent.parent / "config.example.toml"
MINIMAL = '[[targets]]\nname = "prod"\n'
AZURE = ('[[targets]]\nname = "az"\nprovider = "azure"\nazure_endpoint = "https://contoso.openai.azure.com"\n'
         'api_version = "2025-04-01-preview"\n')


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="config.toml")
    return str(caught.value)


def test_example_config_loads():
    config = load_config(EXAMPLE)
    assert config.targets[0].name == "prod"
    assert config.schedule.interval == 300
    assert config.alerts.routes[0].to == ["billing-leads@example.com"]


def _schema_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        keys.add(prefix + name)
        annotation = field.annotation
        for candidate in getattr(annotation, "__args__", ()) + (annotation,):
            inner = getattr(candidate, "__args__", (candidate,))[0] if getattr(candidate, "__origin__", None) is list else candidate
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                keys |= _schema_keys(inner, prefix + name + ".")
    return keys


def _documented_keys(text: str) -> set[str]:
    """Keys set or shown commented-out in the example, qualified by their [section]."""
    keys, section = set(), ""
    for line in text.splitlines():
        header = re.match(r"^\[\[?([a-z_.]+)\]\]?", line)
        if header:
            section = header.group(1) + "."
            keys.add(header.group(1))
            continue
        setting = re.match(r"^#?\s*([a-z_]+)\s*=\s*(.*)$", line)
        if setting:
            keys.add(section + setting.group(1))
            for inline in re.findall(r"([a-z_]+)\s*=", setting.group(2)):
                keys.add(f"{section}{setting.group(1)}.{inline}")
    return keys


def test_example_config_documents_every_key_of_the_schema():
    missing = _schema_keys(Config) - _documented_keys(EXAMPLE.read_text())
    assert not missing, f"config.example.toml does not document: {sorted(missing)}"


def _as_target_keys(keys: set[str]) -> set[str]:
    """[target_defaults] takes the keys of [[targets]]."""
    return {re.sub(r"^target_defaults\.", "targets.", key) for key in keys if key != "target_defaults"}


def test_example_config_documents_no_key_the_schema_lacks():
    unknown = _as_target_keys(_documented_keys(EXAMPLE.read_text())) - _schema_keys(Config)
    assert not unknown, f"config.example.toml documents keys the schema lacks: {sorted(unknown)}"


def test_defaults_need_only_a_target_and_watch_every_project_key_kind():
    config = parse_config(MINIMAL)
    assert config.targets[0].kinds == ["assistants", "agents", "skills", "skill_versions", "webhook_endpoints",
                                       "vector_stores", "agent_environments", "agent_automations", "vaults"]
    assert config.database.url == "sqlite:///watcher.db"


@pytest.mark.parametrize("text, expected", [
    ("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("2d", 172800),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


def test_unknown_key_is_named():
    assert error_of(MINIMAL + 'colour = "blue"\n') == "config.toml: targets[0] (prod).colour: unknown key"


def test_unknown_section_is_named_with_the_one_meant():
    assert error_of(MINIMAL + "[smpt]\nhost = 'x'\n") == "config.toml: smpt: unknown key (did you mean 'smtp'?)"


def test_a_misspelt_key_gets_a_did_you_mean():
    assert error_of('[schedule]\nintervall = "5m"\n' + MINIMAL) == \
        "config.toml: schedule.intervall: unknown key (did you mean 'interval'?)"


def test_a_wrong_type_is_said_in_the_words_of_toml_not_pydantic():
    message = error_of(MINIMAL + 'kinds = "agents"\n')
    assert message == 'config.toml: targets[0] (prod).kinds: expected a list, such as ["a", "b"] (got "agents")'
    assert "Input should" not in error_of('[alerts]\ndigest_threshold = "ten"\n' + MINIMAL)


def test_wrong_type_is_named():
    message = error_of('[smtp]\nport = "twenty-five"\n' + MINIMAL)
    assert message.startswith("config.toml: smtp.port: ")
    assert "twenty-five" in message


def test_bad_duration_is_named():
    message = error_of('[schedule]\ninterval = "5 minutes"\n' + MINIMAL)
    assert message.startswith("config.toml: schedule.interval: bad duration '5 minutes'")


def test_zero_interval_is_refused():
    assert "greater than zero" in error_of(MINIMAL + 'interval = "0s"\n')


def test_bad_email_address_is_named():
    message = error_of('[alerts]\nwatchlist = ["ops-at-example.com"]\n' + MINIMAL)
    assert message == "config.toml: alerts.watchlist[0]: bad email address 'ops-at-example.com'"


def test_unknown_kind_is_named_with_the_known_ones():
    message = error_of(MINIMAL + 'kinds = ["assistants", "threads"]\n')
    assert message.startswith("config.toml: targets[0] (prod).kinds[1]: 'threads' is not a kind; known kinds: "
                              "assistants, agents, skills")


def test_a_misspelt_kind_gets_a_did_you_mean():
    assert "(did you mean 'webhook_endpoints'?)" in error_of(MINIMAL + 'kinds = ["webhook_endpoint"]\n')


def test_an_interval_below_one_second_is_refused_by_name():
    assert error_of('[schedule]\ninterval = "1ms"\n' + MINIMAL) == \
        "config.toml: schedule.interval: interval '1ms' is below the floor of 1s (did you mean '1m'?)"
    assert "below the floor of 1s" in error_of(MINIMAL + 'interval = "500ms"\n')
    assert parse_config(MINIMAL + 'interval = "1s"\n').targets[0].interval == 1


def test_poll_timeout_and_max_answer_size_have_sane_defaults():
    config = parse_config(MINIMAL)
    assert config.schedule.poll_timeout == 600
    assert config.targets[0].max_answer_size == 64_000_000
    assert parse_config(MINIMAL + 'max_answer_size = "512KiB"\n').targets[0].max_answer_size == 512 * 1024


def test_an_azure_target_defaults_to_the_kinds_azure_serves():
    target = parse_config(AZURE).targets[0]
    assert (target.kinds, target.base_url) == (["assistants"], "https://contoso.openai.azure.com/openai")


@pytest.mark.parametrize("extra, expected", [
    ('', 'provider = "azure" needs api_version'),
    ('api_version = "2025-04-01-preview"\nbase_url = "https://x.example/v1"\n',
     "an Azure target takes azure_endpoint, not base_url"),
    ('api_version = "2025-04-01-preview"\nkinds = ["agents"]\n', "kinds: Azure OpenAI does not serve agents"),
])
def test_azure_config_errors_name_the_key(extra, expected):
    text = '[[targets]]\nname = "az"\nprovider = "azure"\nazure_endpoint = "https://contoso.openai.azure.com"\n'
    assert expected in error_of(text + extra)


def test_a_kind_whose_key_is_missing_is_a_config_error_naming_it():
    assert error_of('[[targets]]\nname = "org"\nadmin_key_env = "ADMIN"\nkinds = ["agents"]\n') == \
        "config.toml: targets[0] (org): kinds: agents needs a project key (api_key_env or api_key_file)"


def test_bad_ignore_rule_is_named():
    assert error_of(MINIMAL + 'ignore = ["tools[x"]\n').startswith("config.toml: targets[0] (prod).ignore[0]: ignore rule 'tools[x'")


def test_duplicate_target_names_are_refused():
    assert "used twice" in error_of(MINIMAL + MINIMAL)


def test_unreadable_toml_is_one_line():
    message = error_of("[database\nurl = 1")
    assert message.startswith("config.toml: not valid TOML:")
    assert "\n" not in message


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_a_relative_templates_dir_is_taken_from_the_config_files_folder(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text(MINIMAL + '[alerts]\ntemplates_dir = "mail"\n')
    monkeypatch.chdir("/")
    assert load_config(tmp_path / "config.toml").alerts.templates_dir == str(tmp_path / "mail")
    (tmp_path / "config.toml").write_text(MINIMAL + '[alerts]\ntemplates_dir = "/srv/mail"\n')
    assert load_config(tmp_path / "config.toml").alerts.templates_dir == "/srv/mail"


def test_a_relative_sqlite_file_is_taken_from_the_config_files_folder(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text(MINIMAL)
    monkeypatch.chdir("/")
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert load_config(tmp_path / "config.toml").database.url == f"sqlite:///{tmp_path}/watcher.db"
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:////srv/w.db"\n' + MINIMAL)
    assert load_config(tmp_path / "config.toml").database.url == "sqlite:////srv/w.db"


def test_under_systemd_a_relative_sqlite_file_goes_in_the_state_directory(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text(MINIMAL)  # no [database]: the default sqlite:///watcher.db
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/assistant-watcher")
    assert load_config(tmp_path / "config.toml").database.url == "sqlite:////var/lib/assistant-watcher/watcher.db"


def test_a_database_file_that_cannot_be_created_is_one_line_exit_2(tmp_path, cli):
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:////proc/watcher.db"\n' + MINIMAL)
    result = cli(tmp_path / "config.toml", "events")
    assert result.exit_code == 2
    assert result.stderr.startswith("config error: database.url: cannot open /proc/watcher.db: ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("url", "expected"), [
    ("mysql://x@db/watcher", "database.url: 'mysql' databases are not supported"),
    ("sqlite:///", "database.url: an SQLite URL needs a file"),
    ("sqlite://", "database.url: an SQLite URL needs a file"),
    ("not a url", "database.url: not a database URL"),
])
def test_unsupported_database_urls_are_named(url, expected):
    assert error_of(f'[database]\nurl = "{url}"\n' + MINIMAL).startswith(f"config.toml: {expected}")


def test_a_database_password_never_reaches_the_error():
    message = error_of('[database]\nurl = "mysql://u:hunter2@db/w"\n' + MINIMAL)
    assert "hunter2" not in message


def test_api_key_from_environment(monkeypatch):
    monkeypatch.setenv("PROD_KEY", "sk-from-env")
    config = parse_config(MINIMAL + 'api_key_env = "PROD_KEY"\n')
    assert config.targets[0].api_key() == "sk-from-env"


def test_api_key_file_bare_name_resolves_in_credentials_directory(tmp_path, monkeypatch):
    (tmp_path / "openai-api-key").write_text("sk-from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    config = parse_config(MINIMAL + 'api_key_file = "openai-api-key"\n')
    assert config.targets[0].api_key() == "sk-from-credential"


def test_a_secret_file_that_is_not_text_is_named_but_not_shown(tmp_path, monkeypatch):
    (tmp_path / "openai-api-key").write_bytes(b"sk-\xff\xfe-secret")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    config = parse_config(MINIMAL + 'api_key_file = "openai-api-key"\n')
    with pytest.raises(ConfigError, match="secret file .*openai-api-key is not UTF-8 text") as caught:
        config.targets[0].api_key()
    assert "-secret" not in str(caught.value)


def test_missing_api_key_names_the_variable_not_a_value(monkeypatch):
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    config = parse_config(MINIMAL + 'api_key_env = "NOT_SET_KEY"\n')
    with pytest.raises(ConfigError, match="environment variable NOT_SET_KEY is not set"):
        config.targets[0].api_key()


def test_secrets_are_not_part_of_the_config_object(monkeypatch):
    monkeypatch.setenv("PROD_KEY", "sk-secret-value")
    config = parse_config(MINIMAL + 'api_key_env = "PROD_KEY"\n')
    assert "sk-secret-value" not in repr(config) and "sk-secret-value" not in config.model_dump_json()


BAD_CONFIGS = {
    "unknown key": MINIMAL + "colour = 1\n",
    "wrong type": "[alerts]\ndigest_threshold = 'ten'\n" + MINIMAL,
    "bad duration": MINIMAL + 'interval = "soon"\n',
    "bad address": '[alerts]\nwatchlist = ["nobody"]\n' + MINIMAL,
    "unknown kind": MINIMAL + 'kinds = ["files"]\n',
    "unreadable toml": "[[targets]\n",
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_with_one_line_and_no_traceback(tmp_path, case):
    path = tmp_path / "config.toml"
    path.write_text(BAD_CONFIGS[case])
    result = subprocess.run([sys.executable, "-m", "watcher", "--config", str(path), "snapshot"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"config error: {path}: ")
    assert "Traceback" not in result.stderr


def test_missing_config_file_exits_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "watcher", "--config", str(tmp_path / "none.toml"), "events"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"config error: {tmp_path / 'none.toml'}: config file not found (use --config PATH or $ASSISTANT_WATCHER_CONFIG)"


def test_config_path_from_environment(tmp_path, monkeypatch, cli):
    path = tmp_path / "elsewhere.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/w.db"\n' + MINIMAL)
    monkeypatch.setenv("ASSISTANT_WATCHER_CONFIG", str(path))
    result = cli(None, "events")
    assert result.exit_code == 0
    assert result.stdout.strip() == "no events"


def test_a_relative_secret_file_is_read_beside_the_config_file_not_in_the_current_directory(tmp_path,
                                                                                           monkeypatch):
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "openai-api-key").write_text("sk-from-beside-the-config\n")
    (folder / "config.toml").write_text('[[targets]]\nname = "prod"\napi_key_file = "openai-api-key"\n')
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.chdir(tmp_path)  # elsewhere
    assert load_config(folder / "config.toml").targets[0].api_key() == "sk-from-beside-the-config"


def test_a_watchlist_without_smtp_is_a_config_error_not_silently_dropped_mail():
    message = error_of('[alerts]\nwatchlist = ["ops@example.com"]\n' + MINIMAL)
    assert message.startswith("config.toml: [alerts] watchlist and routes' `to` are email: add an [smtp] section")


def test_a_target_name_with_a_space_says_which_characters_a_name_may_use():
    message = error_of('[[targets]]\nname = "prod east"\n')
    assert message == ("config.toml: targets[0] (prod east).name: use only letters, digits, '_', '.' and '-' "
                       "(got 'prod east')")


# --- many targets from one place (issue 11 item 3) ---

DEFAULTS = ('[target_defaults]\nbase_url = "https://llm.example.com/v1"\ninterval = "2m"\n'
            'organization = "org-shared"\n\n')


def test_every_target_inherits_the_target_defaults():
    config = parse_config(DEFAULTS + '[[targets]]\nname = "a"\nproject = "proj_a"\n\n'
                                     '[[targets]]\nname = "b"\nproject = "proj_b"\n')
    assert [(t.base_url, t.interval, t.organization) for t in config.targets] == \
        [("https://llm.example.com/v1", 120.0, "org-shared")] * 2
    assert [t.project for t in config.targets] == ["proj_a", "proj_b"]


def test_a_target_key_wins_over_the_target_defaults():
    config = parse_config(DEFAULTS + '[[targets]]\nname = "a"\ninterval = "10m"\n')
    assert config.targets[0].interval == 600.0
    assert config.targets[0].organization == "org-shared"


def test_a_bad_value_in_target_defaults_is_named_there():
    assert error_of('[target_defaults]\ninterval = "10ms"\n\n[[targets]]\nname = "a"\n') == \
        "config.toml: target_defaults.interval: interval '10ms' is below the floor of 1s (did you mean '10m'?)"


def test_an_unknown_key_in_target_defaults_is_named_there():
    assert error_of('[target_defaults]\nintervl = "1m"\n\n[[targets]]\nname = "a"\n') == \
        "config.toml: target_defaults.intervl: unknown key (did you mean 'interval'?)"


def test_target_defaults_cannot_name_a_target():
    assert error_of('[target_defaults]\nname = "x"\n\n[[targets]]\nname = "a"\n') == \
        "config.toml: target_defaults.name: every target names itself"


def test_a_disabled_target_is_configured_but_not_enabled():
    config = parse_config('[[targets]]\nname = "a"\nenabled = false\n\n[[targets]]\nname = "b"\n')
    assert [t.name for t in config.targets] == ["a", "b"]
    assert [t.name for t in config.enabled_targets] == ["b"]


def test_too_few_database_connections_for_the_concurrent_polls_is_named():
    text = '[database]\nmax_connections = 6\n\n[schedule]\nmax_concurrent_polls = 4\n\n' + MINIMAL
    assert error_of(text) == ("config.toml: database.max_connections: 6 is too few for schedule.max_concurrent_polls"
                              " = 4 (each poll holds two): at least 10")


def test_database_connections_default_to_two_per_concurrent_poll_plus_four():
    assert parse_config('[schedule]\nmax_concurrent_polls = 3\n\n' + MINIMAL).max_connections == 10
