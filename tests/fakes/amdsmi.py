"""``import amdsmi`` for a subprocess under test: the fake AMD SMI of ``fake_amdsmi.py``.

Put this directory on the child's ``PYTHONPATH`` and name a scenario file in
``FAKE_AMDSMI_SCENARIO``: ``{"rocm": [7, 0, 2], "gpus": [{...FakeGpu fields...}]}`` (lists
stand for tuples). Without it the import fails with ImportError, exactly as when the amdsmi
package is not installed. The scenario's clock is ``time.monotonic``, t = 0 at import.
"""

from __future__ import annotations

import json
import os

_scenario_path = os.environ.get("FAKE_AMDSMI_SCENARIO")
if not _scenario_path:
    raise ImportError("No module named 'amdsmi' (the fake in tests/fakes needs "
                      "FAKE_AMDSMI_SCENARIO=<scenario.json>)", name="amdsmi")

if __package__:
    from .fake_amdsmi import FakeAmdsmi, FakeGpu
else:
    from fake_amdsmi import FakeAmdsmi, FakeGpu  # type: ignore[import-not-found, no-redef]

with open(_scenario_path, encoding="utf-8") as _fh:
    _scenario = json.load(_fh)

_fake = FakeAmdsmi([FakeGpu(**gpu) for gpu in _scenario.get("gpus", [])],
                   rocm=tuple(_scenario.get("rocm", (7, 0, 2))),  # type: ignore[arg-type]
                   init_error=_scenario.get("init_error"))
globals().update({k: v for k, v in vars(_fake.module).items() if not k.startswith("__")})
