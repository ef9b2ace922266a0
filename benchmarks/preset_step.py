"""Images per second and peak memory of a preset's training iteration, as the platform trains it.

    python benchmarks/preset_step.py +experiment=stylegan2_cifar10                # on a GPU: batch 64
    python benchmarks/preset_step.py +experiment=biggan_cifar10 --seconds 20
    python benchmarks/preset_step.py +experiment=stylegan2_cifar10 --batch-size 2 --seconds 0 --warmup 1   # a CPU check

The run is built as `python -m gan_platform +experiment=NAME` builds it (`run.build_trainer`: the
preset's networks, losses, phases, schedules, augmentation, G's average and Accelerate), on a
stand-in for the preset's dataset: random 32 x 32 (or `--side`) RGB images in ten class folders,
packed with `gan-dataset` into the zip the preset reads, since CIFAR-10 itself is not on the
machine. Whole iterations (every D step, the G step, the EMA update) are timed after `--warmup`
untimed ones, for at least `--seconds`; evaluation, samples and checkpoints are off. Images/s counts
the real images of an iteration's batch (`trainer.batch_size`); peak memory is
torch.cuda.max_memory_allocated on a GPU (the peak RSS on a CPU). Further Hydra overrides pass
through (e.g. `trainer.micro_batch=16`, `precision=bf16`).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stand_in(folder: Path, side: int, count: int) -> Path:
    """`count` random side x side RGB PNGs in ten class folders, packed by gan-dataset; the zip's path."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        cls = folder / "images" / f"class_{i % 10}"
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(cls / f"{i:05d}.png")
    out = folder / "stand_in.zip"
    subprocess.run([sys.executable, "-m", "gan_platform.data.pack", str(folder / "images"), str(out)],
                   check=True, capture_output=True, text=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("overrides", nargs="+", help="Hydra overrides, the preset first (+experiment=stylegan2_cifar10)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--side", type=int, default=32)
    p.add_argument("--images", type=int, default=640, help="images in the stand-in dataset")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds (at least one iteration)")
    args = p.parse_args()

    import torch
    from hydra import compose, initialize_config_module

    from gan_platform.run import build_trainer

    with tempfile.TemporaryDirectory() as tmp:
        data = stand_in(Path(tmp), args.side, args.images)
        overrides = [*args.overrides, f"dataset.path={data}", "tracker=none", "report=false", "trainer.progress=false",
                     "trainer.sample_every=0", "trainer.checkpoint_every=0", "eval.enabled=false",
                     f"trainer.batch_size={args.batch_size}", "trainer.steps=1000000"]
        with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        trainer = build_trainer(cfg, Path(tmp) / "run")
        cuda = torch.cuda.is_available()
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        params = {side: sum(q.numel() for q in net.parameters()) / 1e6 for side, net in trainer.task.modules.items()
                  if side in ("generator", "discriminator")}
        state = {"n": 0, "begin": None}
        plain_iteration = trainer.iteration

        def iteration() -> None:
            if state["n"] == args.warmup:
                sync()
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                state["begin"] = time.perf_counter()
            elif state["begin"] is not None and "seconds" not in state and time.perf_counter() - state["begin"] >= args.seconds:
                sync()
                state["seconds"], state["timed"] = time.perf_counter() - state["begin"], state["n"] - args.warmup
                trainer.cfg.steps = trainer.step + 1  # this iteration (untimed) is the run's last
            plain_iteration()
            state["n"] += 1

        trainer.iteration = iteration
        summary = trainer.fit()
        if summary["status"] != "finished":
            sys.exit(f"the run ended {summary['status']}: {summary.get('error')}")
    timed = state["timed"]
    peak = (torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    device = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"{cfg.name}: G {params.get('generator', 0):.2f}M, D {params.get('discriminator', 0):.2f}M parameters, "
          f"batch {args.batch_size}, {cfg.trainer.d_steps} D step(s) an iteration, precision {cfg.trainer.precision}, "
          f"on {device}, torch {torch.__version__}")
    print(f"images/s {timed * args.batch_size / state['seconds']:.1f}  ms/iteration {1000 * state['seconds'] / timed:.1f}  "
          f"iterations {timed}  peak MiB {peak:.0f}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
