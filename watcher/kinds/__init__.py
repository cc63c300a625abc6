"""The kind registry: every sort of remote object the watcher knows (see `watcher.kinds.base`)."""

from watcher.kinds.base import ADMIN, HIGH, LOW, PROJECT, Kind, all_kinds, defaults, for_target, get, label, names

__all__ = ["ADMIN", "HIGH", "LOW", "PROJECT", "Kind", "all_kinds", "defaults", "for_target", "get", "label", "names"]
