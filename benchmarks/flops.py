"""The arithmetic of a training iteration, platform against the hand-written loop: a count, not a timing.

    python benchmarks/flops.py                           # ring8, digits, dcgan64, sngan32
    python benchmarks/flops.py --workloads digits --iterations 4

Wall-clock ratios on a shared machine move by more than the gaps they are meant to show
(throughput.py's pairs spread 0.7-1.4). Floating-point operations do not move: this script runs
the same iterations of both sides under `torch.utils.flop_counter.FlopCounterMode` and prints the
FLOPs per iteration of each, their ratio, and where they go (G or D, forward or backward). Where
both sides are bound by arithmetic (the convolutional workloads on a CPU), plain / platform FLOPs
is the most the platform can gain over the loop by doing the same algorithm with less waste; the
rest of a measured lead is Python and framework overhead, which is what dominates small networks
and GPUs (throughput.py, profile_step.py).

The platform's side is the real loop (`run.build_trainer`, the path `python -m gan_platform`
takes, with throughput.py's training-only settings); the plain side is `plain_loop.train`. The
counter sees matrix products and convolutions (forward and backward), not elementwise work.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def platform_flops(workload: str, iterations: int, batch_size: int) -> tuple[int, dict[str, int]]:
    """FLOPs of `iterations` iterations of the platform's own loop, after one untimed iteration."""
    from torch.utils.flop_counter import FlopCounterMode

    from gan_platform.run import build_trainer
    from throughput import compose_workload

    cfg = compose_workload(workload, iterations + 1, batch_size)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(cfg, run_dir)
        trainer.iteration()  # warm-up (lazy set-up stays out of the count)
        trainer.step += 1
        counter = FlopCounterMode(display=False)
        with counter:
            for _ in range(iterations):
                trainer.iteration()
                trainer.step += 1
        trainer.tracker.finish({})
        trainer.run_dir.unlock()
    return counter.get_total_flops(), _by_side(counter)


NETWORKS = {"G": ("DCGANGenerator", "MLPGenerator", "ResNetGenerator"),
            "D": ("DCGANDiscriminator", "MLPDiscriminator", "ResNetDiscriminator")}


def _by_side(counter) -> dict[str, int]:
    """FLOPs inside G and inside D (the counter names modules by their class), forward and backward."""
    table = counter.get_flop_counts()
    return {side: sum(sum(ops.values()) for module, ops in table.items() if module in names)
            for side, names in NETWORKS.items()}


def plain_flops(workload: str, iterations: int, batch_size: int) -> tuple[int, dict[str, int]]:
    """FLOPs of `iterations` iterations of plain_loop.train (one more first, uncounted)."""
    from torch.utils.flop_counter import FlopCounterMode

    import plain_loop

    plain_loop.train(workload, 1, batch_size)  # the same warm-up
    counter = FlopCounterMode(display=False)
    with counter:
        plain_loop.train(workload, iterations, batch_size)
    return counter.get_total_flops(), _by_side(counter)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default="ring8,digits,dcgan64,sngan32")
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    import torch

    from throughput import BATCH_SIZES

    torch.set_num_threads(1)
    print(f"FLOPs per iteration (matrix products and convolutions, forward and backward), {args.iterations} iterations counted")
    print(f"{'workload':<10}{'plain MFLOP':>14}{'platform MFLOP':>16}{'plain/platform':>16}   G / D: plain; platform")

    def per(flops: float) -> float:  # MFLOP per iteration
        return flops / args.iterations / 1e6

    def split(sides: dict[str, int]) -> str:
        return " / ".join(f"{per(v):.1f}" for v in sides.values())

    for workload in args.workloads.split(","):
        bs = BATCH_SIZES.get(workload, args.batch_size)
        plain, plain_sides = plain_flops(workload, args.iterations, bs)
        plat, sides = platform_flops(workload, args.iterations, bs)
        print(f"{workload:<10}{per(plain):>14.1f}{per(plat):>16.1f}{plain / plat:>16.3f}   "
              f"{split(plain_sides)}; {split(sides)}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    main()
