"""Spectral normalisation of every discriminator (`model.discriminator.spectral_norm`, models/heads.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_platform.models.cyclegan import PatchDiscriminator
from gan_platform.models.dcgan import DCGANDiscriminator
from gan_platform.models.mlp import MLPDiscriminator
from gan_platform.models.resnet import ResNetDiscriminator

DISCRIMINATORS = {
    "mlp": (lambda sn: MLPDiscriminator([2], hidden=32, depth=2, num_classes=3, conditioning="projection",
                                        spectral_norm=sn), lambda: (torch.randn(16, 2), torch.randint(3, (16,)))),
    "dcgan": (lambda sn: DCGANDiscriminator([1, 16, 16], width=8, spectral_norm=sn),
              lambda: (torch.randn(16, 1, 16, 16), None)),
    "patchgan": (lambda sn: PatchDiscriminator([3, 16, 16], width=8, layers=2, spectral_norm=sn),
                 lambda: (torch.randn(16, 3, 16, 16),)),
    "resnet": (lambda sn: ResNetDiscriminator([1, 16, 16], width=16, num_classes=3, conditioning="projection", spectral_norm=sn),
               lambda: (torch.randn(16, 1, 16, 16), torch.randint(3, (16,)))),
}
LAYERS = (nn.Linear, nn.Conv2d, nn.Embedding)


def _largest_singular_values(D: nn.Module) -> list[float]:
    """sigma_max of each layer's weight as the layer uses it (a convolution's as an out x in*k*k matrix)."""
    return [torch.linalg.matrix_norm(m.weight.detach().reshape(m.weight.shape[0], -1), ord=2).item()
            for m in D.modules() if isinstance(m, LAYERS)]


@pytest.mark.parametrize("kind", sorted(DISCRIMINATORS))
def test_every_layer_of_a_spectrally_normalised_discriminator_has_largest_singular_value_one(kind):
    build, batch = DISCRIMINATORS[kind]
    torch.manual_seed(0)
    D = build(True)
    layers = [m for m in D.modules() if isinstance(m, LAYERS)]
    assert layers and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    for _ in range(20):  # power iterations happen in training-mode forwards
        D(*batch())
    sigmas = _largest_singular_values(D.eval())
    assert sigmas == pytest.approx([1.0] * len(sigmas), abs=2e-3), sigmas
    torch.manual_seed(0)
    plain = _largest_singular_values(build(False))
    assert max(abs(s - 1) for s in plain) > 0.1  # without it the weights are not normalised
    # the power-iteration vectors are buffers: in the state dict, so checkpoints keep them
    assert sum(k.endswith("._u") for k in D.state_dict()) == len(layers)


def test_spectral_norm_is_a_checked_model_key():
    from helpers import compose
    from gan_platform.config import validate
    from gan_platform.errors import ConfigError

    for overrides in (["model.discriminator.spectral_norm=true"], ["model=dcgan", "model.discriminator.spectral_norm=true"],
                      ["+experiment=cyclegan", "model.discriminator.spectral_norm=true"]):
        validate(compose(overrides))
    with pytest.raises(ConfigError, match="model.discriminator.spectral_norm must be true or false"):
        validate(compose(["model.discriminator.spectral_norm=yes please"]))
