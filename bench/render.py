"""Diff + render time and payload size for the worst cases an alert meets.

1. 256k-character instructions with 2% of their lines edited (target: < 0.5 s, < 256 KiB), then the
   same alert rendered for every channel: email, webhook, Slack, Teams (each within its limits).
2. A digest of 500 events from one poll.
3. 230k and 461k characters of short lines with every other line edited: `diff.compare` now,
   beside difflib's unbounded line matching (what it was before the budget) on the same
   input, run in a child process capped at --old-cap seconds (target: well under 1 s).
4. The line diff's budget at its worst: the largest input plain difflib still gets, and
   scattered edits of repeated lines that exhaust it (the diff is then cut, and says so).

Run: .venv/bin/python bench/render.py [--old-cap SECONDS] [--skip-old]
"""

from __future__ import annotations

import argparse
import difflib
import json
import multiprocessing
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from watcher.alerts import render, templating  # noqa: E402
from watcher.alerts.channels import dispatch as channels  # noqa: E402
from watcher.alerts.channels import email as email_channel  # noqa: E402
from watcher.alerts.channels import slack, teams, webhook
from watcher.compare import diff, textdiff  # noqa: E402
from watcher.record.drift import DriftEvent  # noqa: E402

TARGET_SECONDS = 0.5
TARGET_BYTES = 256 * 1024
SENDER = "Assistant Watcher <watcher@example.com>"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def long_instructions(rng: random.Random, chars: int = 256_000) -> str:
    """Realistic prose lines of 40 to 160 characters, `chars` in all."""
    words = ("customer", "refund", "invoice", "policy", "escalate", "ticket", "answer", "tone", "never", "always",
             "verify", "account", "the", "a", "with", "before", "after", "tool", "call", "ask", "one", "question")
    lines, size = [], 0
    while size < chars:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(6, 26))).capitalize() + "."
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)[:chars]


def edit_lines(text: str, share: float, rng: random.Random) -> str:
    lines = text.split("\n")
    for index in rng.sample(range(len(lines)), max(1, int(len(lines) * share))):
        lines[index] = lines[index].replace("customer", "client") + " (edited)"
    return "\n".join(lines)


def event(number: int, old: dict, new: dict, name: str) -> DriftEvent:
    changes = diff.compare(old, new)
    return DriftEvent(event_id=number, target="prod", kind="assistants", object_id=f"asst_{number:024d}", name=name,
                      change="modified", from_version=3, to_version=4, paths=diff.changed_paths(changes),
                      changes=changes, detected_at=NOW, window_start=NOW - timedelta(minutes=5),
                      remote_updated_at=None, old_body=old, new_body=new)


def email_bytes(email: templating.RenderedEmail) -> int:
    message = email_channel.build_message(email, ["ops@example.com", "billing-leads@example.com"], SENDER, NOW,
                                          "<1.2.3@example.com>")
    return len(email_channel.as_bytes(message))


# Each channel's limit on one payload: what its receiver takes (Slack: no byte limit is documented for
# incoming webhooks, 50 blocks of at most 3000 characters are; 16 KiB is our own bound).
CHANNEL_LIMITS = {"email": TARGET_BYTES, "webhook": 256 * 1024, "slack": 16 * 1024, "teams": 28 * 1000}


def channel_payloads(drift: DriftEvent) -> dict[str, tuple[float, int]]:
    """Render time (best of 5) and payload bytes of one alert on every channel."""
    alert = channels.Alert(1, "event", render.event_subject(drift, drift.severity), drift.severity, drift.target,
                           drift.kind, NOW, (drift,))
    makers = {
        "email": lambda: email_bytes(render.render_event(drift)),
        "webhook": lambda: len(webhook.body(alert.document())),
        "slack": lambda: len(json.dumps(slack.message(alert), ensure_ascii=False).encode("utf-8")),
        "teams": lambda: len(teams.payload_bytes(alert)),
    }
    figures = {}
    for name, make in makers.items():
        best, size = float("inf"), 0
        for _ in range(5):
            started = time.perf_counter()
            size = make()
            best = min(best, time.perf_counter() - started)
        figures[name] = (best, size)
    return figures


def parts(email: templating.RenderedEmail) -> str:
    return f"text {len(email.text) / 1024:.1f} KiB, html {len(email.html) / 1024:.1f} KiB"


def bench_long_instructions() -> bool:
    rng = random.Random(7)
    before = long_instructions(rng)
    after = edit_lines(before, 0.02, rng)
    old = {"id": "asst_1", "model": "gpt-4o", "name": "Billing Bot", "instructions": before}
    new = {**old, "instructions": after}
    started = time.perf_counter()
    drift = event(1, old, new, "Billing Bot")
    diffed = time.perf_counter()
    email = render.render_event(drift)
    rendered = time.perf_counter()
    size = email_bytes(email)
    total = rendered - started
    lines = len(before.split("\n"))
    ok = total < TARGET_SECONDS and size < TARGET_BYTES
    print(f"256k instructions ({len(before):,} characters, {lines:,} lines, 2% edited):")
    print(f"  diff {(diffed - started) * 1000:.0f} ms + render {(rendered - diffed) * 1000:.0f} ms "
          f"= {total * 1000:.0f} ms (target < {TARGET_SECONDS * 1000:.0f} ms)")
    print(f"  email {size / 1024:.1f} KiB ({parts(email)}; target < {TARGET_BYTES // 1024} KiB)  "
          f"{'OK' if ok else 'OVER TARGET'}")
    diff_lines = sum(len(c.text_diff) for c in drift.changes)
    cut = sum(int(n) for n in re.findall(r"… (\d+) more lines", email.text))
    print(f"  {diff_lines - cut} of {diff_lines} diff lines shown" + (", the rest behind `assistant-watcher diff`"
                                                                     if cut else ""))
    print("  per channel (render, best of 5; payload bytes; limit):")
    for name, (seconds, size) in channel_payloads(drift).items():
        within = size <= CHANNEL_LIMITS[name]
        ok = ok and within
        print(f"    {name:8} {seconds * 1000:6.1f} ms  {size / 1024:7.1f} KiB  (limit {CHANNEL_LIMITS[name] / 1024:.0f} KiB)"
              f"  {'OK' if within else 'OVER LIMIT'}")
    return ok


def bench_digest(count: int = 500) -> None:
    rng = random.Random(11)
    events = []
    started = time.perf_counter()
    for number in range(1, count + 1):
        old = {"id": f"asst_{number}", "model": "gpt-4o", "name": f"Bot {number}",
               "instructions": f"Help customers of product {number}.\nBe brief.",
               "metadata": {"owner": "ops", "hwm": str(rng.randint(1, 9999))}}
        new = {**old, "model": rng.choice(("gpt-4o", "gpt-4.1")), "metadata": {"owner": rng.choice(("ops", "sre"))},
               "instructions": old["instructions"] + rng.choice(("", "\nNever guess."))}
        events.append(event(number, old, new, f"Bot {number}"))
    diffed = time.perf_counter()
    email = render.render_digest(events)
    rendered = time.perf_counter()
    size = email_bytes(email)
    print(f"digest of {count} events:")
    print(f"  diff {(diffed - started) * 1000:.0f} ms + render {(rendered - diffed) * 1000:.0f} ms "
          f"= {(rendered - started) * 1000:.0f} ms")
    listed = count - int(m.group(1)) if (m := re.search(r"… (\d+) more events", email.text)) else count
    print(f"  email {size / 1024:.1f} KiB ({parts(email)}); {listed} events listed, the rest behind "
          f"`assistant-watcher events`")


def short_lines(chars: int) -> list[str]:
    """`line 0`, `line 1`, …: the shape that made difflib quadratic (many short unique lines)."""
    lines, size = [], 0
    while size < chars:
        lines.append(f"line {len(lines)}")
        size += len(lines[-1]) + 1
    return lines


def every_other_line_edited(lines: list[str]) -> tuple[str, str]:
    return "\n".join(lines), "\n".join(line + " (edited)" if n % 2 else line for n, line in enumerate(lines))


def _old_line_diff(chars: int, results) -> None:
    """What `diff.text_diff` did before its budget: difflib's unified diff, however long it takes."""
    before, after = every_other_line_edited(short_lines(chars))
    started = time.perf_counter()
    list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=3))
    results.put(time.perf_counter() - started)


def old_seconds(chars: int, cap: float) -> str:
    results = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_old_line_diff, args=(chars, results))
    child.start()
    child.join(cap)
    if child.is_alive():
        child.kill()
        child.join()
        return f"> {cap:.0f} s (stopped)"
    return f"{results.get():.1f} s"


def bench_every_other_line(old_cap: float | None) -> bool:
    print("every other line edited (short lines; the audit's 40.6 s and 188 s case):")
    ok = True
    for chars in (230_000, 461_000):
        before, after = every_other_line_edited(short_lines(chars))
        old = {"id": "asst_1", "model": "gpt-4o", "instructions": before}
        started = time.perf_counter()
        drift = event(1, old, {**old, "instructions": after}, "Billing Bot")
        diffed = time.perf_counter()
        render.render_event(drift)
        rendered = time.perf_counter()
        [change] = drift.changes
        exact = not change.text_diff[0].startswith("@@ not aligned")
        before_fix = old_seconds(chars, old_cap) if old_cap else "not run (--skip-old)"
        ok = ok and diffed - started < 1.0
        print(f"  {chars // 1000}k characters, {len(before.splitlines()):,} lines: diff.compare "
              f"{(diffed - started) * 1000:.0f} ms ({'exact' if exact else 'cut'}, {len(change.text_diff):,} lines) "
              f"+ render {(rendered - diffed) * 1000:.0f} ms; difflib before the budget: {before_fix}")
    return ok


def scattered_repeats(count: int) -> tuple[str, str]:
    """Lines from a 300-line vocabulary (none unique), a third replaced: nothing to anchor on."""
    rng = random.Random(5)
    vocabulary = [f"step {n}" for n in range(300)]
    lines = [rng.choice(vocabulary) for _ in range(count)]
    edited = [rng.choice(vocabulary) + " (edited)" if rng.random() < 0.33 else line for line in lines]
    return "\n".join(lines), "\n".join(edited)


def bench_budget_worst_cases() -> None:
    print(f"the line diff's budget ({textdiff.WORK_BUDGET:,} steps) at its worst:")
    cases = [(f"every other of {n:,} short lines", *every_other_line_edited([f"line {i}" for i in range(n)]))
             for n in (700, 1000, 1001, 1500)]
    cases += [(f"scattered edits of {n:,} repeated lines", *scattered_repeats(n)) for n in (3000, 6000, 20000, 100000)]
    for name, before, after in cases:
        started = time.perf_counter()
        lines = textdiff.unified_diff(before, after)
        took = time.perf_counter() - started
        shape = f"cut: {lines[0]}" if lines[0].startswith("@@ not aligned") else "exact"
        print(f"  {name}: {took * 1000:.0f} ms, {len(lines):,} lines, {shape}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-cap", type=float, default=300.0, help="seconds the old difflib diff may take")
    parser.add_argument("--skip-old", action="store_true", help="do not run the old difflib diff")
    args = parser.parse_args()
    templating.default_templates()  # load the templates once, as a running watcher has
    ok = bench_long_instructions()
    bench_digest()
    ok = bench_every_other_line(None if args.skip_old else args.old_cap) and ok
    bench_budget_worst_cases()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
