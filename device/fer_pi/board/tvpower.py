"""The screen's power over HDMI-CEC: off while the room is closed, on when it opens.

A board outside opening hours says "closed until 08:00" on a TV that stays on all night,
using power and wearing the panel; a museum would otherwise need a smart plug. With
board.cec_device the TV is put in standby when the camera closes (source.hours) and woken
when it opens. It uses cec-ctl (apt: v4l-utils), the kernel CEC framework's own tool, as
a subprocess: a command that fails (a TV with CEC switched off in its menu) is logged and
never stops the board. The commands run in a thread of their own: a bus that does not
answer can take seconds per command, and the main loop feeds systemd's watchdog.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class CecScreen:
    """Follows the camera's state: "closed" puts the TV in standby, "running" wakes it."""

    def __init__(self, device: str, run: Callable = subprocess.run, timeout_s: float = 10.0):
        self.device, self.run, self.timeout_s = device, run, timeout_s
        self.off = False
        self._configured = False
        self._todo: queue.Queue[str | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="cec", daemon=True)
        self._worker.start()

    def _cec(self, *args: str) -> bool:
        cmd = ["cec-ctl", "-d", self.device, *args]
        try:
            r = self.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("HDMI-CEC: %s: %s", " ".join(cmd), exc)
            return False
        if r.returncode:
            last = (r.stderr or r.stdout or "").strip().splitlines()[-1:] or ["no output"]
            log.warning("HDMI-CEC: %s failed (exit %d): %s", " ".join(cmd), r.returncode, last[0])
            return False
        return True

    def _ready(self) -> bool:
        """cec-ctl --playback once: our side of the bus says it is a playback device."""
        if not self._configured:
            self._configured = self._cec("--playback")
        return self._configured

    def follow(self, camera_state: str) -> None:
        """Never waits on the bus: the command is handed to the CEC thread."""
        # the state changes before the command: a TV that ignores CEC is asked once, not
        # once a second for the whole night
        if camera_state == "closed" and not self.off:
            self.off = True
            self._todo.put("standby")
        elif camera_state == "running" and self.off:
            self.off = False
            self._todo.put("on")

    def _work(self) -> None:
        while (what := self._todo.get()) is not None:
            try:
                if what == "standby":
                    if self._ready() and self._cec("--to", "0", "--standby"):
                        log.info("HDMI-CEC: screen in standby until the hours begin")
                elif self._ready() and self._cec("--to", "0", "--image-view-on"):
                    log.info("HDMI-CEC: screen on")
            except Exception:  # noqa: BLE001 - the screen's power never ends the board
                log.exception("HDMI-CEC: %s failed", what)
            finally:
                self._todo.task_done()
        self._todo.task_done()

    def settle(self) -> None:
        """Wait until every command handed over has run (tests, and close)."""
        self._todo.join()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the thread once what is queued has run, waiting at most ``timeout_s``."""
        self._todo.put(None)
        self._worker.join(timeout_s)
