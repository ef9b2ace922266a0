"""What evaluation costs: the share of a run's wall time spent in the evaluator (real statistics
at the start plus every evaluation), at the default cadence, for the default runs.

    python benchmarks/eval_cost.py                        # ring8 (the default run) and digits (+experiment=nsgan)
    python benchmarks/eval_cost.py --runs ring8 --steps 2000
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gan_platform

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"ring8": [], "digits": ["+experiment=nsgan"], "stacked_digits": ["+experiment=nsgan", "dataset=stacked_digits"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs="+", default=["ring8", "digits"], choices=list(RUNS))
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the config's)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eval_cost_"))
    for name in args.runs:
        run_dir = work / name
        env = {**os.environ, "GAN_RUN_DIR": str(run_dir), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        steps = [f"trainer.steps={args.steps}"] if args.steps else []
        cmd = [sys.executable, "-m", "gan_platform", *RUNS[name], *steps, "trainer.progress=false", "tracker=none"]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
        wall = time.perf_counter() - start
        summary = json.loads((run_dir / "summary.json").read_text())
        p = summary["protocol"]
        print(f"{name:<15} {summary['step']} steps, {p['evaluations']} evaluations of {p['num_fake']} samples "
              f"({p['extractor']} features): evaluation {p['eval_seconds']:.1f} s of {wall:.1f} s wall "
              f"= {100 * p['eval_seconds'] / wall:.1f}%", flush=True)


if __name__ == "__main__":
    main()
