"""FID on the bundled digits with and without the generator's moving average (`trainer.ema`).

    python benchmarks/ema_fid.py [--steps 1500] [--seeds 0 1 2] [--decay 0.995] [extra overrides...]

For each seed, one `+experiment=nsgan` run with `trainer.ema.decay=DECAY` evaluates its moving
average, and the same run with `trainer.ema.raw_samples=true` evaluates the raw G: the average
never feeds back into training, so both runs train bit-identical networks (checked), and the two
FIDs differ only by which generator draws the samples. FID is the final evaluation's `eval/fid`
(the digit-classifier features, 2000 samples against the digits' evaluation split).
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
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train(run_dir: Path, overrides: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               WANDB_SILENT="true")
    subprocess.run([sys.executable, "-m", "gan_platform", "+experiment=nsgan", f"hydra.run.dir={run_dir}", "tracker=none",
                    "report=false", "trainer.progress=false", *overrides], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return json.loads((run_dir / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--decay", type=float, default=0.995)
    args, extra = parser.parse_known_args()
    from gan_platform.runs.checkpoint import load_checkpoint

    common = [f"trainer.steps={args.steps}", "trainer.sample_every=0", "trainer.checkpoint_every=0", "eval.every=0",
              f"trainer.ema.decay={args.decay}", *extra]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            start = time.perf_counter()
            fids, params = {}, {}
            for side, flag in (("ema", "false"), ("raw", "true")):
                run_dir = Path(tmp) / f"{seed}_{side}"
                summary = train(run_dir, common + [f"seed={seed}", f"trainer.ema.raw_samples={flag}"])
                fids[side] = summary["final"]["eval/fid"]
                params[side] = load_checkpoint(run_dir / "checkpoints" / "last")[0]["modules"]["generator"]
            same = all(torch.equal(params["ema"][k], params["raw"][k]) for k in params["ema"])
            rows.append(fids)
            print(f"seed {seed}: FID raw G {fids['raw']:.2f}, EMA G {fids['ema']:.2f} "
                  f"(ratio {fids['ema'] / fids['raw']:.3f}; raw G identical in both runs: {same}; "
                  f"{time.perf_counter() - start:.0f} s)", flush=True)
    raw, ema = [r["raw"] for r in rows], [r["ema"] for r in rows]
    print(f"mean over {len(rows)} seeds: raw G {statistics.mean(raw):.2f}, EMA G {statistics.mean(ema):.2f} "
          f"(EMA better on {sum(e < r for e, r in zip(ema, raw))} of {len(rows)} seeds)")


if __name__ == "__main__":
    main()
