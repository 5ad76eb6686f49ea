"""The estimate decision table on fake /proc trees, one test per row, through the tracker.

Expected watts are computed here from the shipped CSVs read with the csv module.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from carbonmonitor import ManualClock, Tracker
from carbonmonitor.backends.estimate import match_model
from carbonmonitor.backends.host import ProcHost
from carbonmonitor.errors import ConfigError

DATA = Path(__file__).resolve().parents[2] / "src" / "carbonmonitor" / "data" / "hardware"
USER_HZ = 100


def rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


class FakeProc:
    """A procfs tree in tmp_path whose CPU times and memory the test moves forward."""

    def __init__(self, root: Path, model: str, cpus: int = 4, siblings: int | None = None,
                 cores: int | None = None) -> None:
        self.root = root
        self.cpus = cpus
        self.busy_ticks = 0
        self.idle_ticks = 0
        self.used_kb = 4_000_000
        blocks = []
        for i in range(cpus):
            blocks.append(f"processor\t: {i}\nmodel name\t: {model}\nphysical id\t: 0\n"
                          f"siblings\t: {siblings or cpus}\ncpu cores\t: {cores or cpus}\n")
        (root / "cpuinfo").write_text("\n".join(blocks))
        self.write()

    def write(self) -> None:
        # user nice system idle iowait irq softirq steal: busy split over user and system,
        # plus steal and iowait that must not count as work.
        user, system = self.busy_ticks * 3 // 4, self.busy_ticks - self.busy_ticks * 3 // 4
        lines = [f"cpu  {user} 0 {system} {self.idle_ticks} 7 0 0 11 0 0"]
        lines += [f"cpu{i} 0 0 0 0 0 0 0 0 0 0" for i in range(self.cpus)]
        (self.root / "stat").write_text("\n".join(lines) + "\nintr 0\n")
        (self.root / "meminfo").write_text(
            f"MemTotal:       16000000 kB\nMemFree:         1000000 kB\n"
            f"MemAvailable:   {16_000_000 - self.used_kb} kB\n")

    def run(self, seconds: float, utilisation: float) -> None:
        total = int(round(seconds * self.cpus * USER_HZ))
        self.busy_ticks += int(round(total * utilisation))
        self.idle_ticks += total - int(round(total * utilisation))
        self.write()


def measure(proc: FakeProc, seconds: float, utilisation: float, **options: object):  # type: ignore[no-untyped-def]
    clock = ManualClock()
    tracker = Tracker(backend="estimate", procfs_root=proc.root, clock=clock,
                      sampling="manual", quiet=True, **options)
    tracker.start()
    proc.run(seconds, utilisation)
    clock.advance(seconds)
    return tracker.stop()


def cpu_figure(result):  # type: ignore[no-untyped-def]
    return next(f for f in result.energy if f.domain == "cpu")


def test_row_ccf_vcpu_cloud_provider_and_known_microarchitecture(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path, "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", cpus=4)
    result = measure(proc, 10, 0.5, cloud_provider="aws")
    arch = next(r["microarchitecture"] for r in rows("cpu_microarchitecture_ccf.csv")
                if r["cpu_model"] == "8259CL")
    coef = next(r for r in rows("ccf_cpu_power_coefficients.csv")
                if r["provider"] == "aws" and r["microarchitecture"] == arch)
    lo, hi = float(coef["min_watts_per_vcpu"]), float(coef["max_watts_per_vcpu"])
    expected_w = 4 * (lo + 0.5 * (hi - lo))
    fig = cpu_figure(result)
    assert fig.energy_j == pytest.approx(expected_w * 10, rel=1e-9)
    assert fig.uncertainty.rule == "model-ccf-v1"
    assert fig.uncertainty.low < fig.energy_j < fig.uncertainty.high
    assert "cpu-model-unknown" not in {f.code for f in result.flags}


def test_row_tdp_share_known_model_scaled_by_thread_share(tmp_path: Path) -> None:
    # A 4-vCPU VM on a 20-core (40-thread) Gold 6148: it owns 4/40 of the package.
    proc = FakeProc(tmp_path, "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", cpus=4, siblings=4,
                    cores=2)
    result = measure(proc, 20, 0.25)
    tdp = float(next(r["TDP"] for r in rows("cpu_tdp_codecarbon.csv")
                     if r["Name"] == "Intel Xeon Gold 6148"))
    cores = int(next(r["n_cores"] for r in rows("cpu_tdp_greenalgorithms.csv")
                     if r["model"] == "Xeon Gold 6148"))
    share = 4 / (cores * 2)  # threads per core from cpuinfo: siblings 4 / cpu cores 2
    fig = cpu_figure(result)
    assert fig.energy_j == pytest.approx(tdp * share * 0.25 * 20, rel=1e-9)
    assert fig.uncertainty.rule == "model-tdp-v1"
    assert "Gold 6148" in fig.detail


def test_row_ccf_provider_mean_when_microarchitecture_unknown(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path, "AMD EPYC", cpus=2)
    result = measure(proc, 10, 1.0, cloud_provider="gcp")
    gcp = [r for r in rows("ccf_cpu_power_coefficients.csv") if r["provider"] == "gcp"]
    watts = 2 * statistics.median(float(r["max_watts_per_vcpu"]) for r in gcp)
    fig = cpu_figure(result)
    assert fig.energy_j == pytest.approx(watts * 10, rel=1e-9)
    assert fig.uncertainty.rule == "model-ccf-mean-v1"


def test_row_default_for_masked_model_is_flagged_with_widest_interval(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path, "Intel(R) Xeon(R) Processor", cpus=2)
    result = measure(proc, 10, 0.0)
    every = rows("ccf_cpu_power_coefficients.csv")
    idle_w = 2 * statistics.median(float(r["min_watts_per_vcpu"]) for r in every)
    fig = cpu_figure(result)
    assert fig.energy_j == pytest.approx(idle_w * 10, rel=1e-9)
    assert fig.uncertainty.low == pytest.approx(
        2 * min(float(r["min_watts_per_vcpu"]) for r in every) * 10, rel=1e-9)
    assert fig.uncertainty.high == pytest.approx(
        2 * max(float(r["min_watts_per_vcpu"]) for r in every) * 10, rel=1e-9)
    assert "cpu-model-unknown" in {f.code for f in result.flags}


def test_memory_uses_memory_in_use_not_installed_capacity(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path, "AMD EPYC", cpus=2)
    proc.used_kb = 2_000_000  # 2 GB in use of 16 GB installed
    proc.write()
    result = measure(proc, 100, 0.0)
    coef = float(rows("memory_power.csv")[0]["watts_per_gb"])
    mem = next(f for f in result.energy if f.domain == "memory")
    assert mem.energy_j == pytest.approx(2_000_000 * 1024 / 1e9 * coef * 100, rel=1e-9)


def test_steal_and_iowait_are_not_work(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path, "AMD EPYC", cpus=2)
    first = ProcHost(tmp_path).cpu_times()
    proc.run(1, 0.5)
    assert ProcHost(tmp_path).cpu_times().busy_s - first.busy_s == pytest.approx(1.0)


def test_unreadable_proc_makes_estimate_unavailable_with_fix(tmp_path: Path) -> None:
    from carbonmonitor.backends.base import ProbeContext
    from carbonmonitor.backends.estimate import EstimateFactory
    from carbonmonitor.errors import BackendUnavailable
    from carbonmonitor.options import resolve

    FakeProc(tmp_path, "AMD EPYC")

    def deny(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    context = ProbeContext(resolve({"procfs_root": tmp_path}, environ={}), ManualClock())
    with pytest.raises(BackendUnavailable) as err:
        EstimateFactory().probe(context, host=ProcHost(tmp_path, read_text=deny))
    assert "Permission denied" in err.value.reason
    assert "procfs_root" in err.value.fix


def test_named_backend_that_cannot_probe_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="constant.*constant_power"):
        Tracker(backend="constant")


@pytest.mark.parametrize("model, expected", [
    ("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", "Intel Xeon Gold 6148"),
    ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 7763"),
    ("AMD EPYC", None),
    ("Intel(R) Xeon(R) Processor", None),
    ("", None),
])
def test_model_matching(model: str, expected: str | None) -> None:
    names = tuple(r["Name"] for r in rows("cpu_tdp_codecarbon.csv"))
    assert match_model(model, names) == expected


def test_psutil_host_path_used_on_macos_and_windows_reads_this_machine() -> None:
    """The psutil reader is exercised here on Linux; on macOS/Windows it is the only reader."""
    from carbonmonitor.backends.base import ProbeContext
    from carbonmonitor.backends.estimate import EstimateFactory
    from carbonmonitor.backends.host import PsutilHost
    from carbonmonitor.options import resolve

    host = PsutilHost()
    assert host.cpu_times().busy_s > 0 and host.cpu_times().n_cpus >= 1
    assert 0 < host.memory_used_bytes() < (host.memory_total_bytes() or 0)
    backend = EstimateFactory().probe(ProbeContext(resolve({}, environ={}), ManualClock()),
                                      host=host)
    assert {d.key for d in backend.domains()} == {"cpu", "memory"}
    first = backend.read(0.0)
    later = backend.read(1.0)
    assert first["cpu"].energy_j == 0 and later["cpu"].energy_j >= 0
    assert later["memory"].energy_j > 0


def test_explicit_procfs_root_without_stat_fails_with_its_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="procfs_root"):
        Tracker(procfs_root=tmp_path, quiet=True)


def test_approximate_model_match_is_flagged(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path, "Intel(R) Xeon(R) Gold 6148 Engineering Sample CPU @ 2.40GHz",
                    cpus=4)
    result = measure(proc, 1, 0.5)
    assert cpu_figure(result).uncertainty.rule == "model-tdp-v1"
    assert "cpu-model-approximate" in {f.code for f in result.flags}
    exact = measure(FakeProc(tmp_path, "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", cpus=4), 1, 0.5)
    assert "cpu-model-approximate" not in {f.code for f in exact.flags}


def test_cpu_utilisation_is_stored_beside_energy(tmp_path: Path) -> None:
    import carbonmonitor

    proc = FakeProc(tmp_path, "AMD EPYC", cpus=2)
    clock = ManualClock()
    db = tmp_path / "runs.db"
    tracker = Tracker(backend="estimate", procfs_root=proc.root, clock=clock,
                      sampling="manual", quiet=True, db=str(db))
    tracker.start()
    for utilisation in (0.25, 0.5, 1.0):
        proc.run(10, utilisation)
        clock.advance(10)
        tracker.tick()
    result = tracker.stop()
    series = carbonmonitor.series(result.identity.run_id, db=db)
    assert series.utilisation_pct["cpu"][1:] == pytest.approx([25.0, 50.0, 100.0])
    first = series.utilisation_pct["cpu"][0]
    assert first != first  # NaN: no interval before the first point
    assert "memory" not in series.utilisation_pct
