"""Mode collapse on stacked digits (1,000 modes, the Stacked-MNIST protocol) beside the published rows.

Trains each variant on `dataset=stacked_digits` (three bundled digits as the three channels of one
16x16 image) as real runs of `python -m gan_platform`, then measures the last checkpoint with
`python -m gan_platform.evaluate --num-samples 26000 --metrics collapse`: modes covered (out of
1,000, each channel read by the digit classifier) and KL(mode histogram || uniform), mean +- std
over seeds, next to the PacGAN paper's table (DCGAN 99 / 3.4, VEEGAN 150 / 2.95, PacDCGAN2 1000 /
0.06, WGAN-GP 995 / 0.148). Only samples whose three channels are all read with probability >= 0.95
count (collapse.STACKED_CONFIDENCE), so blurred digits lose modes as collapse does; the share of
such samples is printed as the third number. The papers counted every sample by its argmax reading;
that count is printed beside ("argmax: modes / KL"). The real triples themselves score 1,000 / 0.033
with 78.9% read surely (`--real`): the ceiling a perfect generator reaches under this protocol.

    python benchmarks/stacked_digits.py                                   # every variant x 3 seeds, 20,000 steps
    python benchmarks/stacked_digits.py --steps 500 --seeds 1 --jobs 2    # a short run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The non-saturating DCGAN, the same with D judging packs (PacGAN2, PacGAN4), and R3GAN's recipe.
VARIANTS = {
    "dcgan": ["+experiment=nsgan", "dataset=stacked_digits"],
    "pacgan2": ["+experiment=nsgan", "dataset=stacked_digits", "model.discriminator.pack=2"],
    "pacgan4": ["+experiment=nsgan", "dataset=stacked_digits", "model.discriminator.pack=4"],
    # R3GAN's recipe (RpGAN + R1 + R2, with G's moving average): the `r3gan` bundle
    "r3gan": ["+experiment=r3gan", "dataset=stacked_digits"],
    # the same at 5x the learning rate, decaying linearly to 0 over the second half
    "r3gan_lr": ["+experiment=r3gan", "dataset=stacked_digits", "optimizer.lr=1e-3", "trainer.lr_decay=linear"],
}
PUBLISHED = [("DCGAN", "99 / 3.4"), ("VEEGAN", "150 / 2.95"), ("PacDCGAN2", "1000 / 0.06"), ("WGAN-GP", "995 / 0.148")]


def run_one(variant: str, seed: int, steps: int, samples: int, workdir: Path, extra: list[str]) -> dict:
    """One training run and its evaluation; the final collapse numbers and the wall time."""
    run_dir = workdir / f"{variant}_s{seed}"
    env = {**os.environ, "GAN_RUN_DIR": str(run_dir), "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    train = [sys.executable, "-m", "gan_platform", *VARIANTS[variant], f"seed={seed}", f"trainer.steps={steps}",
             "trainer.progress=false", "tracker=none", "report=false", "eval.every=0", f"name=stacked_{variant}", *extra]
    proc = subprocess.run(train, cwd=workdir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"variant": variant, "seed": seed, "error": proc.stderr[-500:]}
    evaluate = [sys.executable, "-m", "gan_platform.evaluate", str(run_dir), "--num-samples", str(samples),
                "--metrics", "collapse", "--name", "stacked"]
    proc = subprocess.run(evaluate, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return {"variant": variant, "seed": seed, "error": proc.stderr[-500:]}
    metrics = json.loads((run_dir / "eval_stacked.json").read_text())["metrics"]
    return {"variant": variant, "seed": seed, "steps": steps, "wall_s": round(wall, 1),
            "modes": metrics["collapse/modes"]["mean"], "reverse_kl": metrics["collapse/reverse_kl"]["mean"],
            "high_quality": metrics["collapse/high_quality"]["mean"],
            "argmax_modes": metrics["collapse/argmax_modes"]["mean"],
            "argmax_reverse_kl": metrics["collapse/argmax_reverse_kl"]["mean"]}


def real_ceiling(samples: int, seed: int = 7) -> dict:
    """The real triples measured as a generator's samples are: what a perfect generator scores."""
    sys.path.insert(0, str(ROOT))
    from gan_platform.data.stacked_digits import StackedDigits
    from gan_platform.evaluation.collapse import StackedDigitModes
    from gan_platform.evaluation.features import DigitFeatures

    real, _ = StackedDigits(16, samples, seed=seed).all()
    _, digits, confidence = DigitFeatures(3, 16).features_digits_and_confidence(real)
    modes = StackedDigitModes()
    modes.update(digits, confidence)
    res = modes.compute()
    return {"variant": "real", "seed": seed, **res}


def _cell(rows: list[dict]) -> str:
    ok = [r for r in rows if "modes" in r]
    if not ok:
        return "failed"

    def ms(key: str, fmt: str) -> str:
        vals = [float(r[key]) for r in ok]
        return format(statistics.mean(vals), fmt) + (f"+-{format(statistics.pstdev(vals), fmt)}" if len(vals) > 1 else "")

    return (f"{ms('modes', '.1f')} / {ms('reverse_kl', '.3f')} / {ms('high_quality', '.1f')}%   "
            f"argmax: {ms('argmax_modes', '.1f')} / {ms('argmax_reverse_kl', '.3f')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20000, help="training steps of every run")
    ap.add_argument("--samples", type=int, default=26000, help="samples of the final evaluation")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (one CPU thread each)")
    ap.add_argument("--out", type=Path, default=None, help="write the raw results here as JSON")
    ap.add_argument("--real", action="store_true", help="also measure the real triples (the ceiling)")
    ap.add_argument("extra", nargs="*", help="more overrides for every run")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="stacked_digits_"))
    jobs = [(v, s) for v in args.variants for s in range(args.seeds)]
    print(f"{len(jobs)} runs of {args.steps} steps in {workdir}", flush=True)

    def go(job):
        r = run_one(job[0], job[1], args.steps, args.samples, workdir, args.extra)
        print(json.dumps(r), flush=True)
        return r

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(go, jobs))
    print(f"\nmodes (of 1,000) / KL to uniform / % read surely on all 3 channels; argmax: every sample counted "
          f"(the papers' protocol); {args.samples} samples, {args.steps} steps, {args.seeds} seed(s)")
    for v in args.variants:
        print(f"{v:<12}{_cell([r for r in results if r['variant'] == v]):<84}this platform")
    if args.real:
        ceiling = real_ceiling(args.samples)
        results.append(ceiling)
        print(f"{'real data':<12}{_cell([ceiling]):<84}the real triples, read as samples are")
    for name, cell in PUBLISHED:
        print(f"{name:<12}{cell:<84}PacGAN paper")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
