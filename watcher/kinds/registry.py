"""The registry: every kind the watcher knows, built once from the kind modules' lists.

The order is the registry's: project-key kinds, then the organization's; a parent kind always comes
before the kinds listed under it, so a poll lists the parent once and reuses it.
"""

from __future__ import annotations

from watcher.kinds import organization, project
from watcher.kinds.base import ADMIN, PROJECT, Kind


def _built(*groups: tuple[Kind, ...]) -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}
    for kind in (kind for group in groups for kind in group):
        if kind.name in kinds:
            raise ValueError(f"kind {kind.name!r} declared twice")
        if kind.parent is not None and kind.parent not in kinds:
            raise ValueError(f"kind {kind.name!r} is listed under {kind.parent!r}, which must come first")
        kinds[kind.name] = kind
    return kinds


_KINDS = _built(project.KINDS, organization.KINDS)


def get(name: str) -> Kind:
    """The kind called `name`; KeyError names the known ones."""
    if name not in _KINDS:
        raise KeyError(f"unknown kind {name!r}; known kinds: {', '.join(_KINDS)}")
    return _KINDS[name]


def all_kinds() -> list[Kind]:
    """Every kind, in registry order (parents before the kinds listed under them)."""
    return list(_KINDS.values())


def names() -> list[str]:
    return list(_KINDS)


def defaults(*, project_key: bool, admin_key: bool) -> list[str]:
    """The kinds a target watches when its config names none: every kind its keys can read."""
    return [k.name for k in all_kinds() if (k.key == PROJECT and project_key) or (k.key == ADMIN and admin_key)]


def for_target(provider: str, *, project_key: bool, admin_key: bool) -> list[str]:
    """The kinds a target of `provider` watches when its config names none (Azure serves only some)."""
    if provider == "azure":
        return [k.name for k in all_kinds() if k.azure]
    return defaults(project_key=project_key, admin_key=admin_key)


def label(name: str) -> str:
    """The singular label of a kind for subjects and titles ("assistant"); the name itself if unknown."""
    return _KINDS[name].label if name in _KINDS else name
