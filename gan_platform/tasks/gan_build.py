"""Building the GAN task from its config (conf/task/gan.yaml's `_target_` is `build_gan_task`) and the
task's config rules (`check`, run with the other checks before any work).

The networks come from `cfg.model` by their `_target_`, and their constructor arguments go into
every checkpoint (`model_args`), so that a checkpoint alone rebuilds G (runs/loading.py). The
regularising phases come from `cfg.task.phases` (phases.py), whose weights default to `loss.*`.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from accelerate import Accelerator
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_platform.augment import NoAugment
from gan_platform.errors import ConfigError, instantiate
from gan_platform.tasks.gan import GANTask
from gan_platform.tasks.optim import build_optimizer
from gan_platform.tasks.phases import Phases
from gan_platform.tasks.speed import prepare_networks

log = logging.getLogger("gan_platform.tasks.gan")  # the task's messages keep the one logger name


def check(cfg: DictConfig) -> None:
    """The GAN task's config rules (run with the other checks, before any work)."""
    if str(OmegaConf.select(cfg, "model.generator._target_") or "").endswith("cyclegan.ResnetGenerator"):
        raise ConfigError("model=cyclegan holds image-to-image networks for task=cyclegan: use +experiment=cyclegan, or another model.")
    if cfg.loss.name == "wasserstein" and cfg.loss.gradient_penalty == 0 and cfg.loss.weight_clip == 0:
        raise ConfigError("loss=wasserstein needs a Lipschitz critic: set loss.weight_clip (e.g. 0.01) or "
                          "loss.gradient_penalty (e.g. 10), or use +experiment=wgan / wgan_gp.")
    if cfg.loss.name == "wasserstein" and str(OmegaConf.select(cfg, "augment._target_") or "").endswith("AdaptiveAugment"):
        raise ConfigError("augment=ada steers p by which side of its decision D puts real images, and a Wasserstein "
                          "critic has no decision (adding a constant to it changes nothing): use augment=diffaug, or another loss.")
    check_batch_mixing(cfg)
    check_micro_batch(cfg)
    Phases.from_config(OmegaConf.to_container(cfg.task.phases, resolve=True) if "phases" in cfg.task else {})
    if (OmegaConf.select(cfg, "loss.path_length") or 0) > 0 and not str(OmegaConf.select(cfg, "model.generator._target_") or "").endswith("StyleGAN2Generator"):
        raise ConfigError("loss.path_length regularises how G's images move with w, and this generator has no mapping "
                          "network to W: use model=stylegan2, or set loss.path_length=0.")


def check_micro_batch(cfg: DictConfig) -> None:
    """`trainer.micro_batch` splits each step's batch into whole rounds, each a whole number of packs."""
    m = cfg.trainer.get("micro_batch")
    if m is None:
        return
    batch, pack = int(cfg.trainer.batch_size), int(OmegaConf.select(cfg, "model.discriminator.pack") or 1)
    if isinstance(m, bool) or not isinstance(m, int) or m < 1 or batch % m:
        raise ConfigError(f"trainer.micro_batch must divide trainer.batch_size={batch} into whole rounds, got {m!r}: "
                          f"choose a divisor of {batch} (or null for one round).")
    if m % pack:
        raise ConfigError(f"trainer.micro_batch={m} is not a whole number of packs of {pack} "
                          "(model.discriminator.pack): choose a multiple of the pack.")


def check_batch_mixing(cfg: DictConfig) -> None:
    """Penalties on input gradients against a D that mixes the batch: the gradient penalty needs each
    interpolate judged alone (refused with minibatch-std and BatchNorm); R1/R2 are the gradient of the
    summed scores (stylegan2-ada's definition, fine with minibatch-std) but BatchNorm's batch
    statistics would make them another regulariser altogether (refused)."""
    std = ("model.discriminator.minibatch_std=true", OmegaConf.select(cfg, "model.discriminator.minibatch_std"))
    batch_norm = ("model.discriminator.norm=batch", OmegaConf.select(cfg, "model.discriminator.norm") == "batch")
    for key, mixers in (("loss.gradient_penalty", (std, batch_norm)), ("loss.r1_gamma", (batch_norm,)),
                        ("loss.r2_gamma", (batch_norm,))):
        mixing = [what for what, on in mixers if on]
        if (OmegaConf.select(cfg, key) or 0) > 0 and mixing:
            raise ConfigError(f"{key} needs a critic that judges each sample on its own, and {mixing[0]} mixes the batch: "
                              f"turn it off (minibatch_std=false, or norm=none/layer/instance/spectral) or set {key}=0.")


def data_scale(setting: Any, dataset: Any = None) -> float:
    """`model.data_scale` as a number: `auto` is the radius of a mixture's modes (ring8 1, grid25 4)
    and 1 for other data (images live in [-1, 1]) or when no dataset is at hand (the scale is a
    buffer of the networks, so loading trained weights restores it)."""
    if setting == "auto":
        means = getattr(dataset, "means", None)
        return float(means.abs().max()) if means is not None and float(means.abs().max()) > 0 else 1.0
    return float(setting)


def network_args(cfg: DictConfig, sample_shape: tuple[int, ...], num_classes: int = 0,
                 dataset: Any = None) -> dict[str, dict[str, Any]]:
    """The constructor arguments of G and D (`_target_` included) for samples of `sample_shape`:
    `cfg.model`'s nodes plus what the data decides (shapes, classes, scale)."""
    scaled = {"scale": data_scale(cfg.model.data_scale, dataset)} if "data_scale" in cfg.model else {}
    node = lambda key: OmegaConf.to_container(cfg.model[key], resolve=True)  # noqa: E731
    return {
        "generator": {**node("generator"), "out_shape": list(sample_shape), "z_dim": int(cfg.model.z_dim),
                      "num_classes": num_classes, **scaled},
        "discriminator": {**node("discriminator"), "in_shape": list(sample_shape), "num_classes": num_classes,
                          "conditioning": cfg.model.get("conditioning", "concat"), **scaled},
    }


def build_gan_networks(cfg: DictConfig, sample_shape: tuple[int, ...], num_classes: int = 0,
                       discriminator: bool = True, dataset: Any = None) -> tuple[nn.Module, Optional[nn.Module]]:
    """G (and D unless `discriminator` is false) of `cfg.model` for samples of `sample_shape`;
    `num_classes` > 0 makes them conditional."""
    args = network_args(cfg, sample_shape, num_classes, dataset)
    G = instantiate(args["generator"])
    D = instantiate(args["discriminator"]) if discriminator else None
    return G, D


def build_augment(cfg: DictConfig, dataset: Any) -> nn.Module:
    """The `augment` group's pipeline (by its `_target_`); only images can be augmented."""
    node = OmegaConf.to_container(cfg.augment, resolve=True) if cfg.get("augment") is not None else {}
    name = node.pop("name", "none")  # `name` names the choice; the rest are arguments
    augment = instantiate(node) if node.get("_target_") else NoAugment()
    if type(augment) is not NoAugment and dataset.kind != "images":
        raise ConfigError(f"augment={name} transforms images, and dataset '{dataset.name}' holds "
                          f"{dataset.kind}: use augment=none.")
    return augment


def build_gan_task(cfg: DictConfig, dataset: Any, acc: Accelerator) -> GANTask:
    """conf/task/gan.yaml's `_target_`: networks, an optimizer for each, the task."""
    conditional = bool(cfg.task.conditional)
    if conditional and not dataset.labelled:
        raise ConfigError(f"A conditional GAN needs labelled data, and dataset '{dataset.name}' has no labels: "
                          "choose a labelled dataset (digits, ring8, grid25, an image folder with class subfolders) or set task.conditional=false.")
    num_classes = dataset.num_classes if conditional else 0
    if not conditional and float(cfg.task.mismatch_weight) > 0:
        log.warning("task.mismatch_weight=%g is ignored: this run is unconditional (task.conditional=false).",
                    float(cfg.task.mismatch_weight))
    if conditional and num_classes < 2:
        raise ConfigError(f"A conditional GAN needs at least 2 classes; dataset '{dataset.name}' has {num_classes}.")
    shape = dataset.sample_shape
    z_dim = int(cfg.model.z_dim)
    args = network_args(cfg, shape, num_classes, dataset)
    G, D = instantiate(args["generator"]), instantiate(args["discriminator"])
    prepare_networks([G, D], cfg.trainer)
    g_opt = build_optimizer(cfg.optimizer, G.parameters(), "generator")
    d_opt = build_optimizer(cfg.optimizer, D.parameters(), "discriminator")
    G, g_opt = acc.prepare(G, g_opt)
    D, d_opt = acc.prepare(D, d_opt)
    phases = Phases.from_config(OmegaConf.to_container(cfg.task.phases, resolve=True))
    if acc.is_main_process:
        log.info("Phases of a step: %s.", phases.describe())
    return GANTask(acc, G, D, g_opt, d_opt, loss=cfg.loss.name, z_dim=z_dim, num_classes=num_classes,
                   mismatch_weight=float(cfg.task.mismatch_weight) if conditional else 0.0,
                   gp_weight=float(cfg.loss.gradient_penalty), clip_value=float(cfg.loss.weight_clip),
                   r1_gamma=float(cfg.loss.r1_gamma), r2_gamma=float(cfg.loss.r2_gamma),
                   reg_every=int(cfg.loss.reg_every), augment=build_augment(cfg, dataset).to(acc.device),
                   sample_shape=shape, class_names=dataset.class_names if conditional else None, model_args=args,
                   phases=phases, micro_batch=cfg.trainer.get("micro_batch"),
                   path_length_decay=float(cfg.loss.path_length_decay))
