"""Listing through the real openai SDK: complete or refused, never silently short."""

import json
import math

import pytest
from config_text import KEY_ENV, target_toml

from watcher.config.model import parse_config
from watcher.errors import KindNotServed, SourceError
from watcher.kinds import registry
from watcher.sandbox.server import Sandbox
from watcher.source.listing import Source


@pytest.fixture
def big_sandbox():
    with Sandbox(assistants=250, agents=3) as sb:
        yield sb


@pytest.fixture(autouse=True)
def sandbox_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-sandbox")


def source_for(url: str, extra: str = "") -> Source:
    config = parse_config(target_toml(url, extra=extra))
    return Source(config.targets[0])


def listed(url: str, kind: str = "assistants", extra: str = "") -> list:
    with source_for(url, extra) as source:
        return list(source.pages(registry.get(kind)))


def listed_ids(sandbox, kind="assistants"):
    return [obj["id"] for page in listed(sandbox.url, kind) for obj in page.objects]


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
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-1234567890")
    with pytest.raises(SourceError) as caught:
        listed(big_sandbox.url)
    message = str(caught.value)
    assert message.startswith("prod/assistants: authentication failed for target prod (HTTP 401)")
    assert "sk-wrong-key" not in message and "1234567890" not in message


def test_retired_kind_raises_kind_not_served(big_sandbox):
    big_sandbox.retire("assistants")
    with pytest.raises(KindNotServed):
        listed_ids(big_sandbox)


def test_unreachable_server_is_one_line_naming_the_url():
    with pytest.raises(SourceError) as caught:
        listed("http://127.0.0.1:9/v1", extra='timeout = "2s"\n')
    assert str(caught.value).startswith("prod/assistants: cannot connect to http://127.0.0.1:9/v1/assistants: ")
    assert "\n" not in str(caught.value)


def test_organization_and_project_are_sent(big_sandbox):
    listed(big_sandbox.url, "agents", extra='organization = "org-acme"\nproject = "proj_watch"\n')
    headers = big_sandbox.request_headers[-1]
    assert headers.get("openai-organization") == "org-acme"
    assert headers.get("openai-project") == "proj_watch"


# --- servers that do not say where a listing ends, or do not end (issue 9) ------------------------------


def pages_of_twenty(total: int, *, has_more: bool = False):
    """A server that serves 20 per page whatever `limit` says and, unless asked, leaves has_more out."""
    from urllib.parse import parse_qs, urlsplit

    ids = [f"asst_{n:04d}" for n in range(total)]
    requests = []

    def answer(path):
        requests.append(path)
        after = parse_qs(urlsplit(path).query).get("after", [None])[0]
        start = ids.index(after) + 1 if after else 0
        page = ids[start:start + 20]
        body = {"object": "list", "data": [{"id": i, "object": "assistant", "model": "m"} for i in page]}
        if has_more:
            body["has_more"] = start + 20 < total
        return 200, json.dumps(body).encode()

    return answer, requests


def test_a_listing_that_never_says_has_more_is_followed_to_an_empty_page(scripted_api):
    answer, requests = pages_of_twenty(130)
    ids = [i for page in listed(scripted_api(answer)) for i in page.ids]
    assert len(ids) == len(set(ids)) == 130
    assert len(requests) == 8  # seven pages of up to 20, then the empty page that proves the end


def test_a_short_page_that_says_has_more_false_ends_the_listing_at_once(scripted_api):
    answer, requests = pages_of_twenty(15, has_more=True)
    assert len([i for page in listed(scripted_api(answer)) for i in page.ids]) == 15
    assert len(requests) == 1


def test_an_answer_larger_than_max_answer_size_fails_naming_the_page(scripted_api):
    huge = json.dumps({"object": "list", "has_more": False,
                       "data": [{"id": f"asst_{n}", "instructions": "x" * 300_000} for n in range(10)]}).encode()
    with pytest.raises(SourceError) as caught:
        listed(scripted_api(lambda _path: (200, huge)), extra='max_answer_size = "1MB"\n')
    assert str(caught.value).startswith("prod/assistants: page 1: the answer is larger than max_answer_size (1.0 MB")


def test_a_server_that_trickles_fails_the_poll_at_its_deadline(scripted_api):
    import time

    body = json.dumps({"object": "list", "has_more": False, "data": [{"id": "asst_1", "x": "y" * 4000}]}).encode()
    url = scripted_api(lambda _path: (200, body), trickle=(16, 0.2))
    source = source_for(url)
    source.deadline, source.poll_timeout = time.monotonic() + 2, 2
    began = time.monotonic()
    with source, pytest.raises(SourceError, match="the poll took longer than its deadline"):
        list(source.pages(registry.get("assistants")))
    assert time.monotonic() - began < 10  # the per-read timeout alone would never fire


@pytest.mark.parametrize("pause", [0.05, 0.9])  # many quick pages, or a page in flight at the deadline
def test_endless_pagination_ends_at_the_deadline_with_its_message(scripted_api, pause):
    import itertools
    import time

    numbers = itertools.count(1)

    def endless(_path):
        time.sleep(pause)
        n = next(numbers)
        return 200, json.dumps({"object": "list", "has_more": True, "data": [{"id": f"asst_{n}"}]}).encode()

    source = source_for(scripted_api(endless), extra='timeout = "30s"\n')
    source.deadline, source.poll_timeout = time.monotonic() + 1.5, 1.5
    with source, pytest.raises(SourceError) as caught:
        list(source.pages(registry.get("assistants")))
    assert "the poll took longer than its deadline (poll_timeout 1.5s)" in str(caught.value)


def test_an_unreachable_server_costs_one_set_of_connection_attempts_per_poll_not_one_per_kind(engine,
                                                                                             monkeypatch):
    import time

    from watcher.poll.run import poll_target

    target = parse_config(target_toml("http://127.0.0.1:9/v1", extra='timeout = "2s"')).targets[0]
    began = time.monotonic()
    outcomes = poll_target(engine, target)
    assert all(o.status == "failed" for o in outcomes) and len(outcomes) == 9
    assert "cannot connect to http://127.0.0.1:9/v1/assistants" in outcomes[0].error
    assert all(o.error.endswith("(not asked again in this poll)") for o in outcomes[1:])
    assert outcomes[1].error.startswith(f"prod/{outcomes[1].kind}: cannot connect to http://127.0.0.1:9: ")
    assert not [o.kind for o in outcomes[1:] if "/assistants" in o.error]  # the agents line names no assistants URL
    assert time.monotonic() - began < 30
