"""`check DIR`: the live objects against the declared ones (DESIGN "Declared state"), read fresh, written nowhere.

A declared directory holds `DIR/<target>/<kind>/<name or id>.json` (or `.toml`), each in `show --json`'s shape.
Only the fields `apply` may write are compared, so a file saved from `show --json` is declared as it is.
The result lists what differs (with the changes), what is declared but missing live, what breaks a rule,
and (strict) what is live but declared nowhere: a CI job, like `terraform plan -detailed-exitcode`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.compare import diff
from watcher.compare.normalize import normalize, rules_for
from watcher.config.rules import RuleConfig
from watcher.config.targets import TargetConfig
from watcher.errors import ConfigError
from watcher.kinds import registry
from watcher.kinds.base import Kind
from watcher.rules.check import verdicts
from watcher.source.listing import Source

SUFFIXES = (".json", ".toml")


@dataclass(frozen=True, kw_only=True)
class Declared:
    """One declared object: its file, and the document it holds."""

    target: str
    kind: str
    file: Path
    document: dict[str, Any]

    @property
    def key(self) -> str:
        """What names the live object it declares: its `id`, else its name (the file's stem)."""
        return str(self.document.get("id") or self.document.get("name") or self.file.stem)


@dataclass
class CheckReport:
    """What `check` found: each list holds plain dicts, as `check --json` prints them."""

    differs: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    undeclared: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not (self.differs or self.missing or self.undeclared or self.violations)

    def document(self) -> dict[str, Any]:
        return {"in_sync": self.in_sync, "differs": self.differs, "missing": self.missing,
                "undeclared": self.undeclared, "violations": self.violations}


def read_declared(directory: Path, targets: Iterable[str]) -> list[Declared]:
    """Every declared object under `directory` for these targets; ConfigError naming the first bad file."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a directory")
    found = []
    for target in targets:
        for kind_dir in sorted(p for p in (directory / target).glob("*") if p.is_dir()):
            if kind_dir.name not in registry.names():
                raise ConfigError(f"{kind_dir}: {kind_dir.name!r} is not a kind (see docs/kinds.md)")
            for file in sorted(p for p in kind_dir.iterdir() if p.suffix in SUFFIXES):
                found.append(Declared(target=target, kind=kind_dir.name, file=file, document=_read(file)))
    return found


def _read(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
        document = tomllib.loads(text) if file.suffix == ".toml" else json.loads(text)
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ConfigError(f"{file}: not valid {file.suffix[1:].upper()}: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{file}: expected one object, as `show --json` prints it")
    return document


def check(targets: list[TargetConfig], declared: list[Declared], rules: list[RuleConfig], secret_key: bytes, *,
          strict: bool = False) -> CheckReport:
    """List every kind a declared file names, live, and compare (see the module)."""
    report = CheckReport()
    by_kind: dict[tuple[str, str], list[Declared]] = {}
    for item in declared:
        by_kind.setdefault((item.target, item.kind), []).append(item)
    for target in targets:
        with Source(target) as source:
            for kind_name in sorted({kind for (name, kind) in by_kind if name == target.name}):
                kind = registry.get(kind_name)
                live = dict(_live(source, target, kind, secret_key))
                _compare(report, target, kind, live, by_kind[(target.name, kind_name)], strict)
                _check_rules(report, target, kind, live, rules)
    return report


def _live(source: Source, target: TargetConfig, kind: Kind, secret_key: bytes) -> Iterator[tuple[str, Any]]:
    """(id, normalized snapshot) of every live object of `kind`, from a fresh listing."""
    rules = rules_for(kind, ignore=target.ignore, redact=target.redact, secret_key=secret_key)
    for page in source.pages(kind):
        for raw, object_id in zip(page.read(), page.ids):
            yield object_id, normalize(raw, rules=rules, object_id=object_id)


def _compare(report: CheckReport, target: TargetConfig, kind: Kind, live: dict[str, Any],
             declared: list[Declared], strict: bool) -> None:
    names = {snap.name: object_id for object_id, snap in live.items() if snap.name}
    claimed = set()
    for item in declared:
        object_id = item.key if item.key in live else names.get(item.key)
        where = {"target": target.name, "kind": kind.name, "file": str(item.file)}
        if object_id is None:
            report.missing.append({**where, "object_id": item.document.get("id"), "name": item.document.get("name")})
            continue
        claimed.add(object_id)
        snap = live[object_id]
        wanted = {k: item.document[k] for k in kind.writable if k in item.document}
        have = {k: snap.body[k] for k in wanted if k in snap.body}
        changes = diff.compare(have, wanted)
        if changes:
            report.differs.append({**where, "object_id": object_id, "name": snap.name,
                                   "changes": [{"path": c.path, "op": c.op, "old": c.old, "new": c.new}
                                               for c in changes]})
    if strict:
        report.undeclared += [{"target": target.name, "kind": kind.name, "object_id": object_id, "name": snap.name}
                              for object_id, snap in sorted(live.items()) if object_id not in claimed]


def _check_rules(report: CheckReport, target: TargetConfig, kind: Kind, live: dict[str, Any],
                 rules: list[RuleConfig]) -> None:
    for object_id, snap in sorted(live.items()):
        about = {"target": target.name, "kind": kind.name, "id": object_id, "name": snap.name}
        report.violations += [{"target": target.name, "kind": kind.name, "object_id": object_id, "name": snap.name,
                               "rule": rule.name, "message": wrong}
                              for rule, wrong in verdicts(rules, snap.body, about) if wrong is not None]
