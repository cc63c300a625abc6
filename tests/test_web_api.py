"""The JSON API under /api/v1, through a real HTTP client against a real server on loopback."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from conftest import HTTP_TOKEN, HTTP_TOKEN_ENV, http_request
from sqlalchemy.orm import Session

from watcher.config.model import load_config
from watcher.poll.run import poll_target
from watcher.record.engine import open_engine
from watcher.record.models import Event, Version
from watcher.times import json_time

HTTP_SECTION = f'[http]\nlisten = "127.0.0.1:8080"\ntoken_env = "{HTTP_TOKEN_ENV}"\n'
PUBLIC_SECTION = f'[http]\nlisten = "0.0.0.0:8080"\ntoken_env = "{HTTP_TOKEN_ENV}"\n'
OBJECT_KEYS = ["target", "kind", "object_id", "name", "version", "deleted", "last_change_at"]
# For what the HTTP layer decides (arguments, tokens, headers): the database behind it does not matter.
HTTP_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@pytest.fixture
def config(write_config, sandbox, store_url):
    return write_config(sandbox, store_url, extra=HTTP_SECTION)


@pytest.fixture
def edited(config, cli, sandbox):
    """A baseline, then two out-of-band edits of one assistant, each seen by a snapshot."""
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    victim = sandbox.objects("assistants")[0]
    sandbox.edit("assistants", victim["id"], model="gpt-4.1-nano")
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    sandbox.edit("assistants", victim["id"], instructions=victim["instructions"] + "\nAlways cite policy.")
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    return victim


@pytest.fixture
def base(config, web_server):
    return web_server(config)


def get(url: str, **headers) -> object:
    return http_request("GET", url, headers=headers)


def post_ack(url: str, body, token: str | None = HTTP_TOKEN, scheme: str = "Bearer"):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http_request("POST", url, headers=headers, body=data)


def object_url(base: str, kind: str, object_id: str, tail: str, target: str = "prod") -> str:
    return f"{base}/api/v1/objects/{target}/{kind}/{quote(object_id, safe='/')}/{tail}"


# --- reading: the CLI's shapes -----------------------------------------------------------------


def test_events_are_the_cli_events_json(edited, config, base, cli_json):
    answer = get(f"{base}/api/v1/events")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == cli_json(config, "events")


def test_events_filter_by_kind_severity_and_open(edited, config, base, cli):
    assert [e["change"] for e in get(f"{base}/api/v1/events?kind=assistants&severity=high").json()] == [
        "modified", "modified"]
    assert get(f"{base}/api/v1/events?kind=agents").json() == []
    assert cli(config, "ack", "1", "--by", "alice").exit_code == 0
    assert [e["id"] for e in get(f"{base}/api/v1/events?open=true").json()] == [2]


def test_events_are_paged_with_a_link_to_the_next_page(edited, base):
    first = get(f"{base}/api/v1/events?limit=1")
    assert [e["id"] for e in first.json()] == [1]
    link = re.fullmatch(r'<([^>]+)>; rel="next"', first.headers["Link"])
    second = get(link.group(1))
    assert [e["id"] for e in second.json()] == [2]
    assert second.headers.get("Link") is None

@HTTP_ONLY

def test_bad_arguments_are_a_400_with_one_line(edited, base):
    for query, message in [("limit=0", "limit must be between 1 and 1000"), ("severity=urgent", "severity must be"),
                           ("kind=robots", "unknown kind 'robots'"), ("since=yesterday", "since: cannot read time"),
                           ("after=x", "after must be a whole number"),
                           ("target=nope", "no target named 'nope' (configured: prod)")]:
        answer = get(f"{base}/api/v1/events?{query}")
        assert answer.status == 400, query
        assert message in answer.json()["error"]


def test_objects_are_the_cli_objects_json(edited, config, base, cli_json):
    listed = get(f"{base}/api/v1/objects").json()
    assert listed == cli_json(config, "objects")
    assert len(listed) == 10 and list(listed[0]) == OBJECT_KEYS
    assert [o["kind"] for o in get(f"{base}/api/v1/objects?kind=agents").json()] == ["agents"] * 5


def test_status_is_the_cli_status_json(edited, config, base, cli_json):
    assert get(f"{base}/api/v1/status").json() == cli_json(config, "status")


def test_versions_are_the_cli_history_json(edited, config, base, cli_json):
    answer = get(object_url(base, "assistants", edited["id"], "versions"))
    assert answer.json() == cli_json(config, "history", edited["id"])
    assert [v["origin"] for v in answer.json()] == ["baseline", "poll", "poll"]


def test_one_version_is_its_canonical_body(edited, config, base, cli_json):
    answer = get(object_url(base, "assistants", edited["id"], "versions/2"))
    assert answer.json() == cli_json(config, "show", edited["id"], "--version", "2")
    assert answer.json()["model"] == "gpt-4.1-nano"


def test_diff_is_the_cli_diff_json(edited, config, base, cli_json):
    answer = get(object_url(base, "assistants", edited["id"], "diff?from=1&to=3"))
    assert answer.json() == cli_json(config, "diff", edited["id"], "--from", "1", "--to", "3")

@HTTP_ONLY

def test_an_unknown_object_is_a_404_naming_it(edited, base):
    answer = get(object_url(base, "assistants", "asst_nope", "versions"))
    assert answer.status == 404
    assert answer.json() == {"error": "no recorded assistant 'asst_nope' on target 'prod'"}


def test_object_ids_with_a_slash_are_routed_whole(store_url, write_config, sandbox, web_server):
    """A kind listed under a parent records `parent_id/child_id`: the API takes it as one id."""
    config = write_config(sandbox, store_url, extra=HTTP_SECTION, target_extra='kinds = ["skills", "skill_versions"]')
    engine = open_engine(store_url)
    poll_target(engine, load_config(config).targets[0])
    engine.dispose()
    skill = sandbox.objects("skills")[0]
    child = f"{skill['id']}/1"  # recorded as parent_id/version
    base = web_server(config)
    [version] = get(object_url(base, "skill_versions", child, "versions")).json()
    assert version["number"] == 1
    assert get(object_url(base, "skill_versions", child, "versions/1")).json()["skill_id"] == skill["id"]
    page = http_request("GET", f"{base}/objects/prod/skill_versions/{child}")
    assert page.status == 200 and child in page.text


# --- the version live at T -------------------------------------------------------------------


def _recorded(store_url, object_id):
    """(versions, events) of one object, oldest first, read with the store's own models."""
    from watcher.record.models import Resource

    engine = open_engine(store_url)
    with Session(engine, expire_on_commit=False) as session:
        resource = session.query(Resource).filter_by(remote_id=object_id).one()
        versions = session.query(Version).filter_by(resource_id=resource.id).order_by(Version.number).all()
        events = session.query(Event).filter_by(resource_id=resource.id).order_by(Event.id).all()
    engine.dispose()
    return resource, versions, events


def at(base, object_id, moment, kind="assistants"):
    return get(object_url(base, kind, object_id, "at?time=" + quote(moment)))


def test_at_answers_the_version_live_then(edited, base, store_url):
    _resource, versions, _events = _recorded(store_url, edited["id"])
    answer = at(base, edited["id"], json_time(versions[2].observed_at + timedelta(seconds=5)))
    assert answer.status == 200
    assert answer.json() == {"number": 3, "hash": versions[2].content_hash,
                             "observed_at": json_time(versions[2].observed_at), "origin": "poll", "actor": None,
                             "edit_window": None}


def test_at_inside_an_edit_window_says_so(edited, base, store_url):
    """Assistants have no updated_at: version 2 came in at some time between two polls."""
    _resource, versions, events = _recorded(store_url, edited["id"])
    window_start = events[0].window_start
    # Between version 1's recording (after the window opened) and version 2's: inside the window.
    moment = versions[0].observed_at + (versions[1].observed_at - versions[0].observed_at) / 2
    document = at(base, edited["id"], json_time(moment)).json()
    assert document["number"] == 1
    assert document["edit_window"] == {"from": json_time(window_start), "to": json_time(versions[1].observed_at),
                                       "next_version": 2}


def test_at_a_time_to_the_second_in_which_the_next_version_was_seen_says_either_may_have_been_live(
        edited, base, store_url):
    """A completion's `created_at` is whole seconds: the second version 2 was first seen in may predate the edit."""
    _resource, versions, events = _recorded(store_url, edited["id"])
    second = versions[1].observed_at.replace(microsecond=0)
    if second == versions[1].observed_at:
        pytest.skip("version 2 was seen at a whole second: no part of that second predates it")
    document = at(base, edited["id"], second.isoformat().replace("+00:00", "Z")).json()
    assert document["number"] == 1
    assert document["edit_window"] == {"from": json_time(events[0].window_start),
                                       "to": json_time(versions[1].observed_at), "next_version": 2}


def test_at_before_the_object_was_first_seen_is_a_404_saying_so(edited, base, store_url):
    resource, _versions, _events = _recorded(store_url, edited["id"])
    answer = at(base, edited["id"], "2020-01-01T00:00:00Z")
    assert answer.status == 404
    document = answer.json()
    assert (document["reason"], document["first_seen_at"]) == ("before_first_seen", json_time(resource.first_seen_at))
    assert "was not yet recorded at 2020-01-01T00:00:00Z" in document["error"]


def test_at_while_deleted_is_a_404_saying_when(config, cli, sandbox, base, store_url):
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    victim = sandbox.objects("agents")[0]
    sandbox.remove("agents", victim["id"])
    assert cli(config, "snapshot", "--no-email").exit_code == 0
    _resource, _versions, events = _recorded(store_url, victim["id"])
    answer = at(base, victim["id"], json_time(events[0].detected_at + timedelta(seconds=1)), kind="agents")
    assert answer.status == 404
    assert answer.json()["reason"] == "deleted"
    assert answer.json()["deleted_at"] == json_time(events[0].detected_at)

@HTTP_ONLY

def test_at_reads_an_offset_whose_plus_was_not_escaped(edited, base, store_url):
    _resource, versions, _events = _recorded(store_url, edited["id"])
    local = (versions[2].observed_at + timedelta(seconds=5)).astimezone().isoformat()
    unescaped = get(object_url(base, "assistants", edited["id"], "at?time=" + local.replace("+", "%20")))
    assert unescaped.json()["number"] == at(base, edited["id"], local).json()["number"] == 3

@HTTP_ONLY

def test_at_without_a_time_is_a_400(edited, base):
    answer = get(object_url(base, "assistants", edited["id"], "at"))
    assert answer.status == 400
    assert answer.json()["error"].startswith("time is required")


# --- acknowledging with the token --------------------------------------------------------------

@HTTP_ONLY

def test_ack_without_a_token_is_a_401(edited, base):
    answer = post_ack(f"{base}/api/v1/events/1/ack", {"by": "alice"}, token=None)
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert get(f"{base}/api/v1/events?open=1").json()[0]["id"] == 1

@HTTP_ONLY

def test_ack_with_a_wrong_token_is_a_403(edited, base):
    answer = post_ack(f"{base}/api/v1/events/1/ack", {"by": "alice"}, token="web-token-wrong-0123456789")
    assert answer.status == 403
    assert answer.json() == {"error": "wrong token"}
    assert len(get(f"{base}/api/v1/events?open=1").json()) == 2


def test_ack_with_the_token_acknowledges_and_answers_the_event(edited, config, base, cli_json):
    answer = post_ack(f"{base}/api/v1/events/1/ack", {"by": "alice", "note": "planned model change"})
    assert answer.status == 200
    document = answer.json()
    assert (document["id"], document["acked_by"], document["note"]) == (1, "alice", "planned model change")
    assert cli_json(config, "events")[0]["acked_by"] == "alice"


def test_a_second_ack_is_a_409_keeping_the_first_reviewer(edited, base):
    assert post_ack(f"{base}/api/v1/events/1/ack", {"by": "alice"}).status == 200
    answer = post_ack(f"{base}/api/v1/events/1/ack", {"by": "mallory"})
    assert answer.status == 409
    assert "already acknowledged by alice" in answer.json()["error"]

@HTTP_ONLY

def test_ack_of_an_unknown_event_is_a_404(edited, base):
    assert post_ack(f"{base}/api/v1/events/99/ack", {"by": "alice"}).status == 404


@HTTP_ONLY
@pytest.mark.parametrize("body, message", [
    (b"not json", "the body must be a JSON object"),
    ({"note": "no reviewer"}, '"by" must name who acknowledges'),
    ({"by": "alice", "note": 7}, '"note" must be a string'),
])
def test_ack_with_a_bad_body_is_a_400(edited, base, body, message):
    answer = post_ack(f"{base}/api/v1/events/1/ack", body)
    assert answer.status == 400
    assert message in answer.json()["error"]

@HTTP_ONLY

def test_ack_is_refused_when_no_token_is_configured(write_config, sandbox, store_url, cli, web_server):
    config = write_config(sandbox, store_url)
    cli(config, "snapshot", "--no-email")
    base = web_server(config)
    answer = post_ack(f"{base}/api/v1/events/1/ack", {"by": "alice"})
    assert answer.status == 403
    assert "needs a token" in answer.json()["error"]

@HTTP_ONLY

def test_get_on_ack_is_a_405(edited, base):
    answer = get(f"{base}/api/v1/events/1/ack")
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"


# --- who may read --------------------------------------------------------------------------------

@HTTP_ONLY

def test_off_loopback_reading_needs_the_token(write_config, sandbox, store_url, cli, web_server):
    config = write_config(sandbox, store_url, extra=PUBLIC_SECTION)
    cli(config, "snapshot", "--no-email")
    base = web_server(config)
    refused = get(f"{base}/api/v1/events")
    assert refused.status == 401
    assert refused.headers.get_all("WWW-Authenticate") == ['Basic realm="assistant-watcher"',
                                                           'Bearer realm="assistant-watcher"']
    assert get(f"{base}/api/v1/events", Authorization="Bearer wrong-token-0123456789abc").status == 401
    assert get(f"{base}/api/v1/events", Authorization=f"Bearer {HTTP_TOKEN}").status == 200
    basic = base64.b64encode(f"anyone:{HTTP_TOKEN}".encode()).decode()
    assert get(f"{base}/", Authorization=f"Basic {basic}").status == 200
    assert get(f"{base}/metrics").status == 401
    assert get(f"{base}/healthz").status == 200  # load balancers ask without credentials

@HTTP_ONLY

def test_on_loopback_a_foreign_host_name_is_refused(edited, base):
    """A page that rebinds its own name to 127.0.0.1 must not read the record."""
    answer = get(f"{base}/api/v1/events", Host="attacker.example:8080")
    assert answer.status == 403
    assert "answers only requests for localhost" in answer.json()["error"]
    assert get(f"{base}/api/v1/events", Host="localhost:8080").status == 200

@HTTP_ONLY

def test_every_answer_forbids_scripts_and_framing(edited, base):
    for path in ("/", "/api/v1/events", "/metrics", "/no/such/page"):
        headers = get(base + path).headers
        assert "default-src 'none'" in headers["Content-Security-Policy"], path
        assert "script-src" not in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"

@HTTP_ONLY

def test_an_unknown_api_path_is_a_json_404(edited, base):
    answer = get(f"{base}/api/v1/nothing")
    assert answer.status == 404
    assert answer.json()["error"].startswith("no such page")


def test_a_database_error_is_a_503_with_one_line(edited, base, store_url):
    from sqlalchemy import create_engine, text

    raw = create_engine(store_url)
    drop = "DROP TABLE events CASCADE" if raw.dialect.name == "postgresql" else "DROP TABLE events"
    with raw.begin() as connection:
        connection.execute(text(drop))
    raw.dispose()
    answer = get(f"{base}/api/v1/events")
    assert answer.status == 503
    error = answer.json()["error"]
    assert error.startswith("database error: ") and "\n" not in error and "Traceback" not in error


def test_reading_never_waits_behind_a_poll_writing_to_sqlite(sandbox, write_config, tmp_path, cli, web_server):
    """A page reads beside a writer holding SQLite's write lock (a poll recording) instead of queueing."""
    import sqlite3

    database = tmp_path / "watcher.db"
    config = write_config(sandbox, f"sqlite:///{database}", extra=HTTP_SECTION)
    cli(config, "snapshot", "--no-email")
    base = web_server(config)
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # what a poll's recording transaction holds
    try:
        answer = get(f"{base}/api/v1/status")  # a write lock here would wait out the 30 s busy timeout, then fail
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert answer.status == 200
    assert {p["status"] for p in answer.json()["polls"]} == {"complete"}


@HTTP_ONLY
@pytest.mark.parametrize("off_site", ["//attacker.example/phish", "/%09/attacker.example", "/%5C/attacker.example",
                                      "/%0D%0ALocation:%20//attacker.example", "https://attacker.example/"])
def test_the_page_form_ack_goes_back_only_to_this_server(edited, base, off_site):
    form = f"by=alice&token={HTTP_TOKEN}&next={off_site}".encode()
    answer = http_request("POST", f"{base}/events/1/ack", body=form,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 303
    assert answer.headers["Location"] in ("/events", f"{base}/events")


@HTTP_ONLY
def test_the_page_form_ack_goes_back_to_the_filtered_list_it_came_from(edited, base):
    form = f"by=alice&token={HTTP_TOKEN}&next=/events%3Fopen%3D1%26kind%3Dagents".encode()
    answer = http_request("POST", f"{base}/events/1/ack", body=form,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 303
    assert answer.headers["Location"].endswith("/events?open=1&kind=agents")


@HTTP_ONLY
def test_the_page_form_ack_without_the_token_is_a_401_page(edited, base):
    answer = http_request("POST", f"{base}/events/1/ack", body=b"by=alice&token=",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 401
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "acknowledging needs the token" in answer.text


@HTTP_ONLY
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "TRACE"])
@pytest.mark.parametrize("path", ["/events", "/api/v1/status", "/metrics"])
def test_a_read_only_page_refuses_any_method_but_get_and_head(edited, base, method, path):
    answer = http_request(method, f"{base}{path}", body=b"")
    assert answer.status == 405 and answer.headers["Allow"] == "GET, HEAD"
