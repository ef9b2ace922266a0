"""FreezeD (Mo et al. 2020, "Freeze the Discriminator: a Simple Baseline for Fine-Tuning GANs"):
fine-tuning a trained GAN on a new, small dataset with the first blocks of D frozen.

D's first blocks, counted from the image, extract low-level features that serve the new data as they
served the old; only the later blocks and the head adapt, which keeps D from overfitting the few new
images. `model.discriminator.freeze=k` freezes the first k blocks of every discriminator that has
blocks: their parameters stop requiring gradients, so no backward computes them, no optimizer holds
them (tasks/optim.py), weight clipping leaves them alone (losses/regularizers.py) and a G step's
freezing and unfreezing of D does not wake them (tasks/gan.py, tasks/cyclegan.py). Buffers are not
parameters: spectral norm's power iteration still refines its estimate of a frozen layer's sigma.

What a block is, network by network (the head, which scores, always trains):

| network | blocks, from the image |
|---|---|
| mlp | each hidden layer (linear, activation) |
| dcgan | each strided convolution with its norm and activation |
| resnet (SNGAN) | each residual block |
| biggan | each residual block, with the self-attention that follows it |
| r3gan | each stage (its residual blocks and the transition after them; the first with the 1 x 1 input convolution) |
| stylegan2 | each resolution's block (the first with FromRGB); the 4 x 4 epilogue is the head |
| cyclegan (PatchGAN) | each convolution with its norm and activation; the last convolution is the head |

`freeze=0` (the default) trains everything; more blocks than D has is refused in one sentence.
Freezing is most useful with `trainer.init_from` (docs/training.md#fine-tuning-trainerinit_from-and-freezed):
a D frozen from a random start keeps random features.
"""

from __future__ import annotations

from typing import Sequence, Union

from torch import nn

from gan_platform.errors import ConfigError

Block = Union[nn.Module, Sequence[nn.Module]]


def freeze_blocks(blocks: Sequence[Block], freeze: int, network: str) -> None:
    """Stop the parameters of `blocks[:freeze]` from training; `network` names D in the refusal
    (e.g. "dcgan's D for 32 x 32 images")."""
    if isinstance(freeze, bool) or not isinstance(freeze, int) or not 0 <= freeze <= len(blocks):
        raise ConfigError(f"model.discriminator.freeze={freeze!r} is not a number of blocks of {network}, which has "
                          f"{len(blocks)}: set it between 0 (train every block) and {len(blocks)} (train only the head).")
    for block in blocks[:freeze]:
        for module in (block if isinstance(block, (list, tuple)) else [block]):
            module.requires_grad_(False)


def trainable(parameters) -> list[nn.Parameter]:
    """The parameters that train (not frozen)."""
    return [p for p in parameters if p.requires_grad]
