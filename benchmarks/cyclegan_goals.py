"""Does `+experiment=cyclegan` reach its goals on the embedded digit-style pair, and how fast?

Goals: label preservation of at least 90% in both directions, and a translation error well under
the error of doing nothing. Runs the experiment once per seed (in this process, on the CPU unless
Accelerate says otherwise), then prints the final metrics, the ratio translation / identity error,
the wall-clock minutes and whether each goal is met.

    OMP_NUM_THREADS=1 python benchmarks/cyclegan_goals.py --seeds 0 1 [override ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL_LABELS = 0.90
GOAL_RATIO = 0.25  # "well under": at most a quarter of doing nothing


def run_once(seed: int, overrides: list[str], out: Path) -> tuple[dict, float]:
    from hydra import compose, initialize_config_module

    from gan_platform.run import run

    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        cfg = compose("config", overrides=["+experiment=cyclegan", f"seed={seed}", "tracker=none", *overrides])
    start = time.perf_counter()
    summary = run(cfg, out / f"seed_{seed}")
    return summary, (time.perf_counter() - start) / 60


NEEDED = ("eval/label_preservation_a2b", "eval/label_preservation_b2a", "eval/translation_error", "eval/identity_error",
          "eval/cycle_error", "eval/fid_a2b", "eval/fid_b2a")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=None, help="where the run dirs go (default: a temp dir)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. trainer.steps=1000")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="cyclegan_goals_"))
    header = f"{'seed':>4} {'labels a2b':>10} {'labels b2a':>10} {'transl.err':>10} {'nothing':>8} {'ratio':>6} {'cycle':>6} {'fid a2b':>8} {'fid b2a':>8} {'min':>5}  goals"
    print(header)
    ok_all = True
    for seed in args.seeds:
        summary, minutes = run_once(seed, ["trainer.progress=false", *args.overrides], out)
        m = summary.get("final", {})
        missing = [k for k in NEEDED if k not in m]
        if missing:  # stopped (Ctrl-C, divergence, early stop) before an evaluation: nothing to score
            ok_all = False
            print(f"{seed:>4} run ended '{summary.get('status')}' at step {summary.get('step')} without "
                  f"{', '.join(missing)} (run dir {out / f'seed_{seed}'}): goals NOT measured", flush=True)
            continue
        ratio = m["eval/translation_error"] / m["eval/identity_error"]
        ok = min(m["eval/label_preservation_a2b"], m["eval/label_preservation_b2a"]) >= GOAL_LABELS and ratio <= GOAL_RATIO
        ok_all &= ok
        print(f"{seed:>4} {m['eval/label_preservation_a2b']:>10.3f} {m['eval/label_preservation_b2a']:>10.3f} "
              f"{m['eval/translation_error']:>10.3f} {m['eval/identity_error']:>8.3f} {ratio:>6.3f} "
              f"{m['eval/cycle_error']:>6.3f} {m['eval/fid_a2b']:>8.2f} {m['eval/fid_b2a']:>8.2f} {minutes:>5.1f}  "
              f"{'met' if ok else 'NOT met'}", flush=True)
    print(f"run dirs: {out}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
