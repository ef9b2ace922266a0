"""Where a training iteration's time goes: torch.profiler over the platform's own loop, and every
host-device synchronisation inside it.

    python benchmarks/profile_step.py                                  # digits, batch 64
    python benchmarks/profile_step.py +experiment=dcgan64 --iterations 30
    python benchmarks/profile_step.py --trace /tmp/trace.json          # a Chrome trace too

The run is built exactly as `python -m gan_platform` builds it (`run.build_trainer`), then
`Trainer.fit` runs with the profiler stepping once per iteration: `--skip` iterations first (warm-up,
cuDNN autotuning), then `--iterations` recorded ones. On a GPU, `torch.cuda.set_sync_debug_mode`
is set to `warn` for the recorded iterations and every synchronisation is counted with the line
that caused it: each one outside the log cadence (`trainer.log_every`) is a defect. Prints the top
operators by self CPU time (and by CUDA time on a GPU) and the synchronisations per iteration.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("overrides", nargs="*", default=["+experiment=nsgan"], help="Hydra overrides (default: +experiment=nsgan)")
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--skip", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--trace", default=None, help="also write a Chrome trace here")
    args = p.parse_args()

    import torch
    from hydra import compose, initialize_config_module
    from torch.profiler import ProfilerActivity, profile, schedule

    from gan_platform.run import build_trainer

    steps = args.skip + args.iterations + 1
    overrides = [*args.overrides, "tracker=none", "report=false", "trainer.progress=false", "trainer.sample_every=0",
                 "trainer.checkpoint_every=0", "eval.every=0", "eval.features=identity", f"trainer.steps={steps}",
                 f"trainer.batch_size={args.batch_size}", "eval.num_samples=64", "eval.num_real=64"]
    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    syncs: collections.Counter = collections.Counter()
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(cfg, run_dir)
        done = {"n": 0}
        plain_iteration = trainer.iteration
        with profile(activities=activities, schedule=schedule(wait=args.skip, warmup=1, active=args.iterations)) as prof, \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")

            def iteration() -> None:
                if cuda and done["n"] == args.skip + 1:
                    torch.cuda.set_sync_debug_mode("warn")
                plain_iteration()
                done["n"] += 1
                prof.step()

            trainer.iteration = iteration
            original_showwarning = warnings.showwarning
            try:
                trainer.fit()
            finally:
                if cuda:
                    torch.cuda.set_sync_debug_mode(0)
                warnings.showwarning = original_showwarning
        for w in caught:
            if "synchroniz" in str(w.message).lower():
                syncs[f"{Path(w.filename).name}:{w.lineno}"] += 1
        trainer.tracker.finish(trainer.summary())
        trainer.run_dir.unlock()
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows))
    if args.trace:
        prof.export_chrome_trace(args.trace)
    per = args.iterations
    print(f"host-device synchronisations in {per} recorded iterations (log every {cfg.trainer.log_every}):",
          sum(syncs.values()) if cuda else "n/a on the CPU")
    for where, n in syncs.most_common():
        print(f"  {n:5d}  {where}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
