"""FID on a small dataset without augmentation, with DiffAugment and with ADA.

Trains the non-saturating DCGAN (`+experiment=nsgan`) on 10% of the digits (`dataset.fraction=0.1`:
179 images, where D can memorise its data) with `augment=none`, `diffaug` and `ada`, several seeds,
as real runs of `python -m gan_platform`. Each trained G is then measured against all 1,797 digits
(not only the 179 it saw): a second run resumes the final checkpoint with `dataset.fraction=1` and
the same step count, so it trains no further and only evaluates (FID and KID on the digit
classifier's features, 2,000 samples).

    python benchmarks/small_data_augment.py                          # 3 choices x 3 seeds, 2,000 steps
    python benchmarks/small_data_augment.py --steps 1000 --jobs 2 --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHOICES = {"none": ["augment=none"], "diffaug": ["augment=diffaug"], "ada": ["augment=ada"]}


def _run(args: list[str], run_dir: Path) -> dict:
    env = {**os.environ, "GAN_RUN_DIR": str(run_dir), "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "gan_platform", *args], cwd=run_dir.parent, env=env,
                          capture_output=True, text=True)
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except OSError:
        return {"failed": proc.stderr[-500:]}


def run_one(choice: str, seed: int, steps: int, fraction: float, workdir: Path, extra: list[str]) -> dict:
    common = ["+experiment=nsgan", f"seed={seed}", f"trainer.steps={steps}", "trainer.progress=false",
              "tracker=none", "report=false", "trainer.sample_every=0", *CHOICES[choice], *extra]
    small = workdir / f"{choice}_s{seed}"
    trained = _run(common + [f"dataset.fraction={fraction}", "eval.every=0"], small)
    if "failed" in trained:
        return {"choice": choice, "seed": seed, **trained}
    full = _run(common + ["dataset.fraction=1.0", f"trainer.resume={small / 'checkpoints' / 'last'}"],
                workdir / f"{choice}_s{seed}_full")
    final, measured = trained.get("final", {}), full.get("final", {})
    return {"choice": choice, "seed": seed, "fid_train_subset": final.get("eval/fid"),
            "fid_all_digits": measured.get("eval/fid"), "kid_all_digits": measured.get("eval/kid"),
            "augment_p": final.get("train/augment_p"), "status": trained.get("status")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--choices", nargs="+", default=list(CHOICES), choices=list(CHOICES))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--ada-speed-images", type=int, default=None,
                    help="augment.speed_images of the ADA runs (default: conf/augment/ada.yaml's)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("extra", nargs="*", help="more overrides for every run")
    args = ap.parse_args()
    if args.ada_speed_images:
        CHOICES["ada"] = ["augment=ada", f"augment.speed_images={args.ada_speed_images}"]
    workdir = Path(tempfile.mkdtemp(prefix="small_data_"))
    jobs = [(c, s) for c in args.choices for s in range(args.seeds)]
    print(f"{len(jobs)} runs in {workdir}", flush=True)

    def go(job):
        r = run_one(*job, args.steps, args.fraction, workdir, args.extra)
        print(json.dumps(r), flush=True)
        return r

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(go, jobs))
    print(f"\nFID against all 1,797 digits (digit-classifier features), {args.steps} steps on "
          f"{args.fraction:.0%} of the digits; mean +- std over {args.seeds} seeds")
    for c in args.choices:
        vals = [r["fid_all_digits"] for r in results if r["choice"] == c and r.get("fid_all_digits") is not None]
        if vals:
            sd = statistics.pstdev(vals) if len(vals) > 1 else 0.0
            print(f"{c:<8} {statistics.mean(vals):8.2f} +- {sd:.2f}   per seed: {', '.join(f'{v:.2f}' for v in vals)}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
