"""Images per second and peak memory of one R3GAN training iteration at the paper's CIFAR-10 widths.

    python benchmarks/r3gan_step.py                   # on a GPU: widths 768 x 4, batch 64, bf16 then fp32
    python benchmarks/r3gan_step.py --width 16 --cardinality 2 --batch 8 --seconds 1   # a CPU check that it runs

The networks are models/r3gan.py's at the paper's CIFAR-10 setting (Huang et al. 2024, Table 9:
widths 768 per stage, 2 blocks a stage, cardinality 96, expansion 2, z 64, conditional on 10
classes; 20.78M + 21.28M parameters) on 3 x 32 x 32 inputs. One iteration is what `+experiment=r3gan
model=r3gan` trains: a D step (G's fakes without gradient; one D pass over reals and fakes; RpGAN
on the pairs plus gamma/2 (R1 + R2), the input gradients kept for the double backward; Adam) and a
G step (RpGAN with D frozen; Adam), with the platform's own loss functions. Around the networks
there is nothing else (no data loading, EMA, logging or Accelerate: `precisions.py` measures whole
platform runs), so the numbers are the networks' and the loss's.

Each precision trains `--warmup` untimed iterations, then timed ones until `--seconds` have passed,
and never past `--deadline` seconds after the script started (so a step bounded by `timeout` in
gpu_check.sh still prints). bf16 (autocast; the paper's mixed precision) runs and prints first;
the ratio bf16 / fp32 follows when both ran. Images/s counts the real images D sees, the batch
per iteration; peak memory is torch.cuda.max_memory_allocated (the peak RSS on a CPU).
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gan_platform.losses import get_loss, squared_gradient_norm  # noqa: E402
from gan_platform.models.r3gan import R3GANDiscriminator, R3GANGenerator  # noqa: E402


def build(args, device: torch.device):
    shape = (3, args.side, args.side)
    stages = dict(widths=args.width, blocks=args.blocks, cardinality=args.cardinality, expansion=args.expansion,
                  num_classes=args.classes)
    with torch.device(device):
        G = R3GANGenerator(shape, z_dim=args.z_dim, **stages)
        D = R3GANDiscriminator(shape, conditioning="projection", **stages)
    fused = device.type == "cuda"
    opts = [torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.0, 0.9), fused=fused) for net in (G, D)]
    return G, D, *opts


def iteration(G, D, g_opt, d_opt, real, labels, args, autocast) -> None:
    """One D step with R1 and R2, then one G step (the module docstring)."""
    loss, n = get_loss("relativistic"), real.shape[0]
    with torch.no_grad(), autocast():
        fake = G(torch.randn(n, args.z_dim, device=real.device), labels)
    x_real, x_fake = real.detach().requires_grad_(True), fake.float().requires_grad_(True)
    with autocast():
        real_scores, fake_scores = D(torch.cat([x_real, x_fake]), torch.cat([labels, labels])).chunk(2)
        d_loss = loss.d(real_scores, fake_scores)
    penalty = squared_gradient_norm(real_scores, x_real) + squared_gradient_norm(fake_scores, x_fake)
    d_opt.zero_grad(set_to_none=True)
    (d_loss + 0.5 * args.gamma * penalty).backward()
    d_opt.step()
    D.requires_grad_(False)
    with autocast():
        fake_scores = D(G(torch.randn(n, args.z_dim, device=real.device), labels), labels)
        with torch.no_grad():
            real_scores = D(real, labels)
        g_loss = loss.g(real_scores, fake_scores)
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    g_opt.step()
    D.requires_grad_(True)


def measure(args, device: torch.device, precision: str) -> dict:
    torch.manual_seed(0)
    G, D, g_opt, d_opt = build(args, device)
    real = torch.randn(args.batch, 3, args.side, args.side, device=device)
    labels = torch.randint(args.classes, (args.batch,), device=device)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def autocast():
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        iteration(G, D, g_opt, d_opt, real, labels, args, autocast)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    begin, done = time.perf_counter(), 0
    stop = min(begin + args.seconds, START + args.deadline)
    while done == 0 or time.perf_counter() < stop:
        iteration(G, D, g_opt, d_opt, real, labels, args, autocast)
        sync()
        done += 1
    seconds = time.perf_counter() - begin
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    return {"images_per_s": done * args.batch / seconds, "ms": 1000 * seconds / done, "iterations": done, "peak_mib": peak}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--cardinality", type=int, default=96)
    p.add_argument("--expansion", type=int, default=2)
    p.add_argument("--z-dim", type=int, default=64)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--side", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--gamma", type=float, default=0.05, help="R1 and R2's gamma (the paper's CIFAR-10 start)")
    p.add_argument("--precisions", default="bf16,fp32")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seconds", type=float, default=1.5, help="timed seconds per precision")
    p.add_argument("--deadline", type=float, default=9.0, help="seconds after start by which the last precision stops")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with torch.device("meta"):
        sizes = [sum(q.numel() for q in net.parameters()) / 1e6 for net in build(args, torch.device("meta"))[:2]]
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"R3GAN widths {args.width}, blocks {args.blocks}, cardinality {args.cardinality}, expansion {args.expansion} "
          f"(G {sizes[0]:.2f}M, D {sizes[1]:.2f}M parameters), batch {args.batch}, {args.side} x {args.side}, "
          f"R1 + R2, on {name}, torch {torch.__version__}", flush=True)
    print(f"{'precision':10} {'images/s':>10} {'ms/iter':>9} {'iters':>6} {'peak MiB':>9}", flush=True)
    results = {}
    for precision in args.precisions.split(","):
        if time.perf_counter() > START + args.deadline:
            print(f"{precision:10} not measured: --deadline {args.deadline:g} s passed", flush=True)
            continue
        r = results[precision] = measure(args, device, precision)
        print(f"{precision:10} {r['images_per_s']:10.1f} {r['ms']:9.1f} {r['iterations']:6d} {r['peak_mib']:9.0f}", flush=True)
    if {"bf16", "fp32"} <= set(results):
        print(f"bf16 / fp32 images/s: {results['bf16']['images_per_s'] / results['fp32']['images_per_s']:.2f}", flush=True)


if __name__ == "__main__":
    main()
