"""Listing through the real openai SDK: complete or refused, never silently short."""

import math

import openai
import pytest

from watcher.config import parse_config
from watcher.errors import KindNotServed, SourceError
from watcher.sandbox import Sandbox
from watcher.source import list_pages, make_client


@pytest.fixture
def big_sandbox():
    with Sandbox(assistants=250, agents=3) as sb:
        yield sb


def client_for(sandbox, *, extra: str = "") -> openai.OpenAI:
    config = parse_config(f'[[targets]]\nname = "prod"\nbase_url = "{sandbox.url}"\napi_key_env = "SB_KEY"\n{extra}')
    import os

    os.environ["SB_KEY"] = sandbox.api_key
    return make_client(config.targets[0])


def listed_ids(sandbox, kind="assistants"):
    return [obj["id"] for page in list_pages(client_for(sandbox), "prod", kind) for obj in page.objects]


def test_listing_yields_every_object_once(big_sandbox):
    ids = listed_ids(big_sandbox)
    assert ids == [o["id"] for o in big_sandbox.objects("assistants")]


def test_listing_takes_ceil_n_over_100_requests(big_sandbox):
    listed_ids(big_sandbox)
    assert big_sandbox.count_requests("GET", "/v1/assistants") == math.ceil(250 / 100)


def test_listing_makes_no_per_object_requests(big_sandbox):
    listed_ids(big_sandbox)
    assert all(path.startswith("/v1/assistants?") for _, path in big_sandbox.requests)


def test_agents_are_listed_too(big_sandbox):
    assert listed_ids(big_sandbox, "agents") == [o["id"] for o in big_sandbox.objects("agents")]


def test_full_last_page_claiming_no_more_is_followed_by_one_more_request():
    with Sandbox(assistants=250, agents=0) as sandbox:
        sandbox.set_quirk("full_page_has_more_false")
        ids = listed_ids(sandbox)
    assert len(ids) == 250 and len(set(ids)) == 250


def test_repeated_id_fails_the_listing_as_incomplete(big_sandbox):
    big_sandbox.set_quirk("repeat_id")
    with pytest.raises(SourceError, match="listing incomplete: page 2 repeats id"):
        listed_ids(big_sandbox)


def test_cursor_that_does_not_advance_fails_the_listing(big_sandbox):
    big_sandbox.set_quirk("stuck_cursor")
    with pytest.raises(SourceError, match="listing incomplete"):
        listed_ids(big_sandbox)


def test_server_error_names_target_kind_status_and_message(big_sandbox):
    big_sandbox.fail_next(3, status=503, message="upstream overloaded")
    with pytest.raises(SourceError) as caught:
        listed_ids(big_sandbox)
    assert str(caught.value) == "prod/assistants: HTTP 503: upstream overloaded"
    assert caught.value.status == 503


def test_transient_errors_are_retried_by_the_sdk(big_sandbox):
    big_sandbox.fail_next(2, status=500)
    assert len(listed_ids(big_sandbox)) == 250


def test_bad_key_says_authentication_failed_without_the_key(big_sandbox, monkeypatch):
    config = parse_config(f'[[targets]]\nname = "prod"\nbase_url = "{big_sandbox.url}"\napi_key_env = "WRONG"\n')
    monkeypatch.setenv("WRONG", "sk-wrong-key-1234567890")
    with pytest.raises(SourceError) as caught:
        list(list_pages(make_client(config.targets[0]), "prod", "assistants"))
    message = str(caught.value)
    assert message.startswith("prod/assistants: authentication failed for target prod (HTTP 401)")
    assert "sk-wrong-key" not in message and "1234567890" not in message


def test_retired_kind_raises_kind_not_served(big_sandbox):
    big_sandbox.retire("assistants")
    with pytest.raises(KindNotServed):
        listed_ids(big_sandbox)


def test_unreachable_server_is_one_line(monkeypatch):
    config = parse_config('[[targets]]\nname = "prod"\nbase_url = "http://127.0.0.1:9/v1"\napi_key_env = "K"\n'
                          'timeout = "2s"\n')
    monkeypatch.setenv("K", "sk-x")
    with pytest.raises(SourceError, match="^prod/assistants: cannot connect"):
        list(list_pages(make_client(config.targets[0]), "prod", "assistants"))


def test_organization_and_project_are_sent(big_sandbox):
    client = client_for(big_sandbox, extra='organization = "org-acme"\nproject = "proj_watch"\n')
    list(list_pages(client, "prod", "agents"))
    headers = big_sandbox.request_headers[-1]
    assert headers.get("openai-organization") == "org-acme"
    assert headers.get("openai-project") == "proj_watch"
