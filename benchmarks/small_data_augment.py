"""FID on a small dataset without augmentation, with DiffAugment and with ADA, and ADA's r_t and p.

Trains the non-saturating DCGAN (`+experiment=nsgan`) on a few digits (`dataset.fraction`, a share
of each class: 0.05 keeps 90 of the 1,797, 0.02 keeps 39) with three choices of `augment`, several seeds, as real
runs of `python -m gan_platform`:

    none     `augment=ada augment.transforms=[]`: D sees the images as they are (the same training as
             `augment=none`, tests/test_augment_task.py), and ADA's heuristic r_t is measured and logged
    diffaug  `augment=diffaug`
    ada      `augment=ada` (the paper's bgc pipeline; `--ada-speed-images` sets augment.speed_images)

r_t = E[sign(D(x))] over the real images of each interval says how sure D is of its training
images: past 0.6 (ADA's target) D is overfitting them. Each trained G is then measured against all
1,797 digits (not only those it saw): a second run resumes the final checkpoint with
`dataset.fraction=1` and the same step count, so it trains no further and only evaluates (FID and
KID on the digit classifier's features, 2,000 samples).

    OMP_NUM_THREADS=1 python benchmarks/small_data_augment.py --fraction 0.02 --steps 4000 --eval-every 1000 \\
        --jobs 3 --out results.json --plot docs/small_data_augment.png -- trainer.batch_size=32
    python benchmarks/small_data_augment.py --replot a.json b.json --plot docs/small_data_augment.png
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
CHOICES = {"none": ["augment=ada", "augment.transforms=[]"], "diffaug": ["augment=diffaug"], "ada": ["augment=ada"]}
CURVES = ("train/augment_rt", "train/augment_p", "eval/fid")


def _run(args: list[str], run_dir: Path) -> dict:
    env = {**os.environ, "GAN_RUN_DIR": str(run_dir), "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "gan_platform", *args], cwd=run_dir.parent, env=env,
                          capture_output=True, text=True)
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except OSError:
        return {"failed": proc.stderr[-500:]}


def curves(run_dir: Path) -> dict[str, list[list[float]]]:
    """(step, value) pairs of r_t, p and the FID against the training digits, from metrics.jsonl."""
    out: dict[str, list[list[float]]] = {k: [] for k in CURVES}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        for key in CURVES:
            if key in record:
                out[key].append([record["step"], record[key]])
    return out


def run_one(choice: str, seed: int, args: argparse.Namespace, workdir: Path) -> dict:
    common = ["+experiment=nsgan", f"seed={seed}", f"trainer.steps={args.steps}", "trainer.progress=false",
              "tracker=none", "report=false", "trainer.sample_every=0", f"trainer.log_every={args.log_every}",
              *CHOICES[choice], *args.extra]
    small = workdir / f"{choice}_s{seed}"
    trained = _run(common + [f"dataset.fraction={args.fraction}", f"eval.every={args.eval_every}"], small)
    if "failed" in trained:
        return {"choice": choice, "seed": seed, **trained}
    full = _run(common + ["dataset.fraction=1.0", f"trainer.resume={small / 'checkpoints' / 'last'}"],
                workdir / f"{choice}_s{seed}_full")
    final, measured = trained.get("final", {}), full.get("final", {})
    return {"choice": choice, "seed": seed, "fid_train_subset": final.get("eval/fid"),
            "fid_all_digits": measured.get("eval/fid"), "kid_all_digits": measured.get("eval/kid"),
            "augment_p": final.get("train/augment_p") if choice == "ada" else None,
            "r_t": final.get("train/augment_rt"), "status": trained.get("status"), "curves": curves(small)}


def summarise(results: list[dict], choices: list[str]) -> None:
    print("\nFID against all 1,797 digits (digit-classifier features); mean +- std over seeds")
    listed = lambda rows, key, digits: ", ".join(f"{r[key]:.{digits}f}" for r in rows)  # noqa: E731
    for c in choices:
        rows = [r for r in results if r["choice"] == c and r.get("fid_all_digits") is not None]
        if not rows:
            continue
        fid = [r["fid_all_digits"] for r in rows]
        sd = statistics.stdev(fid) if len(fid) > 1 else 0.0
        print(f"{c:<8} {statistics.mean(fid):7.2f} +- {sd:5.2f}   per seed: {listed(rows, 'fid_all_digits', 2)}"
              f"   vs training digits: {listed(rows, 'fid_train_subset', 2)}"
              + (f"   r_t at the end: {listed(rows, 'r_t', 2)}" if c != "diffaug" else "")
              + (f"   p: {listed(rows, 'augment_p', 3)}" if c == "ada" else ""))


def plot(results: list[dict], path: Path, title: str) -> None:
    """Against the step: r_t of the runs without augmentation and with ADA, ADA's p, and every run's
    FID against its training digits (where --eval-every logged it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
    colours = {"none": "tab:red", "diffaug": "tab:green", "ada": "tab:blue"}
    for r in results:
        if "curves" not in r:
            continue
        first = r["seed"] == min(q["seed"] for q in results if q["choice"] == r["choice"])
        label = r["choice"] if first else None
        if r["choice"] in ("none", "ada"):
            axes[0].plot(*zip(*r["curves"]["train/augment_rt"]), color=colours[r["choice"]], lw=1, alpha=0.8, label=label)
        if r["choice"] == "ada":
            axes[1].plot(*zip(*r["curves"]["train/augment_p"]), color=colours["ada"], lw=1, label=f"seed {r['seed']}")
        if r["curves"]["eval/fid"]:
            axes[2].plot(*zip(*r["curves"]["eval/fid"]), color=colours[r["choice"]], marker="o", ms=3, lw=1, label=label)
    axes[0].axhline(0.6, color="grey", ls="--", lw=1, label="ADA's target 0.6")
    axes[0].set(xlabel="step", ylabel="r_t = E[sign D(x)]", title="D's certainty on its training digits")
    axes[1].set(xlabel="step", ylabel="p", title="ADA's augmentation probability")
    axes[2].set(xlabel="step", ylabel="FID", title="FID against the training digits")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--choices", nargs="+", default=list(CHOICES), choices=list(CHOICES))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--fraction", type=float, default=0.02)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=0, help="FID against the training digits every this many steps (0: at the end)")
    ap.add_argument("--ada-speed-images", type=int, default=None,
                    help="augment.speed_images of the ADA runs (default: conf/augment/ada.yaml's)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None, help="a PNG of r_t, p and the FID against the training digits, against the step")
    ap.add_argument("--replot", type=Path, nargs="+", default=None, help="summarise and plot saved --out files together, no training")
    ap.add_argument("extra", nargs="*", help="more overrides for every run")
    args = ap.parse_args()
    if args.replot:
        results = [r for path in args.replot for r in json.loads(path.read_text())]
    else:
        if args.ada_speed_images:
            CHOICES["ada"] = ["augment=ada", f"augment.speed_images={args.ada_speed_images}"]
        workdir = Path(tempfile.mkdtemp(prefix="small_data_"))
        jobs = [(c, s) for c in args.choices for s in range(args.first_seed, args.first_seed + args.seeds)]
        print(f"{len(jobs)} runs in {workdir}", flush=True)

        def go(job):
            r = run_one(*job, args, workdir)
            print(json.dumps({k: v for k, v in r.items() if k != "curves"}), flush=True)
            return r

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(go, jobs))
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
    summarise(results, [c for c in CHOICES if any(r["choice"] == c for r in results)])
    if args.plot:
        seeds = sorted({r["seed"] for r in results})
        plot(results, args.plot, f"nsgan DCGAN, dataset.fraction={args.fraction:g}, {args.steps} steps, seeds {seeds}")


if __name__ == "__main__":
    main()
