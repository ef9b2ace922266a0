"""Experiment bundles at test size: `tiny_experiment` gives the overrides that make any bundle, a GPU-size
one too, train in seconds on the CPU."""

from __future__ import annotations

from helpers import TINY


# GPU-size bundles train here with narrow networks and a small evaluation: the point is that they compose and run.
# Identity features: the digit classifier at 32 x 32 or 64 x 64 would be trained first (minutes).
GPU_SIZE = {"dcgan64": ["model.generator.width=4", "model.discriminator.width=4", "eval.num_samples=100",
                       "eval.features=identity"],
            "sngan32": ["model.generator.width=8", "model.discriminator.width=8", "eval.num_samples=100",
                        "eval.features=identity"]}


# Presets of packed datasets (dataset=zip) train here on a small labelled zip made in the test, with the
# networks narrowed and the features of the pixels (no Inception weights here).
R3GAN_SIZE = ["model.generator.widths=8", "model.discriminator.widths=8", "model.generator.cardinality=2",
              "model.discriminator.cardinality=2", "model.generator.blocks=1", "model.discriminator.blocks=1"]
STYLEGAN2_SIZE = ["model.z_dim=16", "model.generator.w_dim=16", "model.generator.channel_base=256",
                  "model.generator.channel_max=16", "model.discriminator.channel_base=256", "model.discriminator.channel_max=16",
                  "model.discriminator.mbstd_group_size=4"]
BIGGAN_SIZE = ["model.generator.width=4", "model.discriminator.width=4", "model.generator.attention=8",
               "model.discriminator.attention=8"]
PACKED = {"r3gan_cifar10": (32, R3GAN_SIZE), "r3gan_ffhq64": (64, R3GAN_SIZE), "stylegan2_cifar10": (32, STYLEGAN2_SIZE),
          "stylegan2_ffhq64": (64, STYLEGAN2_SIZE), "biggan_cifar10": (32, BIGGAN_SIZE)}
PACKED_RUN = ["trainer.batch_size=4", "trainer.precision=no", "eval.features=identity", "eval.num_samples=16"]
# The papers' recipes at digits size train here narrower still, with a small final evaluation.
DIGITS32 = {"r3gan_digits32": R3GAN_SIZE, "stylegan2_digits32": STYLEGAN2_SIZE, "biggan_digits32": BIGGAN_SIZE}


def _packed(tmp_path, experiment: str) -> list[str]:
    import numpy as np

    from helpers.dataset_sources import write_stylegan_zip

    side, narrow = PACKED[experiment]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(8)]
    write_stylegan_zip(tmp_path / "set.zip", images, [i % 2 for i in range(8)])
    return [f"dataset.path={tmp_path / 'set.zip'}", *narrow, *PACKED_RUN]


def tiny_experiment(experiment: str, tmp_path=None) -> list[str]:
    """The overrides that run bundle `experiment` at test size (TINY, narrow GPU-size networks, and for a
    preset of a packed dataset a small zip written under `tmp_path`)."""
    if experiment in DIGITS32:
        return [f"+experiment={experiment}", *TINY, *DIGITS32[experiment], "eval.num_samples=64"]
    extra = _packed(tmp_path, experiment) if experiment in PACKED else GPU_SIZE.get(experiment, [])
    return [f"+experiment={experiment}", *TINY, *extra]
