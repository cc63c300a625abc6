"""The poll against the floor: what listing the same pages costs with nothing but the standard library.

Three comparisons, each side by side in one run (ratios, not absolute times, are the figures):

- whole process: `assistant-watcher snapshot` of an unchanged account (a fresh Python process: imports,
  config, database, listing, recording) against a fresh Python process that lists the same pages with
  `http.client` + `json.loads` and nothing else (target <= 1.5x). A fresh process that only imports
  the SDK and SQLAlchemy's ORM is timed beside them: the contract requires both, and at these sizes
  their imports alone are several times the floor, so the snapshot less those imports is shown too
  (target <= 1.5x the raw process: the house's start-up target);
- inside the daemon: `poll_target` in a warm process (imports paid once), remembering its pages as the
  daemon does, against the stdlib listing in a warm process (target <= 1.0x);
- a mixed account (1k agents, 200 skills with 3 versions each, 100 webhook endpoints, 500 vector
  stores): requests per poll, the unchanged poll against a bare SDK listing of the same kinds (each
  kind's SDK resource, `model_dump(mode="json")` each object; target <= 1.0x), and peak RSS.

Run: .venv/bin/python bench/floor.py [--sizes 1000,5000,10000] [--repeat 3]
(also run at the end of bench/poll.py). Each measurement runs in its own spawned process; the sandbox
serves from another one.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY_ENV = "WATCHER_BENCH_SANDBOX_KEY"
# The whole process against the bare floor; the snapshot less the contract's imports against the floor (the
# house's target: snapshot <= import floor + 1.5x raw); the daemon's unchanged poll; the mixed account.
TARGET_PROCESS, TARGET_BEYOND_IMPORTS, TARGET_DAEMON, TARGET_MIXED = 1.5, 1.5, 1.0, 1.0
MIXED = {"assistants": 0, "agents": 1000, "skills": 200, "versions_per_skill": 3, "webhook_endpoints": 100,
         "vector_stores": 500, "agent_environments": 0, "agent_automations": 0, "vaults": 0}
MIXED_KINDS = ["agents", "skills", "skill_versions", "webhook_endpoints", "vector_stores"]

# The floor, as a script: stdlib HTTP over one keep-alive connection and json.loads, nothing kept.
RAW_LISTING = r"""
import http.client, json, sys, urllib.parse
url, key, path, beta = sys.argv[1:5]
parts = urllib.parse.urlsplit(url)
connection = http.client.HTTPConnection(parts.hostname, parts.port)
headers = {"Authorization": f"Bearer {key}"}
if beta:
    headers["OpenAI-Beta"] = beta
after, count = None, 0
while True:
    query = "limit=100&order=asc" + (f"&after={after}" if after else "")
    connection.request("GET", f"{parts.path}{path}?{query}", headers=headers)
    body = json.loads(connection.getresponse().read())
    count += len(body["data"])
    if not body.get("has_more") or not body["data"]:
        break
    after = body["data"][-1]["id"]
print(count)
"""


def _serve(conn, counts: dict) -> None:
    from watcher.sandbox.server import Sandbox

    sandbox = Sandbox(**counts).start()
    conn.send((sandbox.url, sandbox.api_key))
    try:
        conn.recv()
    except EOFError:
        pass
    sandbox.stop()


class SandboxProcess:
    """A sandbox seeded with `counts` (Sandbox's keyword arguments), serving from its own process."""

    def __init__(self, ctx, counts: dict):
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child, counts), daemon=True)
        self._process.start()
        child.close()
        if not self._conn.poll(600):
            raise RuntimeError("the sandbox did not start")
        self.url, self.api_key = self._conn.recv()

    def close(self) -> None:
        try:
            self._conn.send("stop")
        except OSError:
            pass
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()


def in_child(ctx, func, *args):
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(func, *args).result()


def write_config(folder: str, url: str, kinds: list[str]) -> str:
    path = os.path.join(folder, "watcher.toml")
    listed = ", ".join(f'"{k}"' for k in kinds)
    Path(path).write_text(f'[database]\nurl = "sqlite:///{folder}/watcher.db"\n\n[[targets]]\nname = "bench"\n'
                          f'base_url = "{url}"\napi_key_env = "{KEY_ENV}"\nkinds = [{listed}]\n')
    return path


# --- whole processes --------------------------------------------------------------------------------


def _run(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


# What the contract's own parts cost a fresh process before any work: the SDK and SQLAlchemy's ORM.
IMPORTS = "import openai, sqlalchemy.orm"


def whole_process(url: str, key: str, config: str, repeat: int) -> tuple[float, float, float]:
    """(best snapshot process, best raw-listing process, best process that only imports the SDK and the ORM)."""
    env = {**os.environ, KEY_ENV: key}
    snapshot = [sys.executable, "-m", "watcher", "--config", config, "snapshot", "--no-email"]
    raw = [sys.executable, "-c", RAW_LISTING, url, key, "/assistants", "assistants=v2"]
    imports = [sys.executable, "-c", IMPORTS]
    _run(snapshot, env)  # the baseline, not timed
    watcher_times, raw_times, import_times = [], [], []
    for _ in range(repeat):
        raw_times.append(_run(raw, env))
        watcher_times.append(_run(snapshot, env))
        import_times.append(_run(imports, env))
    return min(watcher_times), min(raw_times), min(import_times)


# --- inside one warm process ------------------------------------------------------------------------


def _raw_in_process(url: str, key: str, path: str, beta: str) -> int:
    namespace = {}
    sys_argv = sys.argv
    sys.argv = ["raw", url, key, path, beta]
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            exec(RAW_LISTING, namespace)  # noqa: S102 - our own constant, the floor itself
    finally:
        sys.argv = sys_argv
    return namespace["count"]


def warm_child(url: str, key: str, config_path: str, repeat: int, kinds: list[str]) -> dict:
    """Best unchanged poll_target, best stdlib listing and best bare SDK listing, in one warm process."""
    from watcher.config.model import load_config
    from watcher.kinds import registry
    from watcher.poll.run import poll_target
    from watcher.record.engine import open_engine
    from watcher.source.page_memory import PageMemory

    os.environ[KEY_ENV] = key
    config = load_config(config_path)
    target = config.targets[0]
    engine = open_engine(config.database.url)
    memory = PageMemory()  # the daemon's: what its last poll of each kind listed
    poll_target(engine, target, memory=memory)  # baseline (or already there)
    bare_sdk(url, key, kinds)  # the SDK's lazy imports, paid once as the daemon pays them
    result = {"poll": [], "raw": [], "sdk": []}
    for _ in range(repeat):
        started = time.perf_counter()
        for name in kinds:
            kind = registry.get(name)
            if kind.parent is None:
                _raw_in_process(url, key, kind.path, kind.beta or "")
        result["raw"].append(time.perf_counter() - started)
        started = time.perf_counter()
        bare_sdk(url, key, kinds)
        result["sdk"].append(time.perf_counter() - started)
        before = count_requests(url)
        started = time.perf_counter()
        outcomes = poll_target(engine, target, memory=memory)
        result["poll"].append(time.perf_counter() - started)
        result["requests"] = count_requests(url) - before
        if any(o.status != "complete" or o.events for o in outcomes):
            raise RuntimeError("an unchanged poll was not complete and quiet")
    engine.dispose()
    requests = result.pop("requests")
    return {**{k: min(v) for k, v in result.items()}, "requests": requests}


def count_requests(url: str) -> int:
    """GET requests the sandbox served so far (its control endpoint counts none of its own)."""
    import urllib.request

    body = json.dumps({"action": "count_requests", "method": "GET", "path_prefix": "/v1/"}).encode()
    request = urllib.request.Request(url.rsplit("/v1", 1)[0] + "/_sandbox/control", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return int(json.loads(response.read())["result"])


def bare_sdk(url: str, key: str, kinds: list[str]) -> int:
    """What a script would do with the SDK: each kind's resource, every page, model_dump each object."""
    import warnings

    import openai

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = openai.OpenAI(base_url=url, api_key=key)
        listers = {
            "assistants": lambda: client.beta.assistants.list(limit=100),
            "agents": lambda: client.beta.agents.list(limit=100),
            "skills": lambda: client.skills.list(limit=100),
            "webhook_endpoints": lambda: client.webhooks.list(limit=100),
            "vector_stores": lambda: client.vector_stores.list(limit=100),
        }
        count = 0
        skills = []
        for name in kinds:
            if name == "skill_versions":
                continue
            for obj in listers[name]():
                count += len(json.dumps(obj.model_dump(mode="json")))
                if name == "skills":
                    skills.append(obj.id)
        if "skill_versions" in kinds:
            for skill in skills:
                for obj in client.skills.versions.list(skill, limit=100):
                    count += len(json.dumps(obj.model_dump(mode="json")))
        client.close()
    return count


def rss_child(url: str, key: str, config_path: str) -> float:
    """Peak RSS (MiB) of a process doing one unchanged poll of the configured target."""
    import resource

    from watcher.config.model import load_config
    from watcher.poll.run import poll_target
    from watcher.record.engine import open_engine

    os.environ[KEY_ENV] = key
    config = load_config(config_path)
    engine = open_engine(config.database.url)
    poll_target(engine, config.targets[0])
    engine.dispose()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the report --------------------------------------------------------------------------------------


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "MISS"


def run(sizes: list[int], repeat: int) -> str:
    ctx = multiprocessing.get_context("spawn")
    lines = ["", f"the floor: stdlib HTTP + json.loads of the same pages (best of {repeat}, side by side)",
             f"{'':<60}" + "".join(f"{n:>12,}" for n in sizes) + "   target"]
    rows: dict[str, list[str]] = {k: [] for k in (
        "raw process (s)", "snapshot process (s)", "process ratio", f"process that only does `{IMPORTS}` (s)",
        "snapshot process less those imports, / raw", "raw in process (s)", "poll in daemon (s)", "daemon ratio")}
    for n in sizes:
        sandbox = SandboxProcess(ctx, {"assistants": n, "agents": 0, **{k: 0 for k in MIXED if k not in
                                       ("assistants", "agents", "versions_per_skill")}, "versions_per_skill": 1})
        try:
            with tempfile.TemporaryDirectory(prefix="watcher-floor-") as folder:
                config = write_config(folder, sandbox.url, ["assistants"])
                snapshot, raw, imports = whole_process(sandbox.url, sandbox.api_key, config, repeat)
                warm = in_child(ctx, warm_child, sandbox.url, sandbox.api_key, config, repeat, ["assistants"])
        finally:
            sandbox.close()
        rows["raw process (s)"].append(f"{raw:.3f}")
        rows["snapshot process (s)"].append(f"{snapshot:.3f}")
        rows["process ratio"].append(f"{snapshot / raw:.2f}x")
        rows[f"process that only does `{IMPORTS}` (s)"].append(f"{imports:.3f}")
        rows["snapshot process less those imports, / raw"].append(f"{(snapshot - imports) / raw:.2f}x")
        rows["raw in process (s)"].append(f"{warm['raw']:.3f}")
        rows["poll in daemon (s)"].append(f"{warm['poll']:.3f}")
        rows["daemon ratio"].append(f"{warm['poll'] / warm['raw']:.2f}x")
    targets = {"process ratio": TARGET_PROCESS, "snapshot process less those imports, / raw": TARGET_BEYOND_IMPORTS,
               "daemon ratio": TARGET_DAEMON}
    for label, cells in rows.items():
        target = targets.get(label)
        worst = max(float(c.rstrip("x")) for c in cells) if target else None
        tail = f"   <= {target}x {verdict(worst, target)}" if target else ""
        lines.append(f"{label:<60}" + "".join(f"{c:>12}" for c in cells) + tail)
    lines += mixed(ctx, repeat)
    return "\n".join(lines)


def mixed(ctx, repeat: int) -> list[str]:
    sandbox = SandboxProcess(ctx, MIXED)
    try:
        with tempfile.TemporaryDirectory(prefix="watcher-mixed-") as folder:
            config = write_config(folder, sandbox.url, MIXED_KINDS)
            warm = in_child(ctx, warm_child, sandbox.url, sandbox.api_key, config, repeat, MIXED_KINDS)
            rss = in_child(ctx, rss_child, sandbox.url, sandbox.api_key, config)
    finally:
        sandbox.close()
    ratio = warm["poll"] / warm["sdk"]
    expected = 10 + 2 + 200 + 1 + 5  # pages of agents, skills, one per skill's versions, webhooks, vector stores
    return ["", "mixed account: 1k agents, 200 skills x 3 versions, 100 webhook endpoints, 500 vector stores",
            f"  requests per unchanged poll: {warm['requests']} (ceil(N/100) per kind and per skill: {expected}, "
            "plus one proving each exactly full last page)",
            f"  unchanged poll {warm['poll']:.3f} s, bare SDK listing of the same kinds {warm['sdk']:.3f} s, "
            f"stdlib floor {warm['raw']:.3f} s (without skill versions)",
            f"  unchanged poll / bare SDK listing: {ratio:.2f}x   <= {TARGET_MIXED}x {verdict(ratio, TARGET_MIXED)}",
            f"  peak RSS of an unchanged-poll process: {rss:.1f} MiB"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(run(sorted(int(s) for s in args.sizes.split(",")), args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
