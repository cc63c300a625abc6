"""The [http] section: where the web listens and the token that guards it; bad input is one line."""

import pytest

from watcher.config.model import parse_config
from watcher.errors import ConfigError

MINIMAL = '[[targets]]\nname = "prod"\n'


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="config.toml")
    return str(caught.value)


def http(body: str):
    return parse_config(MINIMAL + "[http]\n" + body).http


def test_no_http_section_serves_nothing_from_the_daemon():
    assert parse_config(MINIMAL).http is None


def test_the_default_listen_address_is_loopback():
    section = http("")
    assert (section.host, section.port, section.loopback) == ("127.0.0.1", 8080, True)


@pytest.mark.parametrize("listen, host, port", [
    ("localhost:9000", "localhost", 9000), ("[::1]:8080", "::1", 8080), ("127.0.0.2:0", "127.0.0.2", 0),
])
def test_loopback_addresses_need_no_token(listen, host, port):
    section = http(f'listen = "{listen}"\n')
    assert (section.host, section.port, section.loopback) == (host, port, True)


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:8080", "watcher.example.com:8080"])
def test_a_reachable_address_without_a_token_is_refused_naming_http(listen):
    message = error_of(f'[http]\nlisten = "{listen}"\n' + MINIMAL)
    assert message == (f"config.toml: http: listen '{listen}' is reachable from other machines: set token_file "
                       f"or token_env (a loopback address such as 127.0.0.1 needs none)")


def test_a_reachable_address_with_a_token_is_accepted():
    assert http('listen = "0.0.0.0:8443"\ntoken_file = "http-token"\n').loopback is False


@pytest.mark.parametrize("listen", ["8080", "127.0.0.1", "127.0.0.1:http", "::1:8080", "127.0.0.1:70000"])
def test_a_bad_listen_address_is_named(listen):
    assert error_of(f'[http]\nlisten = "{listen}"\n' + MINIMAL).startswith("config.toml: http.listen: ")


def test_two_token_sources_are_refused():
    assert "set token_env or token_file, not both" in error_of(
        '[http]\ntoken_env = "T"\ntoken_file = "t"\n' + MINIMAL)


def test_the_token_is_read_from_its_variable(monkeypatch):
    monkeypatch.setenv("WATCHER_TEST_TOKEN", "  a-long-enough-token-123  \n")
    assert http('token_env = "WATCHER_TEST_TOKEN"\n').token() == "a-long-enough-token-123"


def test_a_short_token_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv("WATCHER_TEST_TOKEN", "hunter2")
    with pytest.raises(ConfigError) as caught:
        http('token_env = "WATCHER_TEST_TOKEN"\n').token()
    assert str(caught.value) == "http: the token must be at least 16 characters"


def test_a_missing_token_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="http: cannot read secret file .*no-such-token"):
        http(f'token_file = "{tmp_path / "no-such-token"}"\n').token()


def test_no_token_configured_reads_as_none():
    assert http("").token() is None
