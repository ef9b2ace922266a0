"""Train +experiment=cgan and +experiment=cgan_ring8 and measure their goals.

    python benchmarks/cgan_goals.py [--steps-digits N] [--steps-ring N] [--out DIR] [extra overrides...]

- digits: class accuracy, the fraction of G(z, c) that the platform's digit classifier labels c,
  on 100 samples per class (1000 in all); goal >= 0.90.
- ring8: for each class c, the fraction of G(z, c) whose nearest ring mode is mode c, and whether
  that sample lies within 3 sigma of it, on 300 samples per class; goal: every class on its own mode.
Prints the numbers and the wall time of each run (on this machine, shared or not).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train(experiment: str, run_dir: Path, overrides: list[str]) -> str:
    """Run the experiment as a user would; returns its wall and CPU time (CPU time is what a busy,
    shared machine does not inflate)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    start, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "gan_platform", f"+experiment={experiment}", f"hydra.run.dir={run_dir}",
                    "trainer.progress=false", *overrides], check=True, env=env, cwd=ROOT)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return f"{time.perf_counter() - start:.0f} s wall, {cpu:.0f} s CPU"


def digit_class_accuracy(run_dir: Path, per_class: int = 100) -> tuple[float, list[float]]:
    from gan_platform.evaluation.digit_classifier import load_digit_classifier
    from gan_platform.sample import load_generator

    trained = load_generator(run_dir)
    labels = torch.arange(10).repeat_interleave(per_class)
    x = trained.sample(len(labels), labels, seed=1)
    pred = load_digit_classifier(x.shape[-1]).predict(x)
    hits = (pred == labels).float()
    return hits.mean().item(), [hits[labels == c].mean().item() for c in range(10)]


def ring_modes_per_class(run_dir: Path, per_class: int = 300, sigma: float = 0.01) -> tuple[list[float], list[float]]:
    from gan_platform.data.mixtures import ring_means
    from gan_platform.sample import load_generator

    trained = load_generator(run_dir)
    means = ring_means(trained.num_classes)
    labels = torch.arange(trained.num_classes).repeat_interleave(per_class)
    x = trained.sample(len(labels), labels, seed=1)
    dist = torch.cdist(x, means)
    nearest = dist.argmin(1)
    own = (nearest == labels).float()
    close = own * (dist.gather(1, labels[:, None])[:, 0] < 3 * sigma).float()
    return ([own[labels == c].mean().item() for c in range(trained.num_classes)],
            [close[labels == c].mean().item() for c in range(trained.num_classes)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench_cgan"))
    parser.add_argument("--only", choices=("digits", "ring8"), default=None)
    parser.add_argument("overrides", nargs="*", help="extra overrides for both runs")
    args = parser.parse_args()
    out = Path(args.out)
    if args.only in (None, "digits"):
        secs = train("cgan", out / "digits", args.overrides)
        acc, per_class = digit_class_accuracy(out / "digits")
        print(f"cgan (digits): class accuracy {acc:.3f} on 1000 samples (goal >= 0.90), "
              f"worst class {min(per_class):.2f}; trained in {secs}")
        print("  per class: " + " ".join(f"{c}:{a:.2f}" for c, a in enumerate(per_class)))
    if args.only in (None, "ring8"):
        secs = train("cgan_ring8", out / "ring8", args.overrides)
        own, close = ring_modes_per_class(out / "ring8")
        print(f"cgan_ring8: samples on their own class's mode: min {min(own):.3f} over 8 classes "
              f"(within 3 sigma: min {min(close):.3f}); trained in {secs}")
        print("  per class (own mode): " + " ".join(f"{c}:{a:.2f}" for c, a in enumerate(own)))
        print("  per class (within 3 sigma): " + " ".join(f"{c}:{a:.2f}" for c, a in enumerate(close)))


if __name__ == "__main__":
    main()
