"""systemd integration: READY, WATCHDOG and STATUS through sd_notify, logs to the journal.

Uses systemd-python (apt: python3-systemd) when it is importable; otherwise writes
the datagram to $NOTIFY_SOCKET itself (hand-written, a dozen lines: the protocol
is one datagram of KEY=VALUE lines). Outside systemd every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


def _send_raw(message: str) -> bool:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall(message.encode())
        return True
    except OSError as exc:
        log.debug("sd_notify to %s failed: %s", addr, exc)
        return False


def sd_notify(message: str) -> bool:
    try:
        from systemd import daemon  # type: ignore[import-not-found]

        return bool(daemon.notify(message))
    except ImportError:
        return _send_raw(message)


def watchdog_interval_s() -> float | None:
    """Half the unit's WatchdogSec, as sd_watchdog_enabled(3) advises; None when off."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.05, int(usec) / 1e6 / 2)
    except ValueError:
        return None


class Notifier:
    """Called after every frame the main loop finishes: a stalled loop stops the pings."""

    def __init__(self, status_every_s: float = 5.0):
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self.watchdog_s = watchdog_interval_s()
        self.status_every_s = status_every_s
        self.is_ready = False
        self._last_ping = 0.0
        self._last_status = 0.0

    def frame_done(self, fps: float, faces: int, status: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        msgs = []
        if not self.is_ready:
            msgs.append("READY=1")
            self.is_ready = True
        if self.watchdog_s is not None and now - self._last_ping >= self.watchdog_s / 2:
            msgs.append("WATCHDOG=1")
            self._last_ping = now
        if now - self._last_status >= self.status_every_s or len(msgs) and "READY=1" in msgs:
            msgs.append(f"STATUS={status or 'running'}: {fps:.1f} FPS, {faces} face(s)")
            self._last_status = now
        if msgs:
            sd_notify("\n".join(msgs))

    def ready(self, status: str = "started") -> None:
        """Set up: running, or waiting on purpose (outside source.hours, a camera being
        retried). systemd's start is done; a unit that waited for a first frame would be
        killed at TimeoutStartSec and restarted all night."""
        if self.enabled and not self.is_ready:
            self.is_ready = True
            sd_notify(f"READY=1\nSTATUS={status}")

    def keepalive(self, status: str) -> None:
        """While waiting on purpose (camera retry), so systemd does not restart a healthy wait."""
        if self.enabled:
            msg = f"STATUS={status}"
            if self.watchdog_s is not None:
                msg = "WATCHDOG=1\n" + msg
            if not self.is_ready:
                self.is_ready = True
                msg = "READY=1\n" + msg
            sd_notify(msg)

    def stopping(self) -> None:
        if self.enabled:
            sd_notify("STOPPING=1")


def setup_logging(level: str = "INFO") -> None:
    """To the journal with priorities when systemd runs us; plain stderr otherwise."""
    root = logging.getLogger()
    root.setLevel(level)
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        try:
            from systemd.journal import JournalHandler  # type: ignore[import-not-found]

            root.addHandler(JournalHandler(SYSLOG_IDENTIFIER="fer-pi"))
            return
        except ImportError:
            # stderr is the journal stream already; a <N> prefix sets the priority
            handler = logging.StreamHandler()
            handler.setFormatter(_PriorityFormatter("%(name)s: %(message)s"))
            root.addHandler(handler)
            return
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


class _PriorityFormatter(logging.Formatter):
    """sd-daemon(3) priority prefixes: the journal reads <3> as err, <6> as info."""

    LEVELS = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
              logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.LEVELS.get(record.levelno, 6)}>" + super().format(record)
