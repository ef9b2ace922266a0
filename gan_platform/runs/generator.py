"""A trained generator and how it is sampled: the truncation trick and latent interpolation.

Shared by `gan_platform.sample` and `gan_platform.evaluate`. G is rebuilt from the checkpoint alone
(loading.py); the EMA generator (`generator_ema`) is used when the checkpoint holds one, unless the
raw one is asked for.

Truncation (Brock et al. 2019, BigGAN): z ~ N(0, I) with every entry |z_i| > psi resampled until it
falls within the threshold, trading diversity for quality; psi = None is the untruncated prior.
None of the generators here has a mapping network, so there is no W space to scale toward its mean.

Spherical interpolation between latents a and b (White 2016), the path Gaussian latents live on:

    slerp(a, b, t) = sin((1 - t) W) / sin W * a + sin(t W) / sin W * b,   cos W = a.b / (|a| |b|)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from gan_platform.errors import UserError


def truncated_noise(n: int, z_dim: int, psi: Optional[float], generator: torch.Generator) -> Tensor:
    """(n, z_dim) standard normal noise, each entry beyond +-psi redrawn until within (psi None: plain)."""
    z = torch.randn(n, z_dim, generator=generator)
    if psi is None:
        return z
    if not psi > 0:
        raise UserError(f"--truncation must be a positive threshold such as 0.7, got {psi}.")
    outside = z.abs() > psi
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
        outside = z.abs() > psi
    return z


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows a (n, d) and b (n, d) at fractions t (k,): (k, n, d)."""
    cos = ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).clamp(-1, 1)
    omega = torch.acos(cos)[None, :, None]                      # (1, n, 1)
    t = t[:, None, None].to(a.dtype)
    sin = torch.sin(omega)
    linear = (1 - t) * a + t * b                                 # parallel latents: the straight line
    curved = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin.clamp_min(1e-12)
    return torch.where(sin > 1e-6, curved, linear)


@dataclass
class TrainedGenerator:
    """A generator rebuilt from a run, in eval mode on the CPU."""

    generator: nn.Module
    cfg: Optional[DictConfig]   # the run's config, when the checkpoint is in a run dir
    run_dir: Optional[Path]
    checkpoint: Path
    step: int
    sample_shape: tuple[int, ...]
    num_classes: int
    class_names: Optional[list[str]]
    z_dim: int
    network: str = "generator"  # the module used: generator, or generator_ema

    def noise(self, n: int, seed: int = 0, truncation: Optional[float] = None) -> Tensor:
        return truncated_noise(n, self.z_dim, truncation, torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def sample(self, n: int, labels: Optional[Tensor] = None, seed: int = 0, batch_size: int = 500,
               z: Optional[Tensor] = None, truncation: Optional[float] = None) -> Tensor:
        """n samples (float32, CPU); `labels` (n,) picks the classes of a conditional generator; `z`
        (n, z_dim) the latents (else drawn from `seed`, truncated at `truncation`)."""
        g = torch.Generator().manual_seed(seed)
        if z is None:
            z = truncated_noise(n, self.z_dim, truncation, g)
        if self.num_classes and labels is None:
            labels = torch.randint(self.num_classes, (n,), generator=g)
        device = next(self.generator.parameters()).device
        out = []
        for i in range(0, n, batch_size):
            y = labels[i:i + batch_size].to(device) if labels is not None else None
            out.append(self.generator(z[i:i + batch_size].to(device), y).float().cpu())
        return torch.cat(out) if out else torch.zeros((0, *self.sample_shape))


def load_generator(path: str | Path, checkpoint: str = "last", raw: bool = False) -> TrainedGenerator:
    """G of the run at `path`, from checkpoints/`checkpoint` (loading.py: the checkpoint alone
    rebuilds it); its EMA (`generator_ema`) when the checkpoint holds one, unless `raw`."""
    from gan_platform.runs.loading import load_trained

    trained = load_trained(path, ("generator",), checkpoint, task="gan", raw=raw)
    spec, args = trained.task_state, trained.model_args["generator"]
    shape = tuple(spec.get("sample_shape") or args["out_shape"])
    num_classes, names = int(spec.get("num_classes", args.get("num_classes") or 0)), spec.get("class_names")
    network = "generator_ema" if "generator" in trained.averaged else "generator"
    G = trained.modules["generator"]
    return TrainedGenerator(G, trained.cfg, trained.run_dir, trained.checkpoint, trained.step, shape, num_classes,
                            list(names) if names else None, int(G.z_dim), network)
