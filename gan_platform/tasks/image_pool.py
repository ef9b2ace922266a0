"""A history of generated images for the discriminator (Shrivastava et al. 2017, used by CycleGAN).

The discriminator is shown fakes from a pool of the last `size` generated images instead of only
the newest: for each new image, while the pool is not full it is stored and shown; once full, with
probability 1/2 it replaces a random stored image and the stored one is shown, else the new image is
shown. This damps the oscillation where D only remembers G's latest trick.

The pool's choices (swap or not, which stored image) are drawn from its own seeded Python random
generator, not from tensors: reading a drawn tensor back (`.item()`) is a host-device sync, one per
image, which a training step must not make (tests/test_sync_guard.py). Its whole state (images and
generator) is `state_dict()`, so a resumed run continues bit for bit. A checkpoint written when the
pool drew from a torch generator continues with a Python generator seeded from that state: the same
kind of draws, another sequence.
"""

from __future__ import annotations

import hashlib
import random
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
        self.rng = random.Random(int(seed))

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
            elif self.rng.random() < 0.5:
                j = self.rng.randrange(self.size)
                shown.append(self.images[j])
                self.images[j] = image.clone()
            else:
                shown.append(image)
        return torch.stack(shown)

    def state_dict(self) -> dict[str, Any]:
        stored = torch.stack(self.images).cpu() if self.images else torch.zeros(0)
        version, internal, gauss = self.rng.getstate()
        return {"size": self.size, "images": stored, "rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        self.images = [img.to(device) for img in state["images"]] if state["images"].numel() else []
        if "rng" in state:
            version, internal, gauss = state["rng"]
            self.rng.setstate((int(version), tuple(int(x) for x in internal), gauss))
        else:  # a checkpoint from when the pool drew from a torch generator (module docstring)
            self.rng.seed(int.from_bytes(hashlib.sha256(state["generator"].numpy().tobytes()).digest()[:8], "big"))
