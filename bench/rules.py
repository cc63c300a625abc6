"""What [[rules]] cost a poll: the same polls of N agents with 0 and with 50 rules, side by side in one run.

Two polls each, into a fresh SQLite record: the baseline (every version is new, so every one is checked:
the worst case) and then a poll after --edited agents changed (only their new versions are checked: the
usual case). Best of --repeat. Target: the poll with 50 rules within 1.2x the poll without.

Run: .venv/bin/python bench/rules.py [--agents 1000] [--rules 50] [--edited 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY_ENV = "WATCHER_BENCH_KEY"
TARGET = 1.2
# A mix of what rules check: membership, string tests, list macros, a regex, a missing field guarded by has().
EXPRESSIONS = (
    "self.model in ['gpt-5', 'gpt-5-mini', 'gpt-4o', 'gpt-4.1']",
    "!has(self.instructions) || !self.instructions.contains('ignore previous instructions')",
    "!has(self.tools) || self.tools.all(t, t.type != 'code_interpreter')",
    "!has(self.name) || self.name.matches('^[A-Za-z0-9 _-]+$')",
    "!has(self.metadata) || size(self.metadata) < 20",
)


def rules_toml(count: int) -> str:
    return "".join(f'\n[[rules]]\nname = "rule-{n}"\nkinds = ["agents"]\nexpression = "{EXPRESSIONS[n % len(EXPRESSIONS)]}"\n'
                   for n in range(count))


def two_polls(api, rules: int, edited: int, round_number: int) -> tuple[float, float]:
    """(the baseline poll's seconds, the seconds of a poll after `edited` agents changed)."""
    from watcher.config.model import parse_config
    from watcher.poll.run import poll_target
    from watcher.record.engine import open_engine
    from watcher.rules.check import checker

    with tempfile.TemporaryDirectory(prefix="watcher-rules-") as folder:
        os.environ[KEY_ENV] = api.api_key
        config = parse_config(f'[database]\nurl = "sqlite:///{folder}/watcher.db"\n\n[[targets]]\nname = "bench"\n'
                              f'base_url = "{api.url}"\napi_key_env = "{KEY_ENV}"\nkinds = ["agents"]\n'
                              + rules_toml(rules))
        engine, check = open_engine(config.database.url), checker(config.rules)
        times = []
        for poll in range(2):
            if poll:
                for agent in api.objects("agents")[:edited]:
                    api.edit("agents", agent["id"], instructions=f"Round {round_number}, {rules} rules.")
            started = time.perf_counter()
            [outcome] = poll_target(engine, config.targets[0], check=check)
            times.append(time.perf_counter() - started)
            if outcome.status != "complete":
                raise RuntimeError(outcome.error)
        engine.dispose()
        return times[0], times[1]


def main() -> int:
    from watcher.sandbox.server import Sandbox

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--edited", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with Sandbox(assistants=0, agents=args.agents) as api:
        two_polls(api, 0, args.edited, 0)  # imports and the sandbox's caches, paid once
        runs: dict[int, list[tuple[float, float]]] = {0: [], args.rules: []}
        for round_number in range(args.repeat):
            for count in runs:
                runs[count].append(two_polls(api, count, args.edited, round_number))
    print(f"{args.agents:,} agents, with 0 and with {args.rules} rules, best of {args.repeat}")
    for label, index, checked in (("baseline (every version checked)", 0, args.agents),
                                  (f"after {args.edited} edits (their versions checked)", 1, args.edited)):
        without = min(r[index] for r in runs[0])
        with_rules = min(r[index] for r in runs[args.rules])
        ratio = with_rules / without
        each = (with_rules - without) / (checked * args.rules) * 1e6
        print(f"  {label:<40} {without:.3f} s without, {with_rules:.3f} s with: {ratio:.2f}x "
              f"({each:.1f} us an evaluation)   <= {TARGET}x {'PASS' if ratio <= TARGET else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
