"""`/metrics` (Prometheus text) and `/healthz`, both read from the database at each request.

Counters are counts of rows (polls, drift events, delivery attempts), so every process that
shares the database exports the same figures, and a restart never resets them.
`assistant_watcher_poll_duration_seconds` is how long the last poll of a target and kind took.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from watcher.record import overview_orm
from watcher.record.engine import reader
from watcher.times import json_time, utcnow
from watcher.web.call import Call, poll_intervals

PREFIX = "assistant_watcher_"
STALE_AFTER = 3  # intervals without a complete poll before /healthz calls a target and kind stale


class RecordCollector:
    """Collects the watcher's figures from the record when Prometheus scrapes."""

    def __init__(self, web):
        self.web = web

    def describe(self) -> list[Metric]:
        return []  # families are known only when read; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        with Session(reader(self.web.engine)) as session:
            statuses = overview_orm.kind_statuses(session, self.web.config.configured_kinds, count_open=False,
                                              disabled=self.web.config.disabled_targets)
            polls = overview_orm.poll_counts(session)
            drift = overview_orm.drift_counts(session)
            deliveries = overview_orm.deliveries(session)
            breaking = overview_orm.breaking(session)
        yield _counter("polls", "Polls recorded, by outcome.", ["target", "kind", "status"], polls)
        yield _gauge("poll_duration_seconds", "Seconds the last poll of this target and kind took.",
                     ["target", "kind"], [(s.target, s.kind, s.duration) for s in statuses if s.duration is not None])
        yield _gauge("last_poll_worker", "1 for the process (host:pid:random) that did the last poll of this target "
                     "and kind.", ["target", "kind", "worker"],
                     [(s.target, s.kind, s.worker, 1) for s in statuses if s.worker is not None])
        yield _gauge("target_enabled", "1 for a target that is polled, 0 for one configured with enabled = false.",
                     ["target"], sorted({(s.target, int(s.enabled)) for s in statuses}))
        yield _gauge("objects", "Objects tracked (listed and not deleted).", ["target", "kind"],
                     [(s.target, s.kind, s.objects) for s in statuses])
        yield _counter("drift_events", "Drift events recorded.", ["target", "kind", "change", "severity"], drift)
        yield _gauge("last_complete_poll_timestamp_seconds", "When the last complete poll finished (Unix time).",
                     ["target", "kind"], [(s.target, s.kind, s.last_complete_at.timestamp())
                                          for s in statuses if s.last_complete_at is not None])
        yield _gauge("rule_violations", "Objects whose current version breaks the rule ([[rules]]).", ["rule"],
                     [(rule.name, sum(1 for b in breaking if b.rule == rule.name)) for rule in self.web.config.rules])
        yield _gauge("deliveries_pending", "Deliveries waiting to be sent.", ["channel"],
                     [(d.channel, d.pending) for d in deliveries])
        yield _counter("deliveries", "Delivery outcomes: sent, failed (attempts), dead (given up).",
                       ["channel", "result"],
                       [(d.channel, result, value) for d in deliveries
                        for result, value in (("sent", d.sent), ("failed", d.failed_attempts), ("dead", d.dead))])


def _counter(name: str, documentation: str, labels: list[str], rows) -> CounterMetricFamily:
    family = CounterMetricFamily(PREFIX + name, documentation, labels=labels)
    for *values, count in rows:
        family.add_metric([str(v) for v in values], count)
    return family


def _gauge(name: str, documentation: str, labels: list[str], rows) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, documentation, labels=labels)
    for *values, value in rows:
        family.add_metric([str(v) for v in values], value)
    return family


def registry_for(web) -> CollectorRegistry:
    """The figures of the record, and of this process (CPU, memory, GC) under the usual names."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RecordCollector(web))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def metrics(call: Call) -> Response:
    """`GET /metrics`."""
    return Response(generate_latest(call.web.metrics_registry), mimetype=None, content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def healthz(call: Call) -> Response:
    """`GET /healthz`: 200 when every configured target and kind had a complete poll within three of
    its intervals; else 503 naming the stale ones."""
    config = call.config
    intervals = poll_intervals(config)
    with call.reading() as session:
        statuses = overview_orm.kind_statuses(session, config.configured_kinds, count_objects=False, count_open=False)
    found = overview_orm.stale(statuses, intervals, utcnow(), STALE_AFTER)
    if not found:
        checked = sum(1 for s in statuses if s.target in intervals)
        return call.json({"status": "ok", "checked": checked})
    stale = [{"target": row.target, "kind": row.kind, "reason": reason,
              "last_complete_at": json_time(row.last_complete_at)} for row, reason in found]
    names = ", ".join(f"{row.target}/{row.kind}" for row, _reason in found)
    return call.json({"status": "stale", "error": f"stale: {names}", "stale": stale}, status=503)
