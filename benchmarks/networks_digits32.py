"""The networks of the platform's papers on the bundled digits at 32 x 32, each with its paper's recipe.

Every variant is class-conditional and sees the same images (iterations x batch 32); each is scored
by FID on digit features (the shipped 32 x 32 classifier: docs/evaluation.md) at the end, on 2,000
samples against all 1,797 digits, and timed as whole runs (images per second of G's batches,
measurement included):

    r3gan_digits32      +experiment=r3gan_digits32: R3GAN's network and recipe (schedules over the run)
    stylegan2_digits32  +experiment=stylegan2_digits32: StyleGAN2's (style mixing, lazy R1, path length, ADA)
    biggan_digits32     +experiment=biggan_digits32: BigGAN's (hinge, 5 D steps, orthogonal regularisation)
    sngan32             +experiment=sngan32, G and D width 32, 5 critic steps, hinge (SNGAN's recipe)
    dcgan_r3gan         +experiment=r3gan at 32 x 32: RpGAN + R1 + R2 and EMA on the DCGAN networks

    OMP_NUM_THREADS=1 python benchmarks/networks_digits32.py --seeds 3 --jobs 2 --out results.json
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
CONDITIONAL = ["task.conditional=true", "trainer.batch_size=32"]
VARIANTS = {
    "r3gan_digits32": ["+experiment=r3gan_digits32"],
    "stylegan2_digits32": ["+experiment=stylegan2_digits32"],
    "biggan_digits32": ["+experiment=biggan_digits32"],
    "sngan32": ["+experiment=sngan32", "model.generator.width=32", "model.discriminator.width=32", "model.conditioning=projection"],
    "dcgan_r3gan": ["+experiment=r3gan", "dataset.resolution=32"],
}


def run_one(variant: str, seed: int, steps: int, workdir: Path) -> dict:
    """One run of `steps` iterations; its final FID and class accuracy, and its images per second."""
    run_dir = workdir / f"{variant}_s{seed}"
    env = {**os.environ, "GAN_RUN_DIR": str(run_dir), "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "gan_platform", *VARIANTS[variant], *CONDITIONAL, f"seed={seed}", f"trainer.steps={steps}",
           "trainer.progress=false", "tracker=none", "report=false", "eval.every=0", "eval.num_samples=2000",
           "eval.features=digits", "trainer.sample_every=0", f"name=bench_{variant}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return {"variant": variant, "seed": seed, "error": proc.stderr[-800:]}
    final = json.loads((run_dir / "summary.json").read_text())["final"]
    return {"variant": variant, "seed": seed, "steps": steps, "images": steps * 32, "wall_s": round(wall, 1),
            "images_per_s": round(steps * 32 / wall, 1), "fid": final["eval/fid"],
            "class_accuracy": final.get("eval/class_accuracy")}


def row(results: list[dict]) -> str:
    ok = [r for r in results if "fid" in r]
    if not ok:
        return "failed: " + results[0].get("error", "")[-200:]
    fids = [r["fid"] for r in ok]
    std = statistics.stdev(fids) if len(fids) > 1 else 0.0
    acc = [r["class_accuracy"] for r in ok if r.get("class_accuracy") is not None]
    speed = statistics.median(r["images_per_s"] for r in ok)
    return (f"FID {statistics.mean(fids):7.2f} +- {std:5.2f}   (" + ", ".join(f"{f:.2f}" for f in fids) + ")   "
            f"class accuracy {statistics.mean(acc):.3f}   {speed:6.1f} images/s" if acc else f"   {speed:6.1f} images/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1 (to add seeds later)")
    ap.add_argument("--steps", type=int, default=1500, help="iterations of every run (48k images at 1,500)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, one CPU thread each")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--table", type=Path, nargs="+", default=None, help="no runs: the table of earlier --out files together")
    args = ap.parse_args()
    if args.table:
        results = [r for path in args.table for r in json.loads(path.read_text())]
        for v in [v for v in VARIANTS if any(r["variant"] == v for r in results)]:
            print(f"{v:<20}{row([r for r in results if r['variant'] == v])}")
        return
    workdir = Path(tempfile.mkdtemp(prefix="networks_digits32_"))
    jobs = [(v, s) for s in range(args.first_seed, args.first_seed + args.seeds) for v in args.variants]
    print(f"{len(jobs)} runs of {args.steps} iterations in {workdir}", flush=True)

    def go(job):
        r = run_one(job[0], job[1], args.steps, workdir)
        print(json.dumps(r), flush=True)
        return r

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(go, jobs))
    print(f"\n{args.steps} iterations of 32 images, {args.seeds} seed(s); FID on digit features, 2,000 samples")
    for v in args.variants:
        print(f"{v:<16}{row([r for r in results if r['variant'] == v])}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
