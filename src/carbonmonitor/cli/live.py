"""The live power line shown on a terminal while ``carbonmonitor run`` waits for its command.

It lives on the terminal's last row, outside a scrolling region set with DECSTBM (as apt's
progress bar does), so the child's output scrolls above it and is never overwritten. Each update
is one write of save-cursor, move, draw, restore-cursor; at most one per ``period_s``.
"""

from __future__ import annotations

import os
import threading

from carbonmonitor.summary import energy_text
from carbonmonitor.tracker import Tracker

ESC = "\x1b"
_MIN_ROWS = 3  # below this there is no room for a scrolling region and a status row


class LiveLine:
    def __init__(self, tracker: Tracker, fd: int = 2, period_s: float = 1.0) -> None:
        self.tracker = tracker
        self.fd = fd
        self.period_s = period_s
        self._rows = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="carbonmonitor-live",
                                        daemon=True)

    def _write(self, text: str) -> None:
        try:
            os.write(self.fd, text.encode())
        except OSError:
            self._stop.set()

    def _size(self) -> tuple[int, int]:
        """(columns, rows) of the terminal on our fd: stdout may be redirected while stderr is
        the terminal, so ``shutil.get_terminal_size`` (stdout, $COLUMNS/$LINES) is not used."""
        try:
            size = os.get_terminal_size(self.fd)
        except OSError:
            return 80, 24
        return size.columns or 80, size.lines or 24

    def _reserve(self) -> None:
        rows = self._size()[1]
        if rows == self._rows:
            return
        if rows < _MIN_ROWS:
            self._rows = 0
            return
        self._rows = rows
        # Index (ESC D) + up makes room when the cursor sits on the last row, keeping its
        # column, so a line the child is half-way through is not broken (a newline would be).
        # DECSTBM homes the cursor, hence the save/restore around it.
        self._write(f"{ESC}D{ESC}[1A{ESC}7{ESC}[1;{rows - 1}r{ESC}8")

    def start(self) -> None:
        self._reserve()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._reserve()
            if not self._rows:
                continue  # terminal too small: no line rather than one drawn over the output
            elapsed, energy_j, power_w = self.tracker.snapshot()
            cols = self._size()[0]
            text = (f"carbonmonitor  {elapsed:7.0f} s  {power_w:7.1f} W  "
                    f"{energy_text(energy_j)}")[: max(cols - 1, 0)]
            # SGR 0 so the child's colours do not leak into the line; DECRC restores them.
            self._write(f"{ESC}7{ESC}[{self._rows};1H{ESC}[0m{ESC}[2K{text}{ESC}8")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        if self._rows:
            self._write(f"{ESC}7{ESC}[r{ESC}[{self._rows};1H{ESC}[0m{ESC}[2K{ESC}8")
