"""The record's schema in plain values, importing nothing of the watcher: what every reader and writer
of the record agrees on, so that no module has to import the models (or SQLAlchemy) to know it.

The vocabularies of its string columns are enums of str: a member is the string stored, and compares
equal to it, so rows read back as plain strings compare with them as they are.
"""

from enum import StrEnum

# The newest migration in watcher/migrations/versions (a test keeps it so): a database already
# there needs no Alembic at all, which keeps every command's start fast.
SCHEMA_HEAD = "0008"

KIND_LIMIT = 40  # characters of a kind's config name (resources.kind, polls.kind)

# The note of a version recorded because the watcher's own rules changed, not the object.
RULES_CHANGED = "the watcher's rules changed (ignore, redact or volatile fields): not an edit on the platform"


class PollStatus(StrEnum):
    """How a poll of (target, kind) ended (`polls.status`); SKIPPED is never stored."""

    COMPLETE = "complete"  # every page listed, compared and recorded
    FAILED = "failed"  # recorded with its error; nothing else changed
    NOT_SERVED = "not_served"  # the kind answered 404 on its first poll: not served here
    SKIPPED = "skipped"  # nothing asked (not served, as before) or nothing written (another process recorded it)


class DeliveryState(StrEnum):
    """Where one delivery of an alert to one channel is (`outbox.state`)."""

    PENDING = "pending"  # not yet accepted by its receiver: tried again until it is, or until it dies
    SENT = "sent"  # accepted by its receiver
    DEAD = "dead"  # given up: refused for good, gone (410), or failing past give_up_after


class Origin(StrEnum):
    """What made a version (`versions.origin`)."""

    BASELINE = "baseline"  # the first complete poll of its (target, kind)
    POLL = "poll"  # a later poll: an edit made out of band
    APPLY = "apply"  # the watcher's own `apply`, with its author
    RESTORE = "restore"  # the watcher's own `restore`, with its author
    HEAL = "heal"  # self-heal: an out-of-band modification put back by the watcher


class Purpose(StrEnum):
    """What an alert is for (`alerts.purpose`): drift, or a notice about the watcher itself."""

    EVENT = "event"  # one drift event
    DIGEST = "digest"  # the drift events of one poll, above digest_threshold
    FAILING = "failing"  # a target's polls keep failing
    RECOVERED = "recovered"  # they succeed again
    RETIRED = "retired"  # a kind with recorded objects answers 404
    DEAD = "dead"  # deliveries to a channel were given up
    DISABLED = "disabled"  # a channel's receiver answered 410 Gone
    TEST = "test"  # test-email
    STATE = "state"  # the platform set an object's state (a spend limit started enforcing)
    HEALED = "healed"  # self-heal put an out-of-band modification back
    FIGHTING = "fighting"  # self-heal left an object alone: something keeps changing it
