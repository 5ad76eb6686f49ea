"""Distributed training: which process measures, and one stop decision for every process.

With several processes (``torchrun``, Lightning DDP, ``accelerate launch``, ...), each process
runs the callback. Only process 0 measures: the energy counters are the node's, so a tracker
in every process would count the same GPUs once per process and write one run each. A budget
stop must then reach every process at the same point, or the processes that go on wait forever
for the ones that stopped (the next gradient all-reduce). :func:`agree` makes the decision
the same everywhere through the torch process group.

Nothing is imported here: torch is looked up in ``sys.modules`` (a program that never
imported ``torch.distributed`` has no process group).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

# Launchers' variables, most specific first: torchrun (and accelerate, DeepSpeed, SLURM via
# torchrun), keras.distribution.initialize, then a node-local rank alone.
_ENV_RANKS = (("RANK", "WORLD_SIZE"),
              ("KERAS_DISTRIBUTION_PROCESS_ID", "KERAS_DISTRIBUTION_NUM_PROCESSES"),
              ("LOCAL_RANK", "LOCAL_WORLD_SIZE"))
# The device a process group's collectives need, by backend (gloo and mpi take CPU tensors).
_BACKEND_DEVICES = {"nccl": "cuda", "xccl": "xpu", "hccl": "npu", "xla": "xla"}


def process_rank(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``(rank, world_size)`` of this process: the torch process group's when there is one,
    else the launcher's environment variables, else ``(0, 1)``.

    Example:
        >>> process_rank({"RANK": "1", "WORLD_SIZE": "4"})
        (1, 4)
        >>> process_rank({})
        (0, 1)
    """
    dist = _process_group()
    if dist is not None:
        return int(dist.get_rank()), int(dist.get_world_size())
    env = os.environ if environ is None else environ
    for rank_name, world_name in _ENV_RANKS:
        rank = _whole(env.get(rank_name))
        if rank is not None:
            world = _whole(env.get(world_name)) or 1
            return rank, max(world, rank + 1)
    return 0, 1


def agree(stop: bool, world_size: int, *, device: Any = None) -> bool | None:
    """The stop decision of every process: True in all of them when any one says stop.

    Only process 0 measures, so only it can say stop; every process must call this at the same
    point of training (it is a collective). One process alone returns ``stop``. ``None``: there
    are several processes and no torch process group to agree through, so nobody must stop.

    Args:
        stop: this process's decision.
        world_size: the number of processes, as the framework counts them.
        device: where the flag's tensor goes (default: the device the group's backend needs).
    """
    dist = _process_group()
    if dist is None or dist.get_world_size() <= 1:
        return stop if world_size <= 1 else None
    import torch

    if device is None:
        backend = str(dist.get_backend())
        device = next((d for b, d in _BACKEND_DEVICES.items() if b in backend
                       and "gloo" not in backend), "cpu")
        if device == "cuda":
            device = torch.device("cuda", torch.cuda.current_device())
    flag = torch.tensor([1 if stop else 0], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def share_note(world_size: int) -> str:
    """The work note of a distributed run measured in process 0."""
    return (f"distributed: measured in process 0 of {world_size}; samples and tokens are "
            "process 0's share of the data, steps are optimizer steps (the same in every "
            "process)")


def _process_group() -> Any:
    """``torch.distributed`` when a process group is initialised, else None."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist


def _whole(text: str | None) -> int | None:
    try:
        value = int(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None
