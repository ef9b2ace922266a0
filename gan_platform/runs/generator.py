"""A trained generator and how it is sampled: the truncation trick, style mixing and latent interpolation.

Shared by `gan_platform.sample` and `gan_platform.evaluate`. G is rebuilt from the checkpoint alone
(loading.py); the EMA generator (`generator_ema`) is used when the checkpoint holds one, unless the
raw one is asked for.

Truncation trades diversity for quality, in one of two spaces (psi = None: no truncation):
- in W, for a generator with a mapping network (StyleGAN2: a `truncate(w, psi)` method and a
  `psi` argument): w' = w_avg + psi (w - w_avg), toward the running average of w; psi = 1 changes
  nothing, psi = 0 gives the average image for every z (Karras et al. 2019);
- in z, for the others (Brock et al. 2019, BigGAN): z ~ N(0, I) with every entry |z_i| > psi
  resampled until it falls within the threshold.
Style mixing (a generator with W only): the layers from a cutoff on take w from a second latent.

Spherical interpolation between latents a and b (White 2016), the path Gaussian latents live on:

    slerp(a, b, t) = sin((1 - t) W) / sin W * a + sin(t W) / sin W * b,   cos W = a.b / (|a| |b|)
"""

from __future__ import annotations

import math
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

    @property
    def has_w(self) -> bool:
        """Whether G maps z into an intermediate latent space W it can truncate and mix in (StyleGAN2)."""
        return callable(getattr(self.generator, "truncate", None))

    @property
    def truncation_space(self) -> str:
        """The space `--truncation` acts in for this generator (module docstring): W or z; evaluation protocols record it."""
        return "W" if self.has_w else "z"

    def noise(self, n: int, seed: int = 0, truncation: Optional[float] = None) -> Tensor:
        """(n, z_dim) latents from `seed`: truncated here for a generator without W, plain for one
        with W (its truncation acts in W, in `sample`)."""
        return truncated_noise(n, self.z_dim, None if self.has_w else truncation, torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def sample(self, n: int, labels: Optional[Tensor] = None, seed: int = 0, batch_size: int = 500,
               z: Optional[Tensor] = None, truncation: Optional[float] = None, mix_z: Optional[Tensor] = None,
               cutoff: Optional[int] = None) -> Tensor:
        """n samples (float32, CPU); `labels` (n,) picks the classes of a conditional generator; `z`
        (n, z_dim) the latents (else drawn from `seed`); `truncation` psi (module docstring: a given z
        is truncated in W, or was truncated when drawn); `mix_z` (n, z_dim) with `cutoff`: style mixing."""
        psi = self._check_psi(truncation)
        self._check_mixing(mix_z, cutoff)
        g = torch.Generator().manual_seed(seed)
        if z is None:
            z = truncated_noise(n, self.z_dim, None if self.has_w else truncation, g)
        if self.num_classes and labels is None:
            labels = torch.randint(self.num_classes, (n,), generator=g)
        device = next(self.generator.parameters()).device
        out = []
        for i in range(0, n, batch_size):
            y = labels[i:i + batch_size].to(device) if labels is not None else None
            extra = {} if not self.has_w else {"psi": psi}
            if mix_z is not None:
                extra.update(mix_z=mix_z[i:i + batch_size].to(device), cutoff=cutoff)
            out.append(self.generator(z[i:i + batch_size].to(device), y, **extra).float().cpu())
        return torch.cat(out) if out else torch.zeros((0, *self.sample_shape))

    def _check_psi(self, truncation: Optional[float]) -> float:
        """psi of a truncation in W (1: none), refused in one sentence unless finite; 1 for a generator without W."""
        if truncation is None or not self.has_w:
            return 1.0
        if not math.isfinite(truncation):
            raise UserError(f"--truncation is psi in w_avg + psi (w - w_avg), a finite number such as 0.7, got {truncation}.")
        return float(truncation)

    def _check_mixing(self, mix_z: Optional[Tensor], cutoff: Optional[int]) -> None:
        """Style mixing needs W and a cutoff among G's layers: otherwise one sentence."""
        if mix_z is None:
            return
        if not self.has_w:
            raise UserError("Style mixing needs a generator with a W space (model=stylegan2), and this run's generator "
                            "maps z to samples directly: drop --style-mix.")
        layers = int(self.generator.num_ws)
        if cutoff is None or not 0 <= cutoff <= layers:
            raise UserError(f"--style-mix is the first of this generator's {layers} layers (0..{layers}) that takes "
                            f"its style from the second latent, got {cutoff}.")


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
