"""The live power line: on the terminal's last row, never over the command's own output.

Every byte the terminal receives is fed to a pyte screen (a VT100 emulator), so the assertions
are about what a user would see, not about escape sequences.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyte
from cli_helpers import ARTIFACTS, PtyRun, clean_env, set_size, start_in_pty

ROWS, COLS = 24, 80
LINES = 40
EXPECTED = [f"child line {i:02d} of {LINES}: the quick brown fox" for i in range(1, LINES + 1)]


def child(duration_s: float) -> list[str]:
    """A command printing EXPECTED over ``duration_s``: more lines than the screen holds, so
    they scroll under the live line."""
    code = (f"import time\n"
            f"for i in range(1, {LINES + 1}):\n"
            f"    print(f'child line {{i:02d}} of {LINES}: the quick brown fox', flush=True)\n"
            f"    time.sleep({duration_s / LINES!r})\n")
    return [sys.executable, "-c", code]


LIVE = re.compile(r"^carbonmonitor\s+\d+ s\s+(\d+\.\d) W\s+\S+ (J|Wh|kWh)$")
DECSTBM = re.compile(rb"\x1b\[(\d*);?(\d*)r")


def _text(line: dict[int, pyte.screens.Char], columns: int) -> str:
    return "".join(line[x].data for x in range(columns)).rstrip()


class Terminal:
    """A pyte screen with scroll-back, whose cursor starts on the last row like a shell's."""

    def __init__(self, rows: int, cols: int) -> None:
        self.screen = pyte.HistoryScreen(cols, rows, history=1000)
        self.stream = pyte.ByteStream(self.screen)
        self.stream.feed(b"$ carbonmonitor run ...\r\n".rjust(rows * 2, b"\n"))
        assert self.screen.cursor.y == rows - 1
        self.live_rows: list[str] = []

    def feed(self, data: bytes) -> None:
        self.stream.feed(data)
        last = self.screen.display[-1].rstrip()
        if last.startswith("carbonmonitor"):
            self.live_rows.append(last)

    def transcript(self) -> list[str]:
        """Every line scrolled off the top, then the screen."""
        cols = self.screen.columns
        return ([_text(line, cols) for line in self.screen.history.top]
                + [row.rstrip() for row in self.screen.display])


def _save(name: str, terminal: Terminal, raw: bytes) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{name}.screen.txt").write_text(
        "\n".join(terminal.screen.display) + "\n", encoding="utf-8")
    (ARTIFACTS / f"{name}.transcript.txt").write_text(
        "\n".join(terminal.transcript()) + "\n", encoding="utf-8")
    (ARTIFACTS / f"{name}.raw.bin").write_bytes(raw)


def _child_lines(transcript: list[str]) -> list[str]:
    return [line for line in transcript if "child line" in line]


def test_live_line_sits_on_the_last_row_and_child_output_stays_intact() -> None:
    terminal = Terminal(ROWS, COLS)
    run = start_in_pty(["run", "--backend", "fake", "--", *child(3.0)], rows=ROWS, cols=COLS)
    try:
        code = run.finish(on_data=terminal.feed)
    finally:
        os.close(run.master)
    _save("live_line", terminal, run.output)
    assert code == 0
    # Every child line, whole and in order, exactly once (nothing drew over or between them).
    assert _child_lines(terminal.transcript()) == EXPECTED
    # The live line was shown on the last row, and updated with a plausible reading.
    assert terminal.live_rows, "the live line never appeared on the last row"
    readings = [LIVE.match(row) for row in terminal.live_rows]
    assert all(readings), terminal.live_rows
    assert any(float(m.group(1)) > 0 for m in readings if m), terminal.live_rows
    # Afterwards: scroll region reset, last row no longer a live line, summary printed.
    assert terminal.screen.margins is None
    regions = DECSTBM.findall(run.output)
    assert regions[0] == (b"1", str(ROWS - 1).encode()) and regions[-1] == (b"", b"")
    assert not LIVE.match(terminal.screen.display[-1].rstrip())
    assert any(line.startswith("carbonmonitor: run ") and "completed" in line
               for line in terminal.transcript())


def test_region_uses_stderrs_terminal_when_stdout_is_redirected(tmp_path: Path) -> None:
    rows = 30  # not the 24-row fallback, so a size read from stdout would show
    with (tmp_path / "stdout.txt").open("wb") as stdout:
        run = start_in_pty(["run", "--backend", "fake", "--", *child(0.0)],
                           rows=rows, cols=COLS, stdout=stdout.fileno())
    terminal = Terminal(rows, COLS)
    try:
        assert run.finish(on_data=terminal.feed) == 0
    finally:
        os.close(run.master)
    assert DECSTBM.findall(run.output)[0] == (b"1", str(rows - 1).encode())
    assert terminal.screen.margins is None
    assert (tmp_path / "stdout.txt").read_text(encoding="utf-8").splitlines() == EXPECTED


def test_quiet_writes_no_escape_sequences() -> None:
    run = start_in_pty(["run", "--quiet", "--backend", "fake", "--", *child(0.0)])
    try:
        assert run.finish() == 0
    finally:
        os.close(run.master)
    assert b"\x1b" not in run.output
    assert run.output.decode().splitlines() == EXPECTED  # and nothing but the child's output


def test_no_live_line_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("wb") as stderr:
        run = start_in_pty(["run", "--backend", "fake", "--", *child(0.0)],
                           stderr=stderr.fileno())
    try:
        assert run.finish() == 0
    finally:
        os.close(run.master)
    err = stderr_path.read_bytes()
    assert b"\x1b" not in run.output and b"\x1b" not in err
    assert b"carbonmonitor: run " in err  # the summary still comes, as plain text


def test_no_escape_sequences_without_any_terminal() -> None:
    done = subprocess.run([sys.executable, "-m", "carbonmonitor", "run", "--backend", "fake",
                           "--", sys.executable, "-c", "print('x')"],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          env=clean_env(TERM="xterm"), timeout=20, start_new_session=True)
    assert done.returncode == 0
    assert b"\x1b" not in done.stdout + done.stderr


def test_dumb_terminal_gets_no_escape_sequences() -> None:
    run: PtyRun = start_in_pty(["run", "--backend", "fake", "--", *child(0.0)],
                               env=clean_env(TERM="dumb"))
    try:
        assert run.finish() == 0
    finally:
        os.close(run.master)
    assert b"\x1b" not in run.output


def test_resize_keeps_a_half_written_line_whole(tmp_path: Path) -> None:
    """When the terminal grows, the line is moved to the new last row without breaking the
    line the command is half-way through (a newline there would split it)."""
    ready, go = tmp_path / "ready", tmp_path / "go"
    code = ("import os, sys, time\n"
            "print('before resize', flush=True)\n"
            "sys.stdout.write('abc'); sys.stdout.flush()\n"
            f"open({str(ready)!r}, 'w').close()\n"
            f"while not os.path.exists({str(go)!r}):\n"
            "    time.sleep(0.01)\n"
            "print('def', flush=True)\n")
    terminal = Terminal(ROWS, COLS)
    run = start_in_pty(["run", "--backend", "fake", "--", sys.executable, "-c", code],
                       rows=ROWS, cols=COLS)
    try:
        run.pump_until(lambda: ready.exists() and b"abc" in run.output, "the half line",
                       on_data=terminal.feed)
        set_size(run.master, ROWS + 6, COLS)
        terminal.screen.resize(ROWS + 6, COLS)
        new_region = f"\x1b[1;{ROWS + 5}r".encode()
        run.pump_until(lambda: new_region in run.output, "the region for the new size",
                       on_data=terminal.feed)
        go.touch()
        assert run.finish(on_data=terminal.feed) == 0
    finally:
        os.close(run.master)
    _save("live_line_resize", terminal, run.output)
    transcript = terminal.transcript()
    assert "abcdef" in transcript and "before resize" in transcript
    assert terminal.screen.margins is None
