"""Adaptive discriminator augmentation (Karras et al., "Training Generative Adversarial Networks
with Limited Data", 2020; stylegan2-ada-pytorch's `AugmentPipe` and its `ada_target`).

Each transformation is applied to each image independently with probability p:

    xflip        a horizontal flip
    rotate90     a rotation by 90, 180 or 270 degrees
    translation  an integer shift of up to 1/8 of the side each way, reflected at the border
    brightness   + N(0, 0.2^2)
    contrast     about the image mean, times 2^N(0, 0.5^2)
    saturation   (colour images) chroma about the luma, times 2^N(0, 1)

p is steered by the overfitting heuristic r_t = E[sign(D(x_real))] over the last `interval` D steps:
p += sign(r_t - target) * (images in the interval) / `speed_images`, clamped to [0, 1] (p can go
from 0 to 1 in `speed_images` images; stylegan2-ada uses 500k, our runs are shorter). p and the
accumulator of r_t stay on the device: the adjustment costs no host sync (with several processes
it is one all-reduce per interval, so p is the same on every rank). At p < ~0.8 the
transformations do not leak into G's samples (the paper's figure 4).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from gan_platform.augment.base import NoAugment
from gan_platform.errors import ConfigError

TRANSFORMS = ("xflip", "rotate90", "translation", "brightness", "contrast", "saturation")


def _apply(mask: Tensor, changed: Tensor, x: Tensor) -> Tensor:
    return torch.where(mask.view(-1, 1, 1, 1), changed, x)


def _reflect(index: Tensor, size: int) -> Tensor:
    """Indices folded back into [0, size) by mirroring at the borders."""
    period = 2 * size - 2
    index = torch.remainder(index, period)
    return torch.where(index >= size, period - index, index)


def translate_reflect(x: Tensor, ty: Tensor, tx: Tensor) -> Tensor:
    """Shift image i by (ty[i], tx[i]) whole pixels, the border reflected in."""
    n, _, h, w = x.shape
    gy = _reflect(torch.arange(h, device=x.device).view(1, h, 1) - ty.view(n, 1, 1), h).expand(n, h, w)
    gx = _reflect(torch.arange(w, device=x.device).view(1, 1, w) - tx.view(n, 1, 1), w).expand(n, h, w)
    b = torch.arange(n, device=x.device).view(n, 1, 1).expand(n, h, w)
    return x.permute(0, 2, 3, 1)[b, gy, gx].permute(0, 3, 1, 2)


class AdaptiveAugment(NoAugment):
    """`augment=ada`: the transformations above, each with the adaptive probability p."""

    def __init__(self, target: float = 0.6, interval: int = 4, speed_images: int = 100_000, initial_p: float = 0.0,
                 transforms: Sequence[str] = TRANSFORMS, translation: float = 0.125):
        super().__init__()
        unknown = [t for t in transforms if t not in TRANSFORMS]
        if unknown:
            raise ConfigError(f"augment.transforms has unknown entries {unknown}: choose from {', '.join(TRANSFORMS)}.")
        self.target, self.interval, self.speed_images = float(target), int(interval), float(speed_images)
        self.transforms, self.translation = list(transforms), float(translation)
        self.register_buffer("p", torch.tensor(float(initial_p)))
        self.register_buffer("sign_sum", torch.zeros(()))   # sum of sign(D(x_real)) since the last adjustment
        self.register_buffer("score_count", torch.zeros(()))
        self.steps_observed = 0   # D steps since the last adjustment (host-side, no sync)
        self.images_observed = 0  # real images D judged since the last adjustment, this process

    # -- the pipeline ----------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        p = self.p.to(x.dtype)
        chosen = lambda: torch.rand(n, device=x.device) < p  # noqa: E731 - a fresh draw per transformation
        for name in self.transforms:
            if name == "xflip":
                x = _apply(chosen(), x.flip(3), x)
            elif name == "rotate90" and h == w:
                k = torch.randint(1, 4, (n,), device=x.device) * chosen()
                for turns in (1, 2, 3):
                    x = _apply(k == turns, torch.rot90(x, turns, dims=(2, 3)), x)
            elif name == "translation":
                on = chosen()
                ty = (torch.rand(n, device=x.device) * 2 - 1) * self.translation * h
                tx = (torch.rand(n, device=x.device) * 2 - 1) * self.translation * w
                x = translate_reflect(x, ty.round().long() * on, tx.round().long() * on)
            elif name == "brightness":
                x = _apply(chosen(), x + torch.randn(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 0.2, x)
            elif name == "contrast":
                factor = torch.exp2(torch.randn(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 0.5)
                mean = x.mean(dim=(1, 2, 3), keepdim=True)
                x = _apply(chosen(), (x - mean) * factor + mean, x)
            elif name == "saturation" and c == 3:
                factor = torch.exp2(torch.randn(n, 1, 1, 1, device=x.device, dtype=x.dtype))
                luma = x.mean(dim=1, keepdim=True)
                x = _apply(chosen(), (x - luma) * factor + luma, x)
        return x

    # -- steering p ------------------------------------------------------------------------
    @torch.no_grad()
    def observe(self, real_scores: Tensor, num_images: int) -> None:
        """Accumulate sign(D(x_real)); every `interval` D steps move p toward the target."""
        scores = real_scores.detach().float()
        self.sign_sum += scores.sign().sum()
        self.score_count += scores.numel()
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
        r_t = stats[0] / stats[1].clamp(min=1)
        self.p.copy_((self.p + torch.sign(r_t - self.target) * (images / self.speed_images)).clamp(0.0, 1.0))
        self.sign_sum.zero_()
        self.score_count.zero_()
        self.steps_observed = self.images_observed = 0

    def logs(self) -> dict[str, Tensor]:
        return {"augment_p": self.p.detach().clone()}

    # the host-side counters travel in the state_dict, so resume continues the interval exactly
    def get_extra_state(self) -> Any:
        return {"steps_observed": self.steps_observed, "images_observed": self.images_observed}

    def set_extra_state(self, state: Any) -> None:
        self.steps_observed, self.images_observed = int(state["steps_observed"]), int(state["images_observed"])
