"""``carbonmonitor devices``: every backend with what it measures here, or the reason and fix."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import clean_env, run_cli


def make_powercap(root: Path) -> None:
    zone = root / "class" / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("12345\n")
    (zone / "max_energy_range_uj").write_text("262143999938\n")


def test_devices_json_lists_usable_and_unusable_backends(tmp_path: Path) -> None:
    done = run_cli(["devices", "--json", "--sysfs-root", str(tmp_path)])
    assert done.returncode == 0, done.stderr
    rows = {row["backend"]: row for row in json.loads(done.stdout)}
    assert set(rows) >= {"rapl", "estimate", "constant", "fake"}
    assert rows["rapl"]["usable"] is False and "modprobe" in rows["rapl"]["fix"]
    assert rows["estimate"]["usable"] is True
    assert {d["key"] for d in rows["estimate"]["domains"]} == {"cpu", "memory"}
    assert rows["constant"]["in_auto"] is False and "constant_power" in rows["constant"]["fix"]


def test_devices_sees_rapl_under_the_given_sysfs_root(tmp_path: Path) -> None:
    make_powercap(tmp_path)
    done = run_cli(["devices", "--json"], env=clean_env(CARBONMONITOR_SYSFS_ROOT=str(tmp_path)))
    rows = {row["backend"]: row for row in json.loads(done.stdout)}
    assert rows["rapl"]["usable"] is True
    assert rows["rapl"]["domains"][0]["key"] == "cpu:package-0"
    assert rows["rapl"]["poll_period_s"] > 1.0


def test_devices_text_gives_a_fix_for_each_unusable_backend(tmp_path: Path) -> None:
    done = run_cli(["devices", "--sysfs-root", str(tmp_path)])
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    for i, line in enumerate(lines):
        if "not usable" in line:
            assert lines[i + 1].strip().startswith("fix: ")
    assert any(line.startswith("estimate: usable") for line in lines)


def test_devices_bad_option_is_one_line_exit_2() -> None:
    done = run_cli(["devices", "--interval", "-1"])
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--interval" in done.stderr


FAKES = Path(__file__).resolve().parents[1] / "fakes"


def test_devices_shows_nvidia_gpus_through_a_fake_nvml(tmp_path: Path) -> None:
    scenario = tmp_path / "gpus.json"
    scenario.write_text(json.dumps({"gpus": [
        {"name": "NVIDIA H100 80GB HBM3", "power": 120},
        {"name": "Tesla P100-PCIE-16GB", "energy_counter": False, "power": 40}]}))
    env = clean_env(PYTHONPATH=str(FAKES), FAKE_NVML_SCENARIO=str(scenario),
                    CUDA_VISIBLE_DEVICES="0,1")
    done = run_cli(["devices", "--sysfs-root", str(tmp_path)], env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    start = lines.index("nvml: usable")
    assert lines[start + 1].split()[:2] == ["gpu:0", "counter"]
    assert "NVIDIA H100 80GB HBM3" in lines[start + 1]
    assert lines[start + 2].split()[:2] == ["gpu:1", "power-integration"]
    assert "Tesla P100-PCIE-16GB" in lines[start + 2]


def test_devices_says_how_to_get_nvml(tmp_path: Path) -> None:
    done = run_cli(["devices", "--sysfs-root", str(tmp_path)],
                   env=clean_env(PYTHONPATH=str(FAKES)))  # the shim, with no scenario: no NVML
    assert done.returncode == 0, done.stderr
    assert ("nvml: not usable: the NVIDIA backend needs the nvidia-ml-py package"
            in done.stdout.splitlines())
    assert '  fix: pip install "carbonmonitor[nvidia]" (installs nvidia-ml-py)' in done.stdout


def section(stdout: str, backend: str) -> list[str]:
    """The lines ``devices`` prints for one backend: its status line and what follows it."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{backend}: "))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")),
               len(lines))
    return lines[start:end]


def test_devices_shows_amd_gpus_through_a_fake_amdsmi(tmp_path: Path) -> None:
    scenario = tmp_path / "amd.json"
    scenario.write_text(json.dumps({"gpus": [{"name": "AMD Instinct MI300X", "power": 400}]}))
    done = run_cli(["devices", "--sysfs-root", str(tmp_path)],
                   env=clean_env(PYTHONPATH=str(FAKES), FAKE_AMDSMI_SCENARIO=str(scenario)))
    assert done.returncode == 0, done.stderr
    status, gpu = section(done.stdout, "amdsmi")
    assert status == "amdsmi: usable"
    assert gpu.split()[:2] == ["gpu:0", "counter"] and "AMD Instinct MI300X" in gpu


def test_devices_says_how_to_get_amdsmi(tmp_path: Path) -> None:
    done = run_cli(["devices", "--sysfs-root", str(tmp_path)])
    assert section(done.stdout, "amdsmi") == [
        "amdsmi: not usable: the AMD backend needs the amdsmi package",
        '  fix: pip install "carbonmonitor[amd]" (installs amdsmi), or the copy that matches '
        "your ROCm: pip install /opt/rocm/share/amd_smi"]


def test_devices_says_apple_is_for_macs(tmp_path: Path) -> None:
    done = run_cli(["devices", "--sysfs-root", str(tmp_path)])
    assert section(done.stdout, "apple") == [
        "apple: not usable: IOReport energy counters exist only on macOS (this is linux)",
        "  fix: nothing to do: other backends (rapl, nvml, estimate) measure here"]


def test_devices_shows_jetson_rails_under_the_given_sysfs_root(tmp_path: Path) -> None:
    from fakes.fake_hwmon import FakeHwmon, orin_nx

    orin_nx(FakeHwmon(tmp_path))
    done = run_cli(["devices", "--sysfs-root", str(tmp_path)])
    assert done.returncode == 0, done.stderr
    status, rail = section(done.stdout, "hwmon")
    assert status == "hwmon: usable"
    assert rail.split()[:2] == ["machine:VDD_IN", "power-integration"]


def test_devices_says_where_hwmon_looked(tmp_path: Path) -> None:
    done = run_cli(["devices", "--sysfs-root", str(tmp_path)])
    status, fix = section(done.stdout, "hwmon")
    assert status == f"hwmon: not usable: no hwmon devices: {tmp_path}/class/hwmon does not exist"
    assert fix.startswith("  fix: on a Jetson (JetPack 5 or newer) the ina3221 driver")
