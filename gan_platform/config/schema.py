"""The structured config schema: typed fields of the fixed-shape groups.

Dataclasses stored in Hydra's ConfigStore as `schema` (the first entry of conf/config.yaml's
defaults list): Hydra rejects a misspelt key or a value of the wrong type in these groups while
composing, before any work. Groups whose keys depend on the choice (model, dataset, optimizer, task,
tracker, eval) are untyped here and checked against their `_target_` in checks.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

PRECISIONS = ("no", "bf16", "fp16")


@dataclass
class EMAConfig:
    decay: float = 0.0
    half_life_images: Optional[float] = None
    rampup: Optional[float] = None
    raw_samples: bool = False


@dataclass
class TrainerConfig:
    steps: int = 2000
    batch_size: int = 64
    d_steps: int = 1
    g_steps: int = 1
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    grid_size: int = 64
    resume: Optional[str] = None
    init_from: Optional[str] = None
    precision: str = "no"
    lr_decay: str = "none"
    lr_decay_start: float = 0.5
    progress: bool = True
    compile: bool = False
    compile_mode: str = "default"
    compile_backend: str = "inductor"
    channels_last: bool = False
    ema: EMAConfig = field(default_factory=EMAConfig)
    micro_batch: Optional[int] = None  # gradient accumulation: rounds of this many samples, one step (None: the batch)


@dataclass
class LossConfig:
    name: str = MISSING
    gradient_penalty: float = 0.0
    weight_clip: float = 0.0
    r1_gamma: float = 0.0   # gamma/2 E||grad_x D(x)||^2 on real data; 0 = off
    r2_gamma: float = 0.0   # the same on fakes
    reg_every: int = 1      # lazy regularisation: R1/R2 every k-th D step, scaled by k
    path_length: float = 0.0       # StyleGAN2's path-length regulariser of G (its weight; 2 in the paper); 0 = off
    path_length_every: int = 4     # ... every k-th G step, scaled by k
    path_length_decay: float = 0.01  # the decay of its running mean a
    orthogonal: float = 0.0        # BigGAN's orthogonal regularisation of G (beta; 1e-4 in the paper); 0 = off


@dataclass
class Config:
    # Untyped here: every task brings its own keys (conf/task/*.yaml), checked in check_ranges.
    task: Any = MISSING
    model: Any = MISSING
    loss: LossConfig = field(default_factory=LossConfig)
    dataset: Any = MISSING
    optimizer: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: Any = MISSING
    tracker: Any = MISSING
    augment: Any = None
    schedules: Any = field(default_factory=dict)  # values moved with the images seen (training/schedules.py)
    name: str = "default"
    seed: int = 0
    report: bool = True


def register_schema() -> None:
    """Make `schema` available to the defaults list of conf/config.yaml."""
    ConfigStore.instance().store(name="schema", node=Config)


register_schema()
