"""Adaptive discriminator augmentation (Karras et al., "Training Generative Adversarial Networks
with Limited Data", NeurIPS 2020): the paper's `bgc` pipeline, with a probability p that D's
overfitting steers.

The pipeline (blit.py, geometric.py, colour.py): each transformation runs on each image after a
coin of its own that comes up with probability p; some then draw the identity among their
outcomes, which sets the rate at which an image is actually changed (at p = 1 the flip is a fair
coin, so an image and its mirror then look the same to D: p must stay below 1):

    stage       transformation  magnitude                                rate
    blit        xflip           mirror left-right                        p/2
                rotate90        k x 90 degrees, k in {1, 2, 3}           3p/4
                xint            round(U(-1/8, 1/8) side) pixels          p (a shift that rounds to 0: none)
    geometric   scale           2^N(0, 0.2^2)                            p
                rotate          U(-pi, pi), before and after aniso       p (either or both)
                aniso           diag(s, 1/s), s = 2^N(0, 0.2^2)          p
                xfrac           N(0, (0.125 side)^2) pixels              p
    colour      brightness      + N(0, 0.2^2)                            p
                contrast        x 2^N(0, 0.5^2) about 0                  p
                lumaflip        luma inverted, chroma kept               p/2
                hue             rotation about the grey axis, U(-pi, pi) p (colour images)
                saturation      chroma x 2^N(0, 1)                       p (colour images)

`transforms` picks which run (all twelve by default, `bgc`); they run in this order. Pixels moved
in from outside the image are the image reflected. Every step is differentiable, runs on the
images' device for any batch size, and draws from torch's global generator (restored on resume).

Steering p: r_t = E[sign(e)] over the real images of the last `interval` D steps, where e says on
which side of its decision D put each real image (the task computes it from the loss: D(x) for a
logit or hinge score, D(x) - 1/2 for least squares, D(x) - D(G(z)) of its pair for RpGAN; a
Wasserstein critic has no decision and is refused). Then p += sign(r_t - target) x (images in the
interval) / speed_images, clamped to [0, 1]. The paper's settings: target 0.6, an adjustment every
4 minibatches, p from 0 to 1 in 500k images (`ada_kimg=500`), p starting at 0. Here `speed_images`
defaults to 100k because the platform's runs are short (a digits run of 10,000 steps at batch 32
sees 320k images: at 500k p could not reach 1 in it); `initial_p` starts at the paper's 0. p and
r_t stay on the device: the adjustment costs no host sync (with several processes it is one
all-reduce per interval, so p is the same on every rank). The paper (section 2.2, figure 4) finds
that its pipeline does not leak into G's samples while p stays below about 0.8.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from gan_platform.augment.base import NoAugment
from gan_platform.augment.blit import blit, draw_blit
from gan_platform.augment.colour import draw_colour, recolour
from gan_platform.augment.geometric import draw_geometric, resample
from gan_platform.errors import ConfigError, UserError

STAGES = {"blit": ("xflip", "rotate90", "xint"),
          "geometric": ("scale", "rotate", "aniso", "xfrac"),
          "colour": ("brightness", "contrast", "lumaflip", "hue", "saturation")}
TRANSFORMS = tuple(name for names in STAGES.values() for name in names)


class AdaptiveAugment(NoAugment):
    """`augment=ada`: the chosen transformations of the `bgc` pipeline, each with the adaptive probability p."""

    def __init__(self, target: float = 0.6, interval: int = 4, speed_images: int = 100_000, initial_p: float = 0.0,
                 transforms: Sequence[str] = TRANSFORMS):
        super().__init__()
        unknown = [t for t in transforms if t not in TRANSFORMS]
        if unknown:
            raise ConfigError(f"augment.transforms has unknown entries {unknown}: choose from {', '.join(TRANSFORMS)}.")
        self.target, self.interval, self.speed_images = float(target), int(interval), float(speed_images)
        self.transforms = [t for t in TRANSFORMS if t in transforms]  # the paper's order, whatever the config's
        self.stages = {stage: set(names) & set(self.transforms) for stage, names in STAGES.items()}
        self.register_buffer("p", torch.tensor(float(initial_p)))
        self.register_buffer("r_t", torch.zeros(()))        # the last finished interval's E[sign(e)], for the log
        self.register_buffer("sign_sum", torch.zeros(()))   # sum of sign(e) since the last adjustment
        self.register_buffer("score_count", torch.zeros(()))
        self.steps_observed = 0   # D steps since the last adjustment (host-side, no sync)
        self.images_observed = 0  # real images D judged since the last adjustment, this process

    # -- the pipeline ----------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        p = self.p.float()
        blits, geometric, colour = self.stages["blit"], self.stages["geometric"], self.stages["colour"]
        if blits:
            if "rotate90" in blits and h != w:
                raise UserError(f"augment.transforms has rotate90, which needs square images, and these are {h} x {w}: "
                                "remove rotate90 from augment.transforms.")
            x = blit(x, *draw_blit(n, p, blits, (h, w), x.device))
        if geometric:
            x = resample(x, draw_geometric(n, p, geometric, (h, w), x.device))
        if colour:
            x = recolour(x, draw_colour(n, p, colour, x.device))
        return x

    # -- steering p ------------------------------------------------------------------------
    @torch.no_grad()
    def observe(self, evidence: Tensor, num_images: int) -> None:
        """Accumulate sign(e) (module docstring); every `interval` D steps move p toward the target."""
        self.sign_sum += evidence.detach().float().sign().sum()
        self.score_count += evidence.numel()
        self.steps_observed += 1
        self.images_observed += int(num_images)
        if self.steps_observed >= self.interval:
            self.adjust()

    @torch.no_grad()
    def adjust(self) -> None:
        """p += sign(r_t - target) * images / speed_images (clamped to [0, 1]), then a new interval."""
        stats = torch.stack([self.sign_sum, self.score_count])
        images = self.images_observed
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)
            images *= dist.get_world_size()
        self.r_t.copy_(stats[0] / stats[1].clamp(min=1))
        if self.speed_images > 0:  # 0: p stays where it is set (initial_p, or a schedule); r_t is still measured
            self.p.copy_((self.p + torch.sign(self.r_t - self.target) * (images / self.speed_images)).clamp(0.0, 1.0))
        self.sign_sum.zero_()
        self.score_count.zero_()
        self.steps_observed = self.images_observed = 0

    def logs(self) -> dict[str, Tensor]:
        """p and the r_t that last moved it (0 before the first interval ends)."""
        return {"augment_p": self.p.detach().clone(), "augment_rt": self.r_t.detach().clone()}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Checkpoints written before r_t was kept for the log lack it: it starts at 0 (the value it has
        before an interval ends), rather than refusing a resume of ADA by ADA."""
        if prefix + "p" in state_dict and prefix + "r_t" not in state_dict:
            state_dict[prefix + "r_t"] = torch.zeros(())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # the host-side counters travel in the state_dict, so resume continues the interval exactly
    def get_extra_state(self) -> Any:
        return {"steps_observed": self.steps_observed, "images_observed": self.images_observed}

    def set_extra_state(self, state: Any) -> None:
        self.steps_observed, self.images_observed = int(state["steps_observed"]), int(state["images_observed"])
