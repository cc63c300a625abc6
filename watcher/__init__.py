"""assistant-watcher: a versioned audit trail and drift alarm for assistants and agents."""

__version__ = "0.1.0"
