"""Reference statistics: the real data's feature mean and covariance in a file, and their cache.

A reference file is an .npz in the layout pytorch-fid and clean-fid write (`mu` (d,), `sigma` (d, d))
plus the protocol that produced it, so a FID against it can be lined up with another tool's:

    num_samples, extractor, num_features, weights_sha256, real_sha256, resize, protocol (JSON of the rest)

A plain pytorch-fid / clean-fid file with only `mu` and `sigma` is read too, with a warning that its
protocol is unknown. The Fréchet distance is the one torchmetrics computes,

    FID = ||mu_r - mu_f||^2 + Tr(S_r) + Tr(S_f) - 2 Tr((S_r S_f)^(1/2)),

so a FID from a reference file equals one from the raw features to float rounding.

Training runs keep the real features (from which the statistics come) in a cache,
`$GAN_PLATFORM_CACHE/real_features/` (default ~/.cache/gan_platform), keyed by the extractor's
weights hash, the real data's hash and the resize mode: a second run on the same data skips them.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import Tensor

from gan_platform.errors import UserError

log = logging.getLogger(__name__)

PROTOCOL_FIELDS = ("extractor", "num_features", "weights_sha256", "real_sha256", "resize_mode")


@dataclass
class ReferenceStats:
    """Mean (d,) and covariance (d, d) of real features, float64, with how they were made."""

    mu: np.ndarray
    sigma: np.ndarray
    num_samples: Optional[int] = None
    protocol: dict[str, Any] = field(default_factory=dict)   # empty: unknown (a plain mu/sigma file)

    @classmethod
    def of(cls, features: Tensor, protocol: Optional[dict[str, Any]] = None) -> "ReferenceStats":
        """Statistics of (N, d) features: the mean and the unbiased covariance, as torchmetrics' FID."""
        f = features.detach().double().cpu()
        mu = f.mean(0)
        centred = f - mu
        sigma = centred.T @ centred / (len(f) - 1)
        return cls(mu.numpy(), sigma.numpy(), len(f), dict(protocol or {}))


def frechet_distance(a: ReferenceStats, b: ReferenceStats) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2)) (torchmetrics' computation:
    the trace of the square root as the sum of the square roots of the eigenvalues of S_a S_b)."""
    mu1, mu2 = torch.from_numpy(a.mu).double(), torch.from_numpy(b.mu).double()
    s1, s2 = torch.from_numpy(a.sigma).double(), torch.from_numpy(b.sigma).double()
    if mu1.shape != mu2.shape:
        raise UserError(f"The reference statistics have {len(mu1)} features but this evaluation's have {len(mu2)}: "
                        "use a reference file made with the same feature extractor.")
    diff = (mu1 - mu2).square().sum()
    root = torch.linalg.eigvals(s1 @ s2).sqrt().real.sum()
    return float(diff + s1.trace() + s2.trace() - 2 * root)


def save_reference(path: str | Path, stats: ReferenceStats) -> Path:
    """Write `stats` as an .npz: mu, sigma (pytorch-fid / clean-fid layout) and the protocol fields."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {k: np.asarray("" if stats.protocol.get(k) is None else str(stats.protocol[k])) for k in PROTOCOL_FIELDS}
    buf = io.BytesIO()
    np.savez(buf, mu=stats.mu, sigma=stats.sigma, num_samples=np.asarray(stats.num_samples or 0), **fields,
             protocol=np.asarray(json.dumps(stats.protocol, sort_keys=True, default=str)))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return path


def load_reference(path: str | Path) -> ReferenceStats:
    """Read our .npz, or a pytorch-fid / clean-fid one (mu and sigma only: warned, protocol unknown)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "mu" not in data or "sigma" not in data:
                raise UserError(f"{path} holds no 'mu' and 'sigma': pass a reference statistics file "
                                "(written by --save-ref, pytorch-fid or clean-fid).")
            mu, sigma = np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
            protocol = json.loads(str(data["protocol"])) if "protocol" in data else {}
            num = int(data["num_samples"]) if "num_samples" in data else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path} cannot be read as an .npz of reference statistics ({e.__class__.__name__}): "
                        "pass a file written by --save-ref, pytorch-fid or clean-fid.") from None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise UserError(f"{path} has mu of shape {mu.shape} and sigma of shape {sigma.shape}: "
                        "mu must be (d,) and sigma (d, d).")
    if not protocol:
        log.warning("%s holds only mu and sigma: its protocol (extractor, weights, resizing, sample count, real "
                    "data) is unknown, so a FID against it may not be comparable.", path)
    return ReferenceStats(mu, sigma, num or None, protocol)


def check_compatible(reference: ReferenceStats, mine: dict[str, Any], path: Any) -> None:
    """Refuse, in one sentence, a reference made with other features (extractor, weights, resizing)."""
    theirs = reference.protocol
    for key in ("extractor", "weights_sha256", "resize_mode"):
        if theirs.get(key) is not None and mine.get(key) is not None and str(theirs[key]) != str(mine[key]):
            raise UserError(f"The reference statistics {path} were made with {key}={theirs[key]} but this evaluation "
                            f"uses {key}={mine[key]}: make the reference with the same features (--save-ref).")


# -- the cache of real features -----------------------------------------------------------------
def cache_dir() -> Path:
    """Where real features are cached: $GAN_PLATFORM_CACHE or ~/.cache/gan_platform."""
    return Path(os.environ.get("GAN_PLATFORM_CACHE", Path.home() / ".cache" / "gan_platform"))


def cache_key(extractor_sha256: str, real_sha256: str, resize: str) -> str:
    return hashlib.sha256(f"{extractor_sha256}|{real_sha256}|{resize}".encode()).hexdigest()[:32]


def cached_real_features(extractor_protocol: dict[str, Any], real_sha256: str,
                         compute: Callable[[], Tensor]) -> tuple[Tensor, bool]:
    """(real features, whether they came from the cache); computed and cached on a miss. Only
    extractors with weights (a SHA-256) are cached: the others are as cheap as reading a file."""
    from gan_platform.runs.rundir import atomic_write_bytes

    sha = extractor_protocol.get("weights_sha256")
    if not sha:
        return compute(), False
    key = cache_key(f"{extractor_protocol.get('extractor')}:{sha}", real_sha256,
                    str(extractor_protocol.get("resize_mode", "")))
    path = cache_dir() / "real_features" / f"{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)["features"], True
        except Exception as e:  # noqa: BLE001 - a damaged cache entry is recomputed, never trusted
            log.warning("Ignoring the unreadable cached real features %s (%s).", path, e)
    features = compute()
    buf = io.BytesIO()
    torch.save({"features": features.detach().cpu(), "real_sha256": real_sha256, **extractor_protocol}, buf)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:  # a read-only home must not stop a run
        log.warning("Could not cache the real features at %s (%s).", path, e)
    return features, False
