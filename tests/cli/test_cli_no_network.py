"""Neither ``carbonmonitor run`` nor ``track()`` opens a network connection by default.

A ``sitecustomize`` put first on PYTHONPATH installs an audit hook (PEP 578) in every Python
process started, which logs each AF_INET/AF_INET6 ``socket.connect``/``sendto`` (and, for
information, name look-ups) to a file, after a 'loaded PID' line that proves it ran there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import CLI, clean_env

SITECUSTOMIZE = r'''
import os, socket, sys

_LOG = os.environ["CM_TEST_NET_LOG"]


def _log(line):
    with open(_LOG, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {line}\n")


def _hook(event, args):
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock = args[0]
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            _log(f"NET {event} {sock.family.name} {args[1]!r}")
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
        _log(f"info {event} {args!r}")


sys.addaudithook(_hook)
_log("loaded")
'''

TRACK_SCRIPT = r'''
import carbonmonitor

with carbonmonitor.track(project="no-network", quiet=True) as run:
    with run.phase("train"):
        sum(i * i for i in range(100_000))
    with run.phase("eval"):
        sum(range(1000))
assert run.result is not None and run.result.phase("train").count == 1
print("tracked", run.result.energy_j >= 0)
'''


class NetLog:
    def __init__(self, tmp_path: Path) -> None:
        site = tmp_path / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        self.path = tmp_path / "net.log"
        self.env = clean_env(PYTHONPATH=str(site), CM_TEST_NET_LOG=str(self.path))

    def lines(self, pid: int) -> list[str]:
        text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        mine = [line.split(" ", 1)[1] for line in text.splitlines()
                if line.split(" ", 1)[0] == str(pid)]
        assert "loaded" in mine, f"the audit hook did not load in process {pid}: {text!r}"
        return mine

    def connections(self, pid: int) -> list[str]:
        return [line for line in self.lines(pid) if line.startswith("NET ")]


def test_hook_sees_an_inet_connect(tmp_path: Path) -> None:
    """Control: a loopback connect to a port nobody listens on is logged (nothing leaves)."""
    log = NetLog(tmp_path)
    code = ("import socket\n"
            "closed = socket.socket(); closed.bind(('127.0.0.1', 0))\n"
            "s = socket.socket()\n"
            "try:\n"
            "    s.connect(closed.getsockname())\n"
            "except OSError:\n"
            "    pass\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=log.env)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    connections = log.connections(proc.pid)
    assert len(connections) == 1 and "AF_INET" in connections[0], connections


@pytest.mark.parametrize("backend", ["auto", "fake"])
def test_carbonmonitor_run_makes_no_connection(tmp_path: Path, backend: str) -> None:
    log = NetLog(tmp_path)
    proc = subprocess.Popen([*CLI, "run", "--backend", backend, "--json",
                             str(tmp_path / "r.json"), "--",
                             sys.executable, "-c", "print('child done')"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=log.env,
                            start_new_session=True)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out == "child done\n"
    assert log.connections(proc.pid) == []


def test_track_with_phases_makes_no_connection(tmp_path: Path) -> None:
    log = NetLog(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", TRACK_SCRIPT], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=log.env)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out == "tracked True\n"
    assert log.connections(proc.pid) == []
