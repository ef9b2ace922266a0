"""What a run of several processes needs beyond Accelerate's data parallelism.

- `average_buffers`: G and D are DDP modules with ``broadcast_buffers=False`` (broadcasting
  BatchNorm statistics from rank 0 at every forward breaks the gradient penalty's double backward
  and is a collective per forward), so each rank's running statistics drift on its own shard.
  Before a checkpoint and an evaluation they are averaged over the ranks: every rank then samples
  from the same network, and the checkpoint holds statistics of all the data, not of rank 0's share.
- `replica_fingerprints`: the SHA-256 of each rank's parameters and buffers, gathered from every
  rank. After training all must be equal (DDP keeps the replicas in step); the trainer records them
  in summary.json (`replicas`) and says so loudly when they differ.
- `clean_scratch_dir`: ranks > 0 get a throwaway Hydra dir (only the main process writes the run
  dir); it is removed when they finish.
- `check_gpus_for_processes`: more processes on a machine than it has GPUs fails deep inside
  Accelerate ("invalid device ordinal": its barriers address cuda:<local rank>, for CPU processes
  too), and several processes on a machine with no GPU and without `ACCELERATE_USE_CPU=1` never
  join one process group: Accelerate quietly makes each a run of its own (N progress bars, N
  trainings). Both are refused up front, in one sentence, before Hydra writes a run dir.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterable, Mapping, Optional

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from torch import nn

from gan_platform.errors import ConfigError

SCRATCH_PREFIX = "gan_rank"


def _float_buffers(modules: Iterable[nn.Module]) -> list[torch.Tensor]:
    return [b for m in modules for b in m.buffers() if b.is_floating_point()]


@torch.no_grad()
def average_buffers(acc: Accelerator, modules: Iterable[nn.Module]) -> None:
    """Replace every floating-point buffer (BatchNorm running mean and variance) by its mean over
    the ranks: one all-reduce for all of them. A no-op in a single process."""
    if acc.num_processes < 2:
        return
    buffers = _float_buffers(acc.unwrap_model(m) for m in modules)
    if not buffers:
        return
    flat = torch.cat([b.detach().float().reshape(-1) for b in buffers])
    flat = acc.reduce(flat, reduction="mean")
    offset = 0
    for b in buffers:
        n = b.numel()
        b.copy_(flat[offset:offset + n].view_as(b))
        offset += n


def fingerprint(modules: dict[str, nn.Module]) -> str:
    """SHA-256 of the bytes of every parameter and buffer, in name order: equal iff bit-identical."""
    h = hashlib.sha256()
    for name in sorted(modules):
        for key, t in sorted(modules[name].state_dict().items()):
            h.update(f"{name}.{key}".encode())
            h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def replica_fingerprints(acc: Accelerator, modules: dict[str, nn.Module]) -> list[str]:
    """Every rank's `fingerprint`, in rank order (a collective: every rank calls it)."""
    mine = fingerprint({k: acc.unwrap_model(m) for k, m in modules.items()})
    return list(gather_object([mine])) if acc.num_processes > 1 else [mine]


def clean_scratch_dir(path: str | Path) -> None:
    """Remove a rank's scratch Hydra dir (only ever one this module's prefix names)."""
    p = Path(path)
    if p.name.startswith(SCRATCH_PREFIX) and p.is_dir():
        shutil.rmtree(p, ignore_errors=True)


def check_gpus_for_processes(env: Mapping[str, str] = os.environ, gpus: Optional[int] = None) -> None:
    """Refuse more processes on this machine than it has GPUs while GPUs are visible, and several
    processes with no GPU unless they are CPU processes (see the top)."""
    local = int(env.get("LOCAL_WORLD_SIZE", "1") or 1)
    world = int(env.get("WORLD_SIZE", "1") or 1)
    gpus = torch.cuda.device_count() if gpus is None else gpus
    use_cpu = str(env.get("ACCELERATE_USE_CPU", "")).lower() in ("1", "true", "yes")
    if world > 1 and gpus == 0 and not use_cpu:
        raise ConfigError(f"accelerate launch started {world} processes on a machine with no GPU, and without "
                          "ACCELERATE_USE_CPU=1 each would train a run of its own: put ACCELERATE_USE_CPU=1 in front of "
                          f"accelerate launch to train one run on {world} CPU processes.")
    if local <= 1 or gpus == 0 or local <= gpus:
        return
    if use_cpu:
        raise ConfigError(f"{local} CPU processes cannot share a machine with {gpus} visible GPU(s) "
                          "(Accelerate's barriers address cuda:<local rank>): hide the GPUs with "
                          "CUDA_VISIBLE_DEVICES= in front of accelerate launch.")
    raise ConfigError(f"accelerate launch started {local} processes on a machine with {gpus} GPU(s): "
                      f"use --num_processes {gpus} (one process a GPU), or hide the GPUs with "
                      "CUDA_VISIBLE_DEVICES= to train on CPU processes.")
