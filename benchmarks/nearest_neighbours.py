"""Exact nearest-neighbour search for the memorisation checks: faiss-cpu's IndexFlatL2 against the
platform's chunked torch search, the same random features, the same process. Prints each back
end's time, the ratio, whether they found the same neighbours, and the time extrapolated to
`--target` x `--target` (brute force costs queries x base x d, so time scales with the product).

    python benchmarks/nearest_neighbours.py                                  # 10,000 and 20,000 x 2,048, -> 50,000
    python benchmarks/nearest_neighbours.py --sizes 50000 --dim 2048         # the full size, where memory and time allow
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gan_platform

import argparse
import time

import torch

from gan_platform.evaluation.memorization.neighbours import nearest


def timed(queries: torch.Tensor, base: torch.Tensor, backend: str) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    _, idx = nearest(queries, base, 1, backend=backend)
    if queries.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, idx[:, 0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 20000])
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--target", type=int, default=50000)
    ap.add_argument("--backends", nargs="+", default=["torch", "faiss"])
    ap.add_argument("--device", default="cpu", help="torch's device (faiss-cpu always runs on the CPU)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of both back ends (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # faiss follows torch's count (neighbours.py)
    print(f"{args.dim}-d features, torch threads {torch.get_num_threads()}, torch device {args.device}")
    g = torch.Generator().manual_seed(0)
    for n in args.sizes:
        base = torch.randn(n, args.dim, generator=g)
        queries = base[torch.randperm(n, generator=g)] + 0.05 * torch.randn(n, args.dim, generator=g)  # near-copies
        times, found = {}, {}
        for backend in args.backends:
            device = args.device if backend == "torch" else "cpu"
            nearest(queries[:64].to(device), base[:1024].to(device), 1, backend=backend)  # warm-up
            times[backend], found[backend] = timed(queries.to(device), base.to(device), backend)
        scale = (args.target / n) ** 2
        for backend in args.backends:
            print(f"{n} x {n}: {backend:<6} {times[backend]:8.2f} s  -> {args.target} x {args.target}: "
                  f"{times[backend] * scale:8.0f} s (x{scale:.2f})")
        if len(times) == 2:
            a, b = args.backends
            same = (found[a].cpu() == found[b].cpu()).double().mean().item()
            print(f"{n} x {n}: {b}/{a} time {times[b] / times[a]:.2f}, same nearest neighbour for {100 * same:.2f}%")


if __name__ == "__main__":
    main()
