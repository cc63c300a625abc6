"""`[[rules]]`: what is allowed, as CEL expressions over an object's body (DESIGN "Rules: what is allowed").

A rule is compiled when the config is read, so one that does not compile is a config error naming the rule
and where in the expression; `watcher.rules.check` evaluates the compiled rules on every new version.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import cel  # common-expression-language: CEL compiled in Rust (cel-interpreter), linear-time regexes
from pydantic import Field, model_validator

from watcher.config.fields import KindName, Section
from watcher.config.routing import route_matches
from watcher.config.values import NAME_PATTERN


class RuleMatch(Section):
    """Which objects a rule is about, as a route matches them (name and target are globs)."""

    name: str | None = None
    target: str | None = None


class RuleConfig(Section):
    name: str = Field(pattern=NAME_PATTERN)
    kinds: list[KindName] | None = None  # None: every kind
    match: RuleMatch | None = None
    expression: str
    message: str | None = None  # default: the rule's name
    severity: Literal["high", "low"] = "high"

    @model_validator(mode="after")
    def _compiles(self) -> RuleConfig:
        try:
            cel.compile(self.expression)
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"the expression does not compile: {_first_error(str(exc))}") from None
        return self

    @functools.cached_property
    def program(self) -> Any:
        """The compiled CEL program (`execute(context)`), compiled once: a plain attribute after the first read."""
        return cel.compile(self.expression)

    def applies_to(self, *, kind: str, name: str | None, target: str) -> bool:
        """True for an object of one of the rule's kinds that its `match` fits."""
        if self.kinds is not None and kind not in self.kinds:
            return False
        if self.match is None:
            return True
        return route_matches({"name": self.match.name, "target": self.match.target}, name=name or "", kind=kind,
                             target=target, severity="high")


def _first_error(text: str) -> str:
    """The compiler's first error, with where it is: `at line 1, column 16: Syntax error: ...`."""
    for line in text.splitlines():
        _before, found, after = line.partition("<input>:")
        if found:
            row, _, rest = after.partition(":")
            column, _, why = rest.partition(":")
            return f"at line {row}, column {column}: {why.strip()}"[:300]
    return text.splitlines()[0][:300] if text else "unknown error"
