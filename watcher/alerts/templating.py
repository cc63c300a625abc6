"""The email templates: the shipped ones and a user's `[alerts] templates_dir`, rendered with Jinja2.

The built-in templates are the package `watcher.templates` (the top-level `templates/` directory);
`[alerts] templates_dir` may override any of them, and those user templates render in a sandboxed
environment. Every remote value reaches the HTML through autoescaping.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    DictLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment

from watcher.display import header_text
from watcher.errors import ConfigError

log = logging.getLogger("watcher.templating")

_TEMPLATE_SUFFIX = ".j2"


@dataclass(frozen=True)
class RenderedEmail:
    """An email's subject (header-safe) and its two bodies."""

    subject: str
    text: str
    html: str


def render(templates: Templates | None, stem: str, context: dict[str, Any]) -> RenderedEmail:
    templates = templates or default_templates()
    # Whatever a (user) subject template produces, the header is made safe and capped here.
    subject = header_text(templates.render(f"{stem}.subject.j2", context)) or context["subject"]
    text = templates.render(f"{stem}.txt.j2", context)
    page = templates.render(f"{stem}.html.j2", context)
    return RenderedEmail(subject, text, page)


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".html.j2", ".html", ".htm"))


def _environment(cls, loader) -> Environment:
    return cls(loader=loader, autoescape=_autoescape, trim_blocks=True, lstrip_blocks=True,
               keep_trailing_newline=True)


@functools.cache
def builtin_sources() -> dict[str, str]:
    """The shipped templates, read through importlib.resources (editable or from a wheel)."""
    root = importlib.resources.files("watcher.templates")
    return {entry.name: entry.read_text(encoding="utf-8") for entry in root.iterdir()
            if entry.name.endswith(_TEMPLATE_SUFFIX)}


class Templates:
    """The built-in templates, overridden file by file by `[alerts] templates_dir` if set.

    User templates run in a `SandboxedEnvironment` and may extend a built-in one as
    `builtin/NAME`. A user template that fails at render time is logged and the built-in
    one is used instead: a template mistake must never stop a poll from recording.
    """

    def __init__(self, templates_dir: str | None = None):
        builtin = DictLoader(builtin_sources())
        self._builtin = _environment(Environment, builtin)
        self._user: Environment | None = None
        if templates_dir:
            self._user = _environment(SandboxedEnvironment, ChoiceLoader([
                FileSystemLoader(_existing_dir(templates_dir)), builtin, PrefixLoader({"builtin": builtin})]))
            _compile_all(self._user, Path(templates_dir))

    def render(self, name: str, context: dict[str, Any]) -> str:
        if self._user is not None:
            try:
                return self._user.get_template(name).render(context)
            except Exception as exc:  # a user's template may fail in any way; the built-in one will not
                log.warning("template %s failed (%s: %s); using the built-in one", name, type(exc).__name__, exc)
        return self._builtin.get_template(name).render(context)


def _existing_dir(path: str) -> str:
    if not Path(path).is_dir():
        raise ConfigError(f"alerts.templates_dir: {path} is not a directory")
    return path


def _compile_all(environment: Environment, root: Path) -> None:
    """Syntax errors in user templates are config errors, found before any poll."""
    for path in sorted(root.glob(f"*{_TEMPLATE_SUFFIX}")):
        try:
            environment.get_template(path.name)
        except TemplateSyntaxError as exc:
            raise ConfigError(f"alerts.templates_dir: {path.name}: line {exc.lineno}: {exc.message}") from None


@functools.cache
def default_templates() -> Templates:
    return Templates(None)
