"""Which version was live at a time: a time given to the second stands for that whole second."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from watcher.record.rows import asked_span, live_during

SECOND = datetime(2026, 11, 30, 16, 40, 27, tzinfo=UTC)


def version(number: int, observed: datetime, updated: datetime | None = None):
    return SimpleNamespace(number=number, observed_at=observed, remote_updated_at=updated)


def test_a_time_to_the_second_stands_for_the_whole_second():
    assert asked_span(SECOND) == (SECOND, SECOND + timedelta(microseconds=999_999))


def test_a_time_to_the_microsecond_stands_for_itself():
    moment = SECOND + timedelta(microseconds=1)
    assert asked_span(moment) == (moment, moment)


def test_a_next_version_seen_later_in_the_asked_second_makes_the_answer_uncertain():
    """The poll before the edit started at :22.1, the edit was seen at :27.203: a completion stamped :27 may be either."""
    live, following = version(1, SECOND - timedelta(seconds=60)), version(2, SECOND + timedelta(milliseconds=203))
    window_start = SECOND - timedelta(seconds=4, milliseconds=900)
    _start, end = asked_span(SECOND)
    answer = live_during(live, following, window_start, end)
    assert (answer.version.number, answer.uncertain_since, answer.uncertain_until) == (
        1, window_start, following.observed_at)


def test_an_edit_window_opening_after_the_asked_second_leaves_the_answer_certain():
    live, following = version(1, SECOND - timedelta(seconds=60)), version(2, SECOND + timedelta(seconds=9))
    _start, end = asked_span(SECOND)
    answer = live_during(live, following, SECOND + timedelta(seconds=3), end)
    assert (answer.version.number, answer.uncertain_since) == (1, None)


def test_a_known_edit_time_inside_the_asked_second_makes_the_answer_uncertain_at_that_time():
    edited = SECOND + timedelta(milliseconds=400)
    live, following = version(1, SECOND - timedelta(seconds=60)), version(2, SECOND + timedelta(seconds=5), edited)
    _start, end = asked_span(SECOND)
    answer = live_during(live, following, None, end)
    assert (answer.version.number, answer.uncertain_since, answer.uncertain_until) == (1, edited, edited)


def test_a_known_edit_time_after_an_exact_moment_leaves_the_answer_certain():
    edited = SECOND + timedelta(milliseconds=400)
    live, following = version(1, SECOND - timedelta(seconds=60)), version(2, SECOND + timedelta(seconds=5), edited)
    moment = SECOND + timedelta(milliseconds=100)
    answer = live_during(live, following, None, asked_span(moment)[1])
    assert (answer.version.number, answer.uncertain_since) == (1, None)
