"""The public surface is small and pinned; configuration errors happen before any work."""

from __future__ import annotations

import subprocess
import sys

import pytest

import carbonmonitor


def test_all_is_pinned() -> None:
    assert carbonmonitor.__all__ == sorted([
        "BackendUnavailable", "CarbonMonitorError", "ConfigError", "DataError", "FakeBackend",
        "ManualClock", "RunList", "RunResult", "Series", "StoreError", "Tracker", "__version__",
        "format_summary", "load", "reaccount", "runs", "series", "track",
    ])
    for name in carbonmonitor.__all__:
        assert getattr(carbonmonitor, name) is not None


def test_import_is_lazy() -> None:
    code = ("import sys, carbonmonitor; heavy = [m for m in ('psutil', 'carbonmonitor.tracker', "
            "'carbonmonitor.carbon', 'json', 'csv', 'subprocess') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("kwargs", [
    {"country": "Atlantis"}, {"pue": 0.5}, {"interval": -1}, {"backend": "nope"},
    {"contry": "DE"}, {"cloud_region": "moon-east-1"}, {"cloud_provider": "aws", "pue": "cheap"},
])
def test_config_errors_raise_before_start(kwargs: dict[str, object]) -> None:
    with pytest.raises(carbonmonitor.ConfigError):
        carbonmonitor.track(**kwargs)


def test_track_records_identity() -> None:
    with carbonmonitor.track(backend="fake", name="unit", tags="a,b", params={"lr": 0.1},
                             project="p", quiet=True) as run:
        pass
    ident = run.result.identity  # type: ignore[union-attr]
    assert (ident.name, ident.project, ident.tags, ident.params) == ("unit", "p", ("a", "b"),
                                                                     {"lr": 0.1})
    assert ident.host and ident.pid > 0 and ident.python and ident.argv
    assert ident.packages["carbonmonitor"] == carbonmonitor.__version__
    assert any("owid" in k for k in ident.data_tables)
    assert ident.hardware is not None and ident.hardware.cpu_count


def test_git_commit_and_dirty_flag(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              cwd=tmp_path, capture_output=True, text=True, check=True).stdout

    git("init", "-q", "-b", "main")
    (tmp_path / "f.txt").write_text("one")
    git("add", "f.txt")
    git("commit", "-qm", "first")
    head = git("rev-parse", "HEAD").strip()
    monkeypatch.chdir(tmp_path)
    results = []
    for content in ("one", "two"):  # clean, then a tracked file modified
        (tmp_path / "f.txt").write_text(content)
        with carbonmonitor.track(backend="fake", quiet=True) as run:
            pass
        results.append(run.result.identity.git)  # type: ignore[union-attr]
    assert [(g.commit, g.dirty, g.branch) for g in results] == [(head, False, "main"),
                                                                  (head, True, "main")]


def test_real_time_smoke_with_sampler_thread() -> None:
    """Real clock and thread: energy matches the fake's power over the measured elapsed time."""
    import threading
    import time

    fake = carbonmonitor.FakeBackend({"cpu": 100.0})
    tracker = carbonmonitor.Tracker(backend=[fake], interval=0.05, quiet=True)
    started = time.monotonic()
    tracker.start()
    deadline = started + 10
    while len(tracker.series()[0]) < 4 and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    result = tracker.stop()
    elapsed = time.monotonic() - started
    assert result.sample_count >= 4
    assert result.duration_s <= elapsed
    assert result.energy_j == pytest.approx(100.0 * result.duration_s, rel=1e-9)
    assert not any(t.name == "carbonmonitor-sampler" for t in threading.enumerate())


def test_provider_inferred_from_region_is_recorded_as_such() -> None:
    with carbonmonitor.track(cloud_region="eu-west-1", backend="fake", quiet=True) as run:
        pass
    result = run.result
    assert result is not None
    assert result.options["cloud_provider"] == {"value": "aws",
                                                "source": "inferred from cloud_region"}
    assert result.location.cloud_provider == "aws" and result.pue.kind == "provider-fleet"


def test_public_names_survive_their_modules_being_imported_first() -> None:
    """A submodule named like a public function would replace it on the package once imported
    (``carbonmonitor.reaccount`` was such a case): in a fresh interpreter, import every module
    first, then every public name must still be what it was."""
    import subprocess
    import sys

    code = ("import importlib, pkgutil, carbonmonitor\n"
            "for m in pkgutil.walk_packages(carbonmonitor.__path__, 'carbonmonitor.'):\n"
            "    if not m.name.endswith('__main__'):  # that one runs the CLI\n"
            "        importlib.import_module(m.name)\n"
            "import types\n"
            "bad = [n for n in carbonmonitor.__all__ "
            "if isinstance(getattr(carbonmonitor, n), types.ModuleType)]\n"
            "print(bad)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
