"""Memory and speed of a GAN step computed in rounds (`trainer.micro_batch`, tasks/rounds.py).

    python benchmarks/micro_batch.py                                   # R3GAN at digits-32 widths, batch 64, on a CPU
    python benchmarks/micro_batch.py --width 768 --cardinality 96 --batch 256 --rounds 1,2,4,8   # on a GPU

One iteration is the platform's own GAN step (tasks/gan.py's GANTask: a D step with RpGAN and
R1 + R2, then a G step) on R3GAN's networks (models/r3gan.py) and random 3 x 32 x 32 images with
labels. Each setting runs in a fresh process of its own: the whole batch (1 round), then the same
batch in 2, 4, ... rounds. Printed per setting: images/s, and the step's peak working memory, with
both as ratios to the whole batch measured in the same run. Peak memory is
torch.cuda.max_memory_allocated on a GPU; on a CPU, the process's peak resident size minus its size
just before the first step (what the step itself added: activations, gradients, optimizer state).
Rounds free each round's graph before the next is built, so the activation part shrinks with the
round's size; parameters, gradients and Adam's moments stay.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def one(args) -> dict:
    """The measurement of one setting, in this process."""
    sys.path.insert(0, str(ROOT))
    import torch
    from accelerate import Accelerator

    from gan_platform.models.r3gan import R3GANDiscriminator, R3GANGenerator
    from gan_platform.tasks.gan import GANTask
    from gan_platform.tasks.phases import Phase, Phases

    torch.manual_seed(0)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    device = acc.device
    shape, classes = (3, 32, 32), 10
    stages = dict(widths=args.width, blocks=args.blocks, cardinality=args.cardinality, expansion=2, num_classes=classes)
    with torch.device(device):
        G = R3GANGenerator(shape, z_dim=64, **stages)
        D = R3GANDiscriminator(shape, conditioning="projection", **stages)
    opts = [torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.0, 0.9)) for net in (G, D)]
    micro = args.batch // args.one if args.one > 1 else None
    task = GANTask(acc, G, D, *opts, loss="relativistic", z_dim=64, num_classes=classes,
                   phases=Phases([Phase("r1", 0.05), Phase("r2", 0.05)]), micro_batch=micro)
    real = torch.randn(args.batch, *shape, device=device)
    labels = torch.randint(classes, (args.batch,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    before = rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    task.d_step(real, labels)  # the warm-up iteration: Adam's moments made, the allocator's pools filled
    task.g_step(real, labels)
    sync()
    begin, done = time.perf_counter(), 0
    while done == 0 or time.perf_counter() < begin + args.seconds:
        task.d_step(real, labels)
        task.g_step(real, labels)
        sync()
        done += 1
    seconds = time.perf_counter() - begin
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before)
    return {"rounds": args.one, "images_per_s": done * args.batch / seconds, "iterations": done, "peak_mib": peak,
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "CPU"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--blocks", type=int, default=1)
    p.add_argument("--cardinality", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", default="1,2,4", help="rounds per step to measure; 1 = the whole batch (the reference)")
    p.add_argument("--seconds", type=float, default=8.0, help="timed seconds per setting")
    p.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)  # a child: measure this many rounds
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return
    rounds = [int(r) for r in args.rounds.split(",")]
    if rounds[0] != 1 or any(args.batch % r for r in rounds):
        p.error(f"--rounds must start at 1 (the reference) and divide --batch {args.batch}, got {args.rounds}")
    results = []
    for r in rounds:
        cmd = [sys.executable, __file__, *sys.argv[1:], "--one", str(r)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    ref = results[0]
    print(f"R3GAN widths {args.width}, blocks {args.blocks}, cardinality {args.cardinality}, batch {args.batch}, "
          f"R1 + R2, on {ref['device']}")
    print(f"{'rounds':>6} {'micro_batch':>11} {'images/s':>9} {'x whole':>8} {'peak MiB':>9} {'x whole':>8}")
    for r in results:
        print(f"{r['rounds']:6d} {args.batch // r['rounds']:11d} {r['images_per_s']:9.1f} "
              f"{r['images_per_s'] / ref['images_per_s']:8.2f} {r['peak_mib']:9.0f} {r['peak_mib'] / ref['peak_mib']:8.2f}")


if __name__ == "__main__":
    main()
