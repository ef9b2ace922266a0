"""Evaluation helpers: tiny digits and ring runs with the evaluator on, a sampler with no error,
Inception-shaped weights without the real file, and `python -m gan_platform.evaluate` in-process."""

from __future__ import annotations

import torch

from helpers import TINY

RING = TINY + ["+experiment=none", "dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32",
               "trainer.sample_every=0", "trainer.log_every=5"]
DIGITS = TINY + ["+experiment=none", "dataset=digits", "model=dcgan", "model.generator.width=8",
                 "model.discriminator.width=8", "trainer.sample_every=0", "trainer.log_every=5"]


class PerfectSampler:
    """Hands out the dataset's own samples: a generator with no error, in generator form ([-1, 1])."""

    def __init__(self, dataset, generator_seed=0):
        self.dataset, self.z_dim, self.num_classes = dataset, 4, 0
        self.g = torch.Generator().manual_seed(generator_seed)

    def sample(self, n, labels=None, z=None):
        x, _ = self.dataset.sample(n, self.g)
        return x


def inception_shaped_weights(path):
    """A file with the keys and shapes of torch-fidelity's Inception (random values, not the real file)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Blank(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # build the architecture without any weights file
            return None

    empty = path.parent / "empty.pt"
    torch.save({}, empty)
    torch.manual_seed(0)
    torch.save(Blank("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty)).state_dict(), path)
    return path


def evaluate(args, capsys=None):
    """`python -m gan_platform.evaluate ARGS` in this process, which must succeed: its output (read
    from `capsys` when given) and the path of the report it wrote."""
    from gan_platform.evaluate import main as evaluate_main

    assert evaluate_main([str(a) for a in args]) == 0
    out = capsys.readouterr().out if capsys else ""
    path = out.strip().splitlines()[-1].removeprefix("wrote ") if out else None
    return out, path
