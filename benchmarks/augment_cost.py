"""What augmentation costs, against D's own forward and backward on the same batch, measured in one run.

For images of the digits workload (1 x 16 x 16, batch 32; `--shape 3 32 32` for colour), times one
call of each pipeline (none, DiffAugment, ADA's bgc at p = 0 and p = 0.5, and ADA's three stages
alone at p = 0.5) and one forward + backward of the DCGAN discriminator (width 32) through the
pipeline's output, and prints each as a ratio to D's forward + backward on the raw batch. The
timings interleave (one round of every case, repeated), so that a machine whose load changes during
the run slows every case alike; the median of the rounds is reported.

    OMP_NUM_THREADS=1 python benchmarks/augment_cost.py
    OMP_NUM_THREADS=1 python benchmarks/augment_cost.py --shape 3 32 32 --batch 64
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gan_platform.augment import AdaptiveAugment, DiffAugment, NoAugment
from gan_platform.augment.ada import STAGES
from gan_platform.models.dcgan import DCGANDiscriminator


def pipelines() -> dict[str, torch.nn.Module]:
    cases = {"none": NoAugment(), "diffaug": DiffAugment(), "ada p=0": AdaptiveAugment(initial_p=0.0),
             "ada p=0.5": AdaptiveAugment(initial_p=0.5)}
    for stage, names in STAGES.items():
        cases[f"ada p=0.5, {stage} only"] = AdaptiveAugment(initial_p=0.5, transforms=list(names))
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=int, nargs=3, default=[1, 16, 16])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    torch.manual_seed(0)
    D = DCGANDiscriminator(args.shape, width=32)
    x = torch.rand(args.batch, *args.shape) * 2 - 1
    cases = pipelines()
    times: dict[str, list[float]] = {name: [] for name in ["D fwd+bwd", *cases, *(f"{c} + D" for c in cases)]}

    def timed(name, fn):
        start = time.perf_counter()
        fn()
        times[name].append(time.perf_counter() - start)

    def d_through(pipeline):
        D.zero_grad(set_to_none=True)
        D(pipeline(x.requires_grad_(False))).sum().backward()

    for _ in range(args.rounds + 3):  # the first 3 rounds warm up and are dropped
        timed("D fwd+bwd", lambda: d_through(NoAugment()))
        for name, pipeline in cases.items():
            timed(name, lambda: pipeline(x))
            timed(f"{name} + D", lambda: d_through(pipeline))
    reference = statistics.median(times["D fwd+bwd"][3:])
    print(f"{args.batch} x {tuple(args.shape)}, DCGAN D width 32, median of {args.rounds} rounds; "
          f"D forward + backward = {reference * 1e3:.2f} ms = 1")
    for name in times:
        print(f"{name:<32} {statistics.median(times[name][3:]) / reference:6.2f}")


if __name__ == "__main__":
    main()
