"""Training throughput of the platform against a hand-written loop (plain_loop.py), in one call.

    python benchmarks/throughput.py                       # ring8 and digits, 3 pairs each
    python benchmarks/throughput.py --workloads digits --pairs 5
    python benchmarks/throughput.py --workloads dcgan64   # the 64 x 64 DCGAN at batch 128 (a GPU workload)
    python benchmarks/throughput.py --workloads sngan32   # SNGAN's 32 x 32 ResNets at batch 64, 5 D steps a step (a GPU workload)

The platform runs through `gan_platform.run.run(cfg)`, the path `python -m gan_platform` takes,
with its default log cadence (`trainer.log_every=50`) and no tracker; sample grids, periodic
checkpoints, evaluation (`eval.enabled=false`) and the run page are off (they are not training).
Both sides train the same networks with the same batch size, loss and D steps per G step (see
plain_loop.py).

Method: every measurement is a fresh child process (so neither side inherits the other's warm
caches or memory) that trains once untimed (warm-up), then SHORT and LONG steps from scratch;
its rate is (LONG - SHORT) / (t_LONG - t_SHORT), so set-up, the final checkpoint and process
start-up cancel out. Platform and plain children alternate (A B, B A, ...), the ratio is taken pair
by pair, and the medians are printed with the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {  # name -> (platform overrides, short steps, long steps)
    "ring8": (["dataset=ring8", "model=mlp"], 200, 1200),
    "digits": (["+experiment=nsgan"], 15, 75),
    "dcgan64": (["+experiment=dcgan64"], 10, 60),
    "sngan32": (["+experiment=sngan32"], 5, 25),  # each step is 5 D steps and a G step
}
BATCH_SIZES = {"dcgan64": 128}  # the rest: --batch-size (64)
PLATFORM_DEFAULTS = ["tracker=none", "trainer.progress=false", "trainer.sample_every=0", "trainer.checkpoint_every=0",
                     "eval.enabled=false", "report=false"]  # training only, as the plain loop: no evaluation, no page


def compose_workload(workload: str, steps: int, batch_size: int, extra: list[str] = ()):
    """The platform's config of `workload`, training only (PLATFORM_DEFAULTS), as the command line composes it."""
    from hydra import compose, initialize_config_module

    overrides = WORKLOADS[workload][0] + PLATFORM_DEFAULTS + [f"trainer.steps={steps}", f"trainer.batch_size={batch_size}",
                                                              *extra]
    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        return compose("config", overrides=overrides)


def platform_seconds(workload: str, steps: int, batch_size: int, extra: list[str]) -> float:
    """Wall seconds of one platform run of `steps` iterations, config composition included."""
    from gan_platform.run import run

    start = time.perf_counter()
    cfg = compose_workload(workload, steps, batch_size, extra)
    with tempfile.TemporaryDirectory() as run_dir:
        summary = run(cfg, run_dir)
    assert summary["status"] == "finished", summary
    return time.perf_counter() - start


def worker(side: str, workload: str, batch_size: int, extra: list[str]) -> dict:
    """One measurement in this (child) process: warm-up, then SHORT and LONG timed runs."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    _, short, long = WORKLOADS[workload]
    if side == "platform":
        time_it = lambda n: platform_seconds(workload, n, batch_size, extra)  # noqa: E731
    else:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from plain_loop import train

        time_it = lambda n: train(workload, n, batch_size)  # noqa: E731
    time_it(short)
    t_short, t_long = time_it(short), time_it(long)
    return {"steps_per_s": (long - short) / (t_long - t_short),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(side: str, workload: str, batch_size: int, extra: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--worker", side, "--workloads", workload, "--batch-size", str(batch_size)]
    cmd += [f"--platform-override={o}" for o in extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OMP_NUM_THREADS", "1")
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{side} {workload} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default="ring8,digits")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=None, help="default: 64 (dcgan64: 128)")
    p.add_argument("--platform-override", action="append", default=[], help="extra key=value for the platform")
    p.add_argument("--worker", choices=["platform", "plain"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.workloads, args.batch_size, args.platform_override)))
        return
    batch_of = lambda workload: args.batch_size or BATCH_SIZES.get(workload, 64)  # noqa: E731
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from plain_loop import recipe

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"torch {torch.__version__} on {device}, {os.environ.get('OMP_NUM_THREADS', '1')} thread(s), "
          f"{args.pairs} pairs; platform overrides: {args.platform_override or 'none'}")
    print(f"{'workload':8} {'side':8} {'steps/s':>9} {'images/s':>10} {'peak RSS MiB':>13}")
    for workload in args.workloads.split(","):
        runs: dict[str, list[dict]] = {"platform": [], "plain": []}
        ratios = []
        for i in range(args.pairs):
            order = ("platform", "plain") if i % 2 == 0 else ("plain", "platform")
            pair = {side: measure(side, workload, batch_of(workload), args.platform_override) for side in order}
            for side in order:
                runs[side].append(pair[side])
            ratios.append(pair["platform"]["steps_per_s"] / pair["plain"]["steps_per_s"])
        for side, rs in runs.items():
            rate = statistics.median(r["steps_per_s"] for r in rs)
            rss = statistics.median(r["peak_rss_mib"] for r in rs)
            # images/s: real samples D sees per second (d_steps D steps and one G step per iteration)
            print(f"{workload:8} {side:8} {rate:9.1f} {rate * batch_of(workload) * recipe(workload)[1]:10.0f} {rss:13.0f}")
        spread = f"min {min(ratios):.3f}, max {max(ratios):.3f}"
        print(f"{workload:8} ratio platform/plain = {statistics.median(ratios):.3f} (median of {len(ratios)} pairs; {spread})")


if __name__ == "__main__":
    main()
