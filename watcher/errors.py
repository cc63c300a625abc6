"""The errors the edges raise; the CLI turns each into an exit code and one line."""


class WatcherError(Exception):
    """Base of every error the watcher reports to a user as one line."""


class ConfigError(WatcherError):
    """The configuration file is missing, unreadable or invalid (exit 2)."""


class SourceError(WatcherError):
    """A remote listing or write failed; the message names target, kind and status."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class KindNotServed(SourceError):
    """The endpoint answered 404 for a whole kind (retired or never served)."""


class DeliveryError(WatcherError):
    """A channel could not be reached or refused an alert.

    `permanent`: retrying cannot help (every recipient refused with a 5xx): the delivery is dead.
    `gone`: the receiver answered 410 Gone: the channel is disabled.
    """

    def __init__(self, message: str, *, permanent: bool = False, gone: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.gone = gone


class RecordError(WatcherError):
    """A lookup in the record failed: unknown or ambiguous object, missing version."""


class NotLive(RecordError):
    """No version of the object was live at the asked time: `reason` is before_first_seen or deleted.

    `since` is when it was first seen (before_first_seen) or deleted (deleted); `back` when it was
    listed again after that deletion, if it was.
    """

    def __init__(self, message: str, *, reason: str, since, back=None):
        super().__init__(message)
        self.reason, self.since, self.back = reason, since, back


def one_line(exc: BaseException, limit: int = 500) -> str:
    """An exception as one line: a database driver's own message (not SQLAlchemy's SQL dump), capped."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


class ExportError(WatcherError):
    """The history repository cannot be written: not one the watcher wrote, or with local changes (exit 1)."""
