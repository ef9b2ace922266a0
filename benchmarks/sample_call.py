"""Microseconds for one `TensorDataset.sample(64)` on the bundled digits held in memory: the call
every training step makes twice (D and G), timed in this checkout, to compare with another.

    OMP_NUM_THREADS=1 python benchmarks/sample_call.py                       # this checkout
    cd OTHER && PYTHONPATH=OTHER OMP_NUM_THREADS=1 python /path/to/sample_call.py   # another one

Method: 200 calls of warm-up, then 5 passes of 2,000 calls; the median pass, per call.
"""

from __future__ import annotations

import statistics
import time

import torch


def main() -> None:
    from gan_platform.data.digits import digits

    torch.set_num_threads(1)
    ds = digits(16)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        ds.sample(64, g)
    passes = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(2000):
            ds.sample(64, g)
        passes.append((time.perf_counter() - start) / 2000 * 1e6)
    print(f"{statistics.median(passes):.1f} us per sample(64)")


if __name__ == "__main__":
    main()
