"""Third-party backends from the ``carbonmonitor.backends`` entry-point group, through the
same selection path as built-ins (a fake installed distribution on sys.path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLUGIN = '''
from carbonmonitor.backends.fake import FakeBackend


class Factory:
    name = "wallmeter"
    devices = ("cpu",)

    def probe(self, context):
        return FakeBackend({"cpu": 42.0}, name="wallmeter")


FACTORY = Factory()
'''

SCRIPT = '''
import json, logging
import carbonmonitor
from carbonmonitor import ManualClock
logging.basicConfig(level=logging.WARNING)
out = {}
for backend in ("auto", "wallmeter"):
    clock = ManualClock()
    t = carbonmonitor.Tracker(backend=backend, clock=clock, sampling="manual", quiet=True)
    t.start()
    clock.advance(10)
    r = t.stop()
    out[backend] = {f.domain: [f.backend, f.energy_j] for f in r.energy}
print(json.dumps(out))
'''


def install_fake_distribution(site: Path, entry_points: str) -> None:
    (site / "wallmeter_plugin.py").write_text(PLUGIN)
    dist = site / "wallmeter_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wallmeter-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(entry_points)


def run(site: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONMONITOR_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=60)


def test_plugin_is_selectable_by_name_and_comes_before_estimate_in_auto(tmp_path: Path) -> None:
    install_fake_distribution(
        tmp_path, "[carbonmonitor.backends]\nwallmeter = wallmeter_plugin:FACTORY\n")
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["wallmeter"] == {"cpu": ["wallmeter", 420.0]}
    # auto: the plugin covers the CPU, so estimate contributes only memory
    assert out["auto"]["cpu"] == ["wallmeter", 420.0]
    assert out["auto"]["memory"][0] == "estimate"


def test_broken_plugin_is_logged_and_never_fatal(tmp_path: Path) -> None:
    install_fake_distribution(
        tmp_path, "[carbonmonitor.backends]\nbroken = no_such_module_here:FACTORY\n")
    script_env_site = tmp_path
    proc = subprocess.run(
        [sys.executable, "-c",
         "import carbonmonitor; r = carbonmonitor.track(quiet=True).start().stop(); "
         "print(sorted(f.backend for f in r.energy))"],
        capture_output=True, text=True, timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CARBONMONITOR_")},
             "PYTHONPATH": str(script_env_site)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['estimate', 'estimate']"
    assert "backend plugin 'broken' failed to load" in proc.stderr


RAISING = '''
class Factory:
    name = "flaky"
    devices = ("gpu",)

    def probe(self, context):
        import pynvml_not_installed_anywhere  # an optional vendor library that is missing


FACTORY = Factory()
'''


def test_plugin_whose_probe_raises_is_skipped_in_auto_and_an_error_when_named(
        tmp_path: Path) -> None:
    (tmp_path / "flaky_plugin.py").write_text(RAISING)
    dist = tmp_path / "flaky_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: flaky-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[carbonmonitor.backends]\nflaky = flaky_plugin:FACTORY\n")
    code = ("import carbonmonitor\n"
            "r = carbonmonitor.track(quiet=True).start().stop()\n"
            "print([(b.name, b.used, b.reason) for b in r.backends])\n"
            "try:\n"
            "    carbonmonitor.track(backend='flaky')\n"
            "except carbonmonitor.ConfigError as err:\n"
            "    print('ConfigError', err)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONMONITOR_")}
    env["PYTHONPATH"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().splitlines()
    assert "('flaky', False, \"probe failed: ModuleNotFoundError" in first
    assert "('estimate', True" in first
    assert second.startswith("ConfigError backend 'flaky' is unavailable here: probe failed")
    assert "backend 'flaky' skipped" in proc.stderr


def test_entry_point_scan_agrees_with_importlib_metadata() -> None:
    from importlib.metadata import entry_points as metadata_entry_points

    from carbonmonitor.backends import entry_points

    for group in ("console_scripts", "pytest11", "carbonmonitor.backends"):
        expected = sorted((ep.name, ep.value) for ep in metadata_entry_points(group=group))
        assert sorted(entry_points(group)) == expected, group
    assert ("carbonmonitor", "carbonmonitor.cli:main") in entry_points("console_scripts")
