"""``import pynvml`` for a subprocess under test: the fake NVML of ``fake_nvml.py``, from JSON.

Put this directory on the child's ``PYTHONPATH`` and name a scenario file in
``FAKE_NVML_SCENARIO``; the child's ``import pynvml`` then gets this module, whose attributes
are replaced by those of ``FakeNvml.from_scenario(...).module`` (the same functions, constants
and error classes as in-process tests get). Without ``FAKE_NVML_SCENARIO`` the import fails
with ImportError, exactly as when nvidia-ml-py is not installed.

The scenario's clock is ``time.monotonic``; t = 0 is when this module is imported.

Scenario JSON (every key optional; GPU keys are :class:`fake_nvml.FakeGpu` fields, lists stand
for tuples)::

    {
      "driver_version": "550.54.15",
      "init_error": null,                  // or an NVML_ERROR_* code, e.g. 9 or 12
      "gpus": [
        {"name": "NVIDIA H100 80GB HBM3",
         "power": [[0, 80], [0.5, 650]],   // (t_s, watts) steps: the true power
         "energy_counter": true,           // false: TotalEnergyConsumption is NotSupported
         "counter_update_s": 0.1,          // sensor update period, s
         "power_average_s": 1.0,           // PowerUsage averaging window, s (0: one sample)
         "sample_duty": 0.25,              // fraction of each period the sensor sees
         "counter_offset_mj": 123456789,   // counter at t = 0, mJ
         "reset_at_s": null,               // driver reload: counter restarts from 0
         "lost_at_s": null,                // from then on: NVMLError_GpuIsLost
         "mig": false, "mig_instances": [],  // ["MIG-..."] when "mig": true
         "utilization": [[0, 95, 40]],     // (t_s, gpu %, memory %) steps
         "processes": [[4242, 1073741824, 90]],  // (pid, bytes, SM %)
         "power_limit_mw": 700000}
      ]
    }

(JSON has no comments: they are here to explain.) With ``FAKE_NVML_CALLS_OUT`` naming a file,
the child writes ``{"nvmlInit": 1, ...}`` (calls per NVML function) there when it exits.
"""

from __future__ import annotations

import atexit
import json
import os
from typing import Any

_scenario_path = os.environ.get("FAKE_NVML_SCENARIO")
if not _scenario_path:
    raise ImportError("No module named 'pynvml' (the fake in tests/fakes needs "
                      "FAKE_NVML_SCENARIO=<scenario.json>)", name="pynvml")

if __package__:  # imported as fakes.pynvml: not how it is meant to be used, but harmless
    from .fake_nvml import FakeNvml
else:
    from fake_nvml import FakeNvml  # type: ignore[import-not-found, no-redef]

with open(_scenario_path, encoding="utf-8") as _fh:
    _fake = FakeNvml.from_scenario(json.load(_fh))

globals().update({k: v for k, v in vars(_fake.module).items() if not k.startswith("__")})

_calls_out = os.environ.get("FAKE_NVML_CALLS_OUT")
if _calls_out:
    def _write_calls(path: str = _calls_out, fake: Any = _fake) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(dict(fake.calls), fh)

    atexit.register(_write_calls)
