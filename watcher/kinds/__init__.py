"""Kinds: what a kind is (`base`), the kinds themselves (`project`, `organization`), the registry."""


def get(name: str):
    """The kind called `name` (`watcher.kinds.registry.get`)."""
    # Landed migration 0005 calls watcher.kinds.get and landed migrations are never edited; imported
    # here, not at the top, so that importing any kinds module does not load the whole registry.
    from watcher.kinds.registry import get as registry_get

    return registry_get(name)
