"""Images per second and peak accelerator memory of a platform run in each precision.

    python benchmarks/precisions.py                                   # +experiment=dcgan64, no / bf16 / fp16
    python benchmarks/precisions.py +experiment=nsgan --precisions no,bf16 --steps 40

Each precision runs in a fresh child process: `--steps` iterations after `--warmup` untimed ones
(the run is built as `python -m gan_platform` builds it, without tracker, samples, checkpoints or
evaluations). Prints images/s (real images seen by D per second), the ratio to `no`, and the peak
GPU memory (torch.cuda.max_memory_allocated; the peak RSS on a CPU). fp16 needs a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(overrides: list[str], precision: str, steps: int, warmup: int) -> dict:
    import torch
    from hydra import compose, initialize_config_module

    from gan_platform.run import build_trainer

    base = [*overrides, "tracker=none", "report=false", "trainer.progress=false", "trainer.sample_every=0",
            "trainer.checkpoint_every=0", "eval.every=0", "eval.features=identity", f"trainer.precision={precision}", f"trainer.steps={warmup + steps}"]
    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        cfg = compose("config", overrides=base)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(cfg, run_dir)
        cuda = trainer.acc.device.type == "cuda"
        for _ in range(warmup):
            trainer.iteration()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.iteration()
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        trainer.run_dir.unlock()
    images = steps * int(cfg.trainer.batch_size) * int(cfg.trainer.d_steps)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"images_per_s": images / seconds, "peak_mib": peak, "device": str(trainer.acc.device)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("overrides", nargs="*", default=["+experiment=dcgan64"])
    p.add_argument("--precisions", default="no,bf16,fp16")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.overrides, args.child, args.steps, args.warmup)))
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    results = {}
    print(f"{' '.join(args.overrides)}: {args.steps} timed iterations after {args.warmup}")
    print(f"{'precision':10} {'images/s':>10} {'vs no':>7} {'peak MiB':>9}  device")
    for precision in args.precisions.split(","):
        out = subprocess.run([sys.executable, __file__, *args.overrides, "--child", precision, "--steps", str(args.steps),
                              "--warmup", str(args.warmup)], cwd=ROOT, env=env, capture_output=True, text=True)
        if out.returncode:
            last = (out.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{precision:10} did not run: {last}")
            continue
        r = results[precision] = json.loads(out.stdout.strip().splitlines()[-1])
        ratio = r["images_per_s"] / results["no"]["images_per_s"] if "no" in results else float("nan")
        print(f"{precision:10} {r['images_per_s']:10.0f} {ratio:7.2f} {r['peak_mib']:9.0f}  {r['device']}")


if __name__ == "__main__":
    main()
