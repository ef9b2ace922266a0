"""Mode collapse on the 2-D mixtures: GAN variants beside the published numbers.

Trains each variant (minimax, non-saturating, WGAN, WGAN-GP, hinge, non-saturating with PacGAN's
packing as the remedy, R3GAN's RpGAN + R1 + R2, and the bare command's recipe) on ring8 and grid25 for
several seeds, as real runs of `python -m gan_platform`, and prints modes covered / % high-quality
samples / reverse KL at the end of training (mean +- std over seeds; 2,500 samples, the
VEEGAN/PacGAN protocol), next to the rows of VEEGAN (table 1) and PacGAN (table 1). It also prints
the share of each run's time that evaluation took.

    python benchmarks/collapse_table.py                                  # full: 5 variants x 2 data x 3 seeds
    python benchmarks/collapse_table.py --steps 3000 --seeds 1 --data ring8 --variants nonsaturating wgan_gp
    python benchmarks/collapse_table.py --jobs 2 --out table.json        # parallel runs; raw results as JSON
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gan_platform

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

# Each variant as the command line that runs it on 2-D data (experiment bundle + data/model choices).
VARIANTS = {
    "minimax": ["+experiment=toy2d", "loss=minimax"],
    "nonsaturating": ["+experiment=toy2d"],
    "wgan": ["+experiment=toy2d_wgan"],
    "wgan_gp": ["+experiment=toy2d_wgan_gp"],
    "hinge": ["+experiment=toy2d", "loss=hinge"],
    "pacgan4": ["+experiment=toy2d_pacgan"],   # non-saturating, D judges packs of four (the tuned remedy)
    # R3GAN's loss: RpGAN with the zero-centred R1 and R2 penalties, on the toy2d networks and schedule
    "r3gan": ["+experiment=toy2d", "loss=relativistic", "loss.r1_gamma=0.1", "loss.r2_gamma=0.1"],
    # the bare `python -m gan_platform`: non-saturating + R1 + Adam 2e-3 (beta2 0.9) decaying + EMA, 6,000 steps
    "default": ["+experiment=default"],
}
PUBLISHED = [  # (method, ring modes / hq %, grid modes / hq %, source)
    ("GAN", "1 / 99.3", "3.3 / 0.5", "VEEGAN table 1"),
    ("Unrolled GAN", "7.6 / 35.6", "23.6 / 16", "VEEGAN table 1"),
    ("VEEGAN", "8 / 52.9", "24.6 / 40", "VEEGAN table 1"),
    ("PacGAN2", "7.9 / 95.6", "23.8 / 91.3", "PacGAN table 1"),
    ("perfect sampler", "8 / 98.9", "25 / 98.9", "1 - exp(-4.5)"),
]


def run_one(variant: str, data: str, seed: int, steps: int, workdir: Path, extra: list[str]) -> dict:
    """One real training run; returns its final collapse metrics, wall time and eval time."""
    run_dir = workdir / f"{variant}_{data}_s{seed}"
    env = {**os.environ, "GAN_RUN_DIR": str(run_dir), "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "gan_platform", *VARIANTS[variant], f"dataset={data}", f"seed={seed}",
           f"trainer.steps={steps}", "trainer.progress=false", "tracker=none", f"name=collapse_{variant}", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except OSError:
        return {"variant": variant, "data": data, "seed": seed, "error": proc.stderr[-500:]}
    final = summary.get("final", {})
    return {"variant": variant, "data": data, "seed": seed, "status": summary.get("status"), "wall_s": wall,
            "eval_s": summary.get("protocol", {}).get("eval_seconds", 0.0),
            **{k: final.get(f"collapse/{k}") for k in ("modes", "high_quality", "reverse_kl")}}


def _cell(rows: list[dict]) -> str:
    ok = [r for r in rows if r.get("modes") is not None]
    if not ok:
        return "failed"

    def ms(key: str, fmt: str) -> str:
        vals = [float(r[key]) for r in ok]
        sd = statistics.pstdev(vals) if len(vals) > 1 else 0.0
        return f"{format(statistics.mean(vals), fmt)}" + (f"+-{format(sd, fmt)}" if len(vals) > 1 else "")

    return f"{ms('modes', '.1f')} / {ms('high_quality', '.1f')} / {ms('reverse_kl', '.2f')}"


def print_table(results: list[dict], variants: list[str], datasets: list[str]) -> None:
    rows = {v: [_cell([r for r in results if r["variant"] == v and r["data"] == d]) for d in datasets] for v in variants}
    width = 2 + max([34, *(len(c) for cells in rows.values() for c in cells)])  # mean+-std cells are long
    print("\nmodes / % high-quality / reverse KL (final evaluation, 2,500 samples)")
    print(f"{'method':<18}" + "".join(f"{d:<{width}}" for d in datasets) + "source")
    for v, cells in rows.items():
        print(f"{v:<18}" + "".join(f"{c:<{width}}" for c in cells) + "this platform")
    for name, ring, grid, source in PUBLISHED:
        cells = {"ring8": ring + " / -", "grid25": grid + " / -"}
        print(f"{name:<18}" + "".join(f"{cells.get(d, '-'):<{width}}" for d in datasets) + source)
    done = [r for r in results if "wall_s" in r]
    if done:
        share = sum(r["eval_s"] for r in done) / sum(r["wall_s"] for r in done)
        print(f"\nevaluation took {100 * share:.1f}% of the runs' wall time ({len(done)} runs)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--data", nargs="+", default=["ring8", "grid25"], choices=["ring8", "grid25"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the experiment's)")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (one CPU thread each)")
    ap.add_argument("--out", type=Path, default=None, help="write the raw results here as JSON")
    ap.add_argument("extra", nargs="*", help="more overrides for every run, e.g. eval.every=1000")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="collapse_table_"))
    steps = {v: args.steps or _default_steps(v) for v in args.variants}  # before the threads: Hydra is global
    jobs = [(v, d, s) for v in args.variants for d in args.data for s in range(args.seeds)]
    print(f"{len(jobs)} runs in {workdir}", flush=True)

    def go(job):
        v, d, s = job
        r = run_one(v, d, s, steps[v], workdir, args.extra)
        print(json.dumps(r), flush=True)
        return r

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(go, jobs))
    print_table(results, args.variants, args.data)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


def _default_steps(variant: str) -> int:
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        return int(compose("config", overrides=VARIANTS[variant]).trainer.steps)


if __name__ == "__main__":
    main()
