"""A history of generated images for the discriminator (Shrivastava et al. 2017, used by CycleGAN).

The discriminator is shown fakes from a pool of the last `size` generated images instead of only
the newest: for each new image, while the pool is not full it is stored and shown; once full, with
probability 1/2 it replaces a random stored image and the stored one is shown, else the new image is
shown. This damps the oscillation where D only remembers G's latest trick.

The pool draws from its own seeded generator and its whole state (images and generator) is
`state_dict()`, so a resumed run continues bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class ImagePool:
    """`query(images)` -> the images D is shown instead, of the same shape (see the module docstring)."""

    def __init__(self, size: int = 50, seed: int = 0):
        if size < 0:
            raise ValueError(f"an image pool holds zero or more images, got size {size}")
        self.size = int(size)
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images.detach()
        shown = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                shown.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                j = int(torch.randint(self.size, (), generator=self.generator).item())
                shown.append(self.images[j])
                self.images[j] = image.clone()
            else:
                shown.append(image)
        return torch.stack(shown)

    def state_dict(self) -> dict[str, Any]:
        stored = torch.stack(self.images).cpu() if self.images else torch.zeros(0)
        return {"size": self.size, "images": stored, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        self.images = [img.to(device) for img in state["images"]] if state["images"].numel() else []
        self.generator.set_state(state["generator"])
