"""FID on the bundled digits with and without the generator's moving average (`trainer.ema`).

    python benchmarks/ema_fid.py [extra overrides...] [--steps 1500] [--decay 0.995] [--seeds 0 1 2]

For each seed, one `+experiment=nsgan` run with `trainer.ema.decay=DECAY`; the average never feeds
back into training, so the raw G of that run is the G of the same run without EMA. At the end
both generators of checkpoints/last are evaluated by the run's own evaluator (digit-classifier
features, 2000 samples against the digits' evaluation split), with the same noise for both: the
two FIDs differ only by which generator draws the samples.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fids(steps: int, seed: int, decay: float, extra: list[str]) -> dict[str, float]:
    """Train one run, then FID of its raw G and of its average."""
    from hydra import compose, initialize_config_module

    from gan_platform.run import build_dataset, build_evaluator, build_task, make_accelerator, run
    from gan_platform.runs.checkpoint import load_checkpoint
    from gan_platform.training.state import side_rng

    overrides = ["+experiment=nsgan", "tracker=none", "report=false", "trainer.progress=false", f"trainer.steps={steps}",
                 "trainer.sample_every=0", "trainer.checkpoint_every=0", "eval.every=0", f"trainer.ema.decay={decay}",
                 f"seed={seed}", *extra]
    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    with tempfile.TemporaryDirectory() as run_dir:
        run(cfg, run_dir)
        state, _ = load_checkpoint(Path(run_dir) / "checkpoints" / "last")
    acc = make_accelerator(cfg)
    dataset = build_dataset(cfg, acc)
    task = build_task(cfg, dataset, acc)
    evaluator = build_evaluator(cfg, dataset, task, acc)
    out = {}
    for side, name in (("raw", "generator"), ("ema", "generator_ema")):
        task.inference["generator"].load_state_dict(state["modules"][name])
        with side_rng(seed, steps):
            out[side] = evaluator.evaluate(task, steps)["eval/fid"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--decay", type=float, default=0.995)
    args, extra = parser.parse_known_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        rows.append(fids(args.steps, seed, args.decay, extra))
        r = rows[-1]
        print(f"seed {seed}: FID raw G {r['raw']:.2f}, EMA G {r['ema']:.2f} (ratio {r['ema'] / r['raw']:.3f}; "
              f"{time.perf_counter() - start:.0f} s)", flush=True)
    raw, ema = [r["raw"] for r in rows], [r["ema"] for r in rows]
    print(f"mean over {len(rows)} seeds, {args.steps} steps, decay {args.decay}: raw G {statistics.mean(raw):.2f}, "
          f"EMA G {statistics.mean(ema):.2f} (EMA better on {sum(e < r for e, r in zip(ema, raw))} of {len(rows)} seeds)")


if __name__ == "__main__":
    main()
