"""Which process measures a distributed training, and the stop decision every process shares:
two real processes in a torch (gloo) process group on CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from carbonmonitor.integrations._distributed import agree, process_rank

# Each process joins a two-process group, then says stop in process 0 only.
PROCESS = """
import sys
import torch.distributed as dist
from carbonmonitor.integrations._distributed import agree, process_rank

rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method=sys.argv[2], rank=rank, world_size=2)
print(process_rank({"RANK": "7"}), agree(rank == 0, 2), agree(False, 2), flush=True)
dist.destroy_process_group()
"""


def test_a_stop_in_process_0_reaches_the_other_process(tmp_path: Path) -> None:
    init = (tmp_path / "group").as_uri()
    procs = [subprocess.Popen([sys.executable, "-c", PROCESS, str(rank), init],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    # the process group's rank wins over the environment; the decision is the same in both
    assert outputs == ["(0, 2) True False", "(1, 2) True False"]


def test_rank_from_launcher_variables() -> None:
    assert process_rank({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == (3, 4)
    assert process_rank({"KERAS_DISTRIBUTION_PROCESS_ID": "1",
                         "KERAS_DISTRIBUTION_NUM_PROCESSES": "2"}) == (1, 2)
    assert process_rank({"LOCAL_RANK": "2"}) == (2, 3)  # at least rank + 1 processes
    assert process_rank({"RANK": "first"}) == (0, 1)  # not a number: not a launcher's
    assert process_rank({}) == (0, 1)


def test_without_a_process_group_only_a_single_process_decides() -> None:
    assert agree(True, 1) is True and agree(False, 1) is False
    assert agree(True, 2) is None  # several processes and no way to tell them
