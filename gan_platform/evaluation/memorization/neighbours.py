"""Exact k-nearest-neighbour search in Euclidean distance: torch in row chunks, or faiss.

Memorisation checks ask, for every generated sample, which training sample is nearest (and for
every training sample, which other one). Both back ends are exact (brute force, no index
approximation) and give the same neighbours up to ties and float rounding:

- `torch`: ||q - b||^2 = ||q||^2 + ||b||^2 - 2 q.b, a chunk of query rows at a time, so no full
  M x N matrix is ever held; runs on the data's device (a GPU where there is one).
- `faiss`: faiss-cpu's `IndexFlatL2` (the `features` extra), the same sum by BLAS over blocks,
  on the CPU.

`auto` is torch: on the CPU it was measured 4 to 6 times faster than faiss-cpu's exact search
(torch's MKL matrix product against the faiss wheel's BLAS; benchmarks/nearest_neighbours.py,
numbers in benchmarks/README.md), and it runs on a GPU where the features are. faiss stays a choice
(`eval.nn_search=faiss`) for machines where its BLAS is the faster one.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "faiss")


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(backend: str) -> str:
    """`torch` or `faiss` for `backend` (auto: torch, the faster one where it was measured)."""
    if backend not in BACKENDS:
        from gan_platform.errors import ConfigError

        raise ConfigError(f"eval.nn_search must be one of {', '.join(BACKENDS)}, got '{backend}'.")
    if backend == "faiss" and not faiss_available():
        from gan_platform.errors import ConfigError

        raise ConfigError("eval.nn_search=faiss needs faiss-cpu: pip install 'gan_platform[features]' or set eval.nn_search=torch.")
    return "torch" if backend == "auto" else backend


def _torch_search(queries: Tensor, base: Tensor, k: int, exclude_self: bool, chunk: int) -> tuple[Tensor, Tensor]:
    b2 = (base * base).sum(1)
    dists, idx = [], []
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk]
        d2 = torch.addmm(b2[None, :], q, base.T, alpha=-2.0).add_((q * q).sum(1)[:, None]).clamp_(min=0)
        if exclude_self:
            rows = torch.arange(len(q), device=q.device)
            d2[rows, rows + start] = float("inf")
        d, i = d2.topk(k, dim=1, largest=False)
        dists.append(d.sqrt())
        idx.append(i)
    return torch.cat(dists), torch.cat(idx)


def _faiss_search(queries: Tensor, base: Tensor, k: int, exclude_self: bool) -> tuple[Tensor, Tensor]:
    import faiss

    faiss.omp_set_num_threads(max(1, torch.get_num_threads()))
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base.detach().cpu().float().contiguous().numpy())
    d2, i = index.search(queries.detach().cpu().float().contiguous().numpy(), k + int(exclude_self))
    d2, i = torch.from_numpy(d2).clamp_(min=0), torch.from_numpy(i)
    if exclude_self:  # drop each row's own index (or, where ties hid it, the last column)
        own = i == torch.arange(len(i))[:, None]
        own[~own.any(1), -1] = True
        keep = ~own
        d2, i = d2[keep].view(len(i), k), i[keep].view(len(i), k)
    return d2.sqrt().to(queries.device), i.to(queries.device)


def nearest(queries: Tensor, base: Tensor, k: int = 1, exclude_self: bool = False, backend: str = "auto",
            chunk: int = 1024) -> tuple[Tensor, Tensor]:
    """(distances (M, k), indices (M, k)) of the k nearest rows of `base` (N, d) to each row of
    `queries` (M, d), nearest first. `exclude_self`: queries are base itself, and a row is not its
    own neighbour (a duplicate row still is, at distance 0)."""
    queries, base = queries.flatten(1).float(), base.flatten(1).float()
    if k < 1 or k + int(exclude_self) > len(base):
        raise ValueError(f"{k} nearest neighbours need more than {k - 1 + int(exclude_self)} base rows, got {len(base)}")
    if choose_backend(backend) == "faiss":
        return _faiss_search(queries, base, k, exclude_self)
    return _torch_search(queries, base, k, exclude_self, chunk)
