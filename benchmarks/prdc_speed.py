"""Precision/recall/density/coverage: this platform's chunked torch version against the `prdc`
reference package, on the same random features in the same process; prints both times, the
speed ratio and whether the four numbers agree.

    python benchmarks/prdc_speed.py                     # 10,000 real x 10,000 fake, 64-d, k=5
    python benchmarks/prdc_speed.py --n 5000 --dim 2048
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gan_platform

import argparse
import contextlib
import io
import time

import numpy as np
import torch

from gan_platform.evaluation.manifold import kth_neighbour_distance, precision_recall_density_coverage


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    import prdc

    rng = np.random.default_rng(0)
    real = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    fake = (rng.normal(size=(args.n, args.dim)) * 1.1 + 0.05).astype(np.float32)
    print(f"{args.n} x {args.n} points, {args.dim}-d, k={args.k}, torch threads {torch.get_num_threads()}, device {args.device}")

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        ref = prdc.compute_prdc(real, fake, args.k)
    t_ref = time.perf_counter() - start

    r, f = torch.from_numpy(real).to(args.device), torch.from_numpy(fake).to(args.device)
    precision_recall_density_coverage(r[:100], f[:100], args.k)  # warm-up
    start = time.perf_counter()
    ours = precision_recall_density_coverage(r, f, args.k)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_ours = time.perf_counter() - start

    # the evaluator computes the real k-NN radii once per run: an evaluation pays only for the rest
    radii = kth_neighbour_distance(r, args.k)
    start = time.perf_counter()
    precision_recall_density_coverage(r, f, args.k, real_radii=radii)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_eval = time.perf_counter() - start

    for name in ("precision", "recall", "density", "coverage"):
        print(f"  {name:<10} prdc {float(ref[name]):.6f}   gan_platform {ours[name]:.6f}")
    same = all(abs(float(ref[k]) - ours[k]) < 1e-6 for k in ours)
    print(f"prdc {t_ref:.2f} s, gan_platform {t_ours:.2f} s: {t_ref / t_ours:.1f}x faster; numbers agree: {same}")
    print(f"with the real radii cached (one evaluation in a run): {t_eval:.2f} s, {t_ref / t_eval:.1f}x faster than prdc")


if __name__ == "__main__":
    main()
