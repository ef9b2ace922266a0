"""Differentiable augmentation of every image the discriminator sees, real and fake, in both steps.

A small dataset lets D memorise its images; augmenting what D sees (with an operation that G's
gradient passes through) keeps D from overfitting without leaking the augmentation into G's
samples. Chosen by the `augment` config group and built by `_target_` (tasks/gan.py applies it):

    none      NoAugment: D sees the images as they are
    diffaug   DiffAugment (Zhao et al. 2020): color, translation, cutout, always on
    ada       AdaptiveAugment (Karras et al. 2020, stylegan2-ada): the paper's `bgc` pipeline of pixel
              blits (blit.py), general geometric transformations (geometric.py) and colour
              transformations (colour.py), each with a probability p that D's overfitting steers

Every pipeline is an `nn.Module` taking (N, C, H, W) images in [-1, 1], with `observe(evidence, n)`
after each D step (the sign of each real image's score from D's decision), `logs()` for the
trainer and its state in `state_dict()` (in checkpoints).
"""

from gan_platform.augment.ada import AdaptiveAugment
from gan_platform.augment.base import NoAugment
from gan_platform.augment.diffaug import DiffAugment

__all__ = ["AdaptiveAugment", "DiffAugment", "NoAugment"]
