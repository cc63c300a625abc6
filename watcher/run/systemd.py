"""systemd integration spoken with the standard library, and signals turned into a socket to select() on.

The sd_notify datagram protocol: READY=1, STATUS=, WATCHDOG=1, RELOADING=1 and STOPPING=1 go to
$NOTIFY_SOCKET when it is set, and nothing happens when it is not.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import MutableMapping

log = logging.getLogger("watcher.daemon")  # the daemon's logger: these lines are the daemon's

_ENV_KEYS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


# --- sd_notify ------------------------------------------------------------------------------


class SystemdNotifier:
    """Sends sd_notify datagrams to $NOTIFY_SOCKET; every method is a no-op when it is unset."""

    def __init__(self, address: str | None = None, watchdog_usec: int | None = None):
        self.address = _socket_address(address) if address else None
        self.watchdog_seconds = watchdog_usec / 1_000_000 if watchdog_usec and self.address else None
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._failed_once = False

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None) -> SystemdNotifier:
        """Read and remove NOTIFY_SOCKET and WATCHDOG_* so no child process inherits them."""
        environ = os.environ if environ is None else environ
        values = {key: environ.pop(key, None) for key in _ENV_KEYS}
        return cls(values["NOTIFY_SOCKET"], _watchdog_usec(values["WATCHDOG_USEC"], values["WATCHDOG_PID"]))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_enabled(self) -> bool:
        return self.watchdog_seconds is not None

    def send(self, *fields: str) -> bool:
        """Send `fields` ("READY=1", "STATUS=…") as one datagram; False if it could not be sent."""
        if self.address is None:
            return False
        message = "\n".join(_one_line(f) for f in fields).encode("utf-8")
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.sendto(message, self.address)
                return True
            except OSError as exc:
                self._report_failure(exc)
                return False

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        # Newer systemd wants the monotonic clock with RELOADING=1; older versions ignore it.
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self, status: str) -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def _report_failure(self, exc: OSError) -> None:
        # Once: a missing socket would otherwise log on every watchdog ping.
        if not self._failed_once:
            self._failed_once = True
            log.warning("cannot notify systemd at %s: %s", self.address_text, exc.strerror or exc)

    @property
    def address_text(self) -> str:
        if self.address is None:
            return "(none)"
        return "@" + self.address[1:] if self.address.startswith("\0") else self.address


def _socket_address(value: str) -> str | None:
    """The AF_UNIX address of $NOTIFY_SOCKET: a path, or '@name' for an abstract socket."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET %r is neither a path nor an abstract socket; not notifying systemd", value)
    return None


def _watchdog_usec(usec: str | None, pid: str | None) -> int | None:
    """$WATCHDOG_USEC when it is meant for this process (WATCHDOG_PID unset or ours)."""
    if not usec:
        return None
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a number; watchdog disabled", usec)
        return None
    return value if value > 0 else None


def _one_line(text: str) -> str:
    # sd_notify fields are newline-separated: a newline in a value would start a bogus field.
    return " ".join(text.splitlines())


# --- signals --------------------------------------------------------------------------------


class SignalInbox:
    """Turns signals into numbers read from a socket, so the main thread can wait with select().

    The C-level handler writes each signal number to the wakeup fd; nothing runs inside a
    Python signal handler that could deadlock with a lock held by the interrupted code.
    """

    def __init__(self, signums: tuple[int, ...]):
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._previous = {signum: signal.signal(signum, _ignore_in_python) for signum in signums}

    def wait(self, timeout: float | None = None) -> list[int]:
        """Signal numbers received since the last call, waiting up to `timeout` for one."""
        ready, _, _ = select.select([self._reader], [], [], timeout)
        if not ready:
            return []
        try:
            return list(self._reader.recv(512))
        except BlockingIOError:
            return []

    def close(self) -> None:
        """Restore the previous handlers and wakeup fd."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()


def _ignore_in_python(_signum, _frame) -> None:
    """The work happens in the main loop; this only replaces the default (terminate) action."""
