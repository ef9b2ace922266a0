"""The GAN training step, unconditional and conditional.

One critic step:  L_D = d(D(x, c), D(G(z, c), c))              objectives.py: d_real + d_fake, or d_pair
                        [+ w * d_wrong_label(D(x, c_wrong))]   conditional: reject real x with a wrong label
                        [+ lambda * E[(||grad D(x_hat, c)|| - 1)^2]]   WGAN-GP (per pack under PacGAN)
                        [+ k gamma1/2 E||grad_x D(x, c)||^2]     R1, every k-th step (lazy regularisation)
                        [+ k gamma2/2 E||grad_x D(G(z, c), c)||^2]  R2, the same on fakes
                  then clip D's weights into [-c, c]          WGAN
One generator step: L_G = g(D(x, c), D(G(z, c), c)), with D frozen (D(x) only for a pairing
objective such as RpGAN).

Where D judges each sample alone (no BatchNorm or minibatch-std in D: speed.judges_samples_alone),
the critic step scores the real batch and the fakes in one D pass over both, split after; otherwise
in two passes, one per batch.

D sees every image, real and fake, in both steps, through the augmentation pipeline A
(gan_platform/augment/; `augment=none` is the identity): D(x) above is D(A(x)). The R1/R2 gradients
are taken with respect to the images before A (as stylegan2-ada does). An adaptive pipeline (ADA)
observes D's scores on the real batch of each D step.

Health signals, measured only when the trainer sets `measure_health` (the last iteration of a log
window, training/health.py): the gradient norms ||grad L_D|| and ||grad L_G|| over D's and G's
parameters, and D's accuracy on real and fake samples, i.e. the fraction of scores on the right
side of the loss's decision threshold (`DECISION_THRESHOLDS`; a Wasserstein critic has none).

In a conditional run the fakes of both steps get the labels of the real batch drawn for that step:
G learns the classes in the data's proportions, and the gradient penalty's interpolates
x_hat = eps x + (1 - eps) G(z, c) join a real and a fake sample of the same class c, judged under c.
Sampling outside training (grids, evaluation) draws classes uniformly unless labels are given.

The module owns the task's builder (`build_gan_task`, named by conf/task/gan.yaml's `_target_`) and
its config rules (`check`); the networks come from `cfg.model` by their `_target_`, and their
constructor arguments go into every checkpoint (`model_args`), so that a checkpoint alone rebuilds
G (runs/loading.py).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import torch
from accelerate import Accelerator
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from gan_platform.errors import ConfigError, UserError, instantiate
from gan_platform.augment import NoAugment
from gan_platform.losses import clip_weights, get_loss, gradient_penalty, squared_gradient_norm
from gan_platform.tasks.optim import build_optimizer, hot_optimizer, loss_scale
from gan_platform.tasks.speed import judges_samples_alone, prepare_networks, set_requires_grad

log = logging.getLogger(__name__)

# The score at which D's loss says "real" rather than "fake": the sign of a logit or a hinge score,
# 1/2 between least squares' targets 0 and 1. A loss not listed (a critic) has no accuracy.
DECISION_THRESHOLDS = {"minimax": 0.0, "nonsaturating": 0.0, "hinge": 0.0, "least_squares": 0.5}


def decision_accuracies(real_scores: Tensor, fake_scores: Tensor, threshold: float) -> dict[str, Tensor]:
    """D's accuracy on real and on fake samples: the share of each on its side of `threshold`."""
    return {"d_acc_real": (real_scores.detach().float() > threshold).float().mean(),
            "d_acc_fake": (fake_scores.detach().float() < threshold).float().mean()}


def gradient_norm(module: nn.Module, scale: float = 1.0) -> Tensor:
    """||grad|| over all parameters of `module` that have one (divided by a gradient scaler's scale), on the device."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))).float() / scale


class GANTask:
    """Adversarial training of `generator` against `discriminator` with a named loss."""

    def __init__(self, accelerator: Accelerator, generator: nn.Module, discriminator: nn.Module,
                 g_optimizer: torch.optim.Optimizer, d_optimizer: torch.optim.Optimizer, *,
                 loss: str, z_dim: int, num_classes: int = 0, mismatch_weight: float = 0.0,
                 gp_weight: float = 0.0, clip_value: float = 0.0, r1_gamma: float = 0.0, r2_gamma: float = 0.0,
                 reg_every: int = 1, augment: Optional[nn.Module] = None, sample_shape: tuple[int, ...] = (),
                 class_names: Optional[list[str]] = None, model_args: Optional[dict[str, dict[str, Any]]] = None):
        if mismatch_weight > 0 and num_classes < 2:
            raise ConfigError("task.mismatch_weight > 0 needs a conditional run with at least 2 classes: set task.conditional=true or task.mismatch_weight=0.")
        self.accelerator = accelerator
        self.generator, self.discriminator = generator, discriminator
        self.modules = {"generator": generator, "discriminator": discriminator}
        self.optimizers = {"generator": g_optimizer, "discriminator": d_optimizer}
        self._step_optimizers = {k: hot_optimizer(accelerator, o) for k, o in self.optimizers.items()}
        self.loss = get_loss(loss)
        self.z_dim, self.num_classes = z_dim, num_classes
        self.mismatch_weight, self.gp_weight, self.clip_value = mismatch_weight, gp_weight, clip_value
        self.r1_gamma, self.r2_gamma, self.reg_every = float(r1_gamma), float(r2_gamma), int(reg_every)
        self.d_steps_done = 0  # for the lazy interval; in the checkpoint (extra_state)
        self.augment = augment if augment is not None else NoAugment()
        self.device = accelerator.device
        self.sample_shape, self.class_names = tuple(sample_shape), class_names
        self._d_frozen = accelerator.unwrap_model(discriminator)
        # D's parameters, listed once: freezing them for each G step loops over this list instead of
        # Module.requires_grad_'s walk of the module tree (~0.1 ms a call on the MLPs, per call); those
        # that train: a G step must not wake the blocks FreezeD froze (models/freeze.py)
        self._d_params = [p for p in self._d_frozen.parameters() if p.requires_grad]
        self.one_pass = judges_samples_alone(self._d_frozen)  # the critic step's D pass over real and fakes together
        # What samples (grids, evaluation): G itself, or its average (training/ema.py replaces it).
        self.generators = ("generator",)
        self.inference: dict[str, nn.Module] = {"generator": accelerator.unwrap_model(generator)}
        # The networks' constructor arguments (with `_target_`): a checkpoint alone rebuilds them (runs/loading.py).
        self.model_args = model_args or {}
        self.threshold = DECISION_THRESHOLDS.get(self.loss.name)
        self.measure_health = False  # the trainer sets it for the steps whose health signals it logs

    # -- inputs ----------------------------------------------------------------------------
    def noise(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        return torch.randn(n, self.z_dim, device=self.device, generator=generator)

    def random_labels(self, n: int, generator: Optional[torch.Generator] = None) -> Optional[Tensor]:
        if not self.num_classes:
            return None
        return torch.randint(self.num_classes, (n,), device=self.device, generator=generator)

    def wrong_labels(self, labels: Tensor) -> Tensor:
        """A label != the true one for every sample, uniformly among the others."""
        shift = torch.randint(1, self.num_classes, labels.shape, device=labels.device)
        return (labels + shift) % self.num_classes

    # -- steps -----------------------------------------------------------------------------
    def d_step(self, real: Tensor, labels: Optional[Tensor]) -> dict[str, Tensor]:
        G, D, A, acc = self.generator, self.discriminator, self.augment, self.accelerator
        n = real.shape[0]
        cond = labels if self.num_classes else None  # the fakes get the same classes
        self.d_steps_done += 1
        regularise = self.d_steps_done % self.reg_every == 0  # lazy regularisation: every k-th D step
        r1, r2 = regularise and self.r1_gamma > 0, regularise and self.r2_gamma > 0
        with torch.no_grad(), acc.autocast():
            fake = G(self.noise(n), cond)
        if r1:
            real = real.detach().requires_grad_(True)
        if r2:
            fake = fake.detach().requires_grad_(True)
        with acc.autocast():
            seen_real = A(real)
            if self.one_pass:  # the same scores as two passes, from one (speed.py)
                both = torch.cat([cond, cond]) if cond is not None else None
                real_scores, fake_scores = D(torch.cat([seen_real, A(fake)]), both).chunk(2)
            else:
                real_scores = D(seen_real, cond)
                fake_scores = D(A(fake), cond)
            loss = self.loss.d(real_scores, fake_scores)
            logs = {"d_real": real_scores.detach().float().mean(), "d_fake": fake_scores.detach().float().mean()}
            if self.mismatch_weight > 0:
                wrong_scores = D(seen_real, self.wrong_labels(cond))
                loss = loss + self.mismatch_weight * self.loss.d_wrong_label(real_scores, wrong_scores)
                logs["d_wrong_label"] = wrong_scores.detach().float().mean()
            if self.loss.name == "wasserstein":
                logs["wasserstein"] = logs["d_real"] - logs["d_fake"]
        A.observe(real_scores, n)
        logs.update(A.logs())
        scale = loss_scale(acc)
        if r1:  # R1 = gamma/2 E||grad_x D(x)||^2 under the true label, scaled by the interval k
            penalty = squared_gradient_norm(real_scores, real, scale)
            loss = loss + (0.5 * self.r1_gamma * self.reg_every) * penalty
            logs["r1_penalty"] = penalty.detach()
        if r2:  # R2: the same on the fakes
            penalty = squared_gradient_norm(fake_scores, fake, scale)
            loss = loss + (0.5 * self.r2_gamma * self.reg_every) * penalty
            logs["r2_penalty"] = penalty.detach()
        if self.gp_weight > 0:
            extra = (cond,) if self.num_classes else ()
            with acc.autocast():
                penalty = gradient_penalty(lambda x, *c: D(A(x), *c), real, fake, *extra, scale=scale,
                                           pack=getattr(self._d_frozen, "pack", 1))
            loss = loss + self.gp_weight * penalty
            logs["grad_penalty"] = penalty.detach()
        opt = self._step_optimizers["discriminator"]
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        if self.measure_health:
            logs.update(self._health(D, real_scores, fake_scores, "d"))
        opt.step()
        if self.clip_value > 0:
            clip_weights(D, self.clip_value)
        logs["d_loss"] = loss.detach().float()
        return logs

    def g_step(self, real: Tensor, labels: Optional[Tensor]) -> dict[str, Tensor]:
        G, A, acc = self.generator, self.augment, self.accelerator
        n = real.shape[0]
        y = labels if self.num_classes else None
        D = self._d_frozen  # unwrapped and frozen: no DDP sync of D's (unused) gradients
        set_requires_grad(self._d_params, False)
        try:
            with acc.autocast():
                fake_scores = D(A(G(self.noise(n), y)), y)
                real_scores = None
                if self.loss.g_uses_real:  # a pairing objective: D(x) of this real batch, a constant for G
                    with torch.no_grad():
                        real_scores = D(A(real), y)
                loss = self.loss.g(real_scores, fake_scores)
            opt = self._step_optimizers["generator"]
            opt.zero_grad(set_to_none=True)
            acc.backward(loss)
            logs = self._health(G, None, None, "g") if self.measure_health else {}
            opt.step()
        finally:
            set_requires_grad(self._d_params, True)
        return {"g_loss": loss.detach().float(), **logs}

    def _health(self, net: nn.Module, real_scores: Optional[Tensor], fake_scores: Optional[Tensor],
                side: str) -> dict[str, Tensor]:
        """The health signals of one step (module docstring), as 0-d tensors on the device."""
        logs = {f"{side}_grad_norm": gradient_norm(net, loss_scale(self.accelerator))}
        if real_scores is not None and self.threshold is not None:
            logs.update(decision_accuracies(real_scores, fake_scores, self.threshold))
        return logs

    # -- sampling --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, labels: Optional[Tensor] = None, z: Optional[Tensor] = None,
               batch_size: int = 500) -> Tensor:
        """n samples from G (or its average, `inference`) in eval mode (in batches), float32, with labels or random classes."""
        G = self.inference["generator"]
        was_training = G.training
        G.eval()
        try:
            if self.num_classes and labels is None:
                labels = self.random_labels(n)
            z = self.noise(n) if z is None else z
            out = []
            for i in range(0, n, batch_size):
                y = labels[i:i + batch_size] if labels is not None else None
                with self.accelerator.autocast():
                    out.append(G(z[i:i + batch_size], y).float())
            return torch.cat(out)
        finally:
            G.train(was_training)

    def grid_inputs(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        """Fixed inputs for the sample grids: the same z at every step, so progress is visible.
        Conditional runs get one row per class. 2-D points get at least 1,000, so that the scatter
        plot shows which modes are covered (64 dots cannot show 25 modes)."""
        if len(self.sample_shape) == 1:
            n = max(n, 1000)
        if self.num_classes:
            per_class = max(1, n // self.num_classes)
            labels = torch.arange(self.num_classes).repeat_interleave(per_class)
            z = torch.randn(len(labels), self.z_dim, generator=generator)
            return {"z": z, "labels": labels}
        return {"z": torch.randn(n, self.z_dim, generator=generator)}

    def sample_grid(self, fixed: dict[str, Tensor]) -> Tensor:
        labels = fixed.get("labels")
        return self.sample(len(fixed["z"]), labels.to(self.device) if labels is not None else None,
                           fixed["z"].to(self.device))

    def grid_rows(self, fixed: dict[str, Tensor]) -> int:
        return self.num_classes if self.num_classes else 0

    def extra_state(self) -> dict[str, Any]:
        """What G was built for, so a checkpoint alone can rebuild it (`gan_platform.sample`), and the
        step's own state: the lazy-regularisation counter and the augmentation pipeline (ADA's p)."""
        return {"sample_shape": list(self.sample_shape), "num_classes": self.num_classes,
                "class_names": list(self.class_names) if self.class_names else None,
                "d_steps_done": self.d_steps_done, "augment": self.augment.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "augment" in state:
            try:
                self.augment.load_state_dict(state["augment"])
            except RuntimeError as e:
                raise UserError("The checkpoint's augmentation state does not fit this run's augment choice: "
                                "resume with the augment=... the run was started with.") from e
        self.d_steps_done = int(state.get("d_steps_done", 0))


# -- building --------------------------------------------------------------------------------------
def check(cfg: DictConfig) -> None:
    """The GAN task's config rules (run with the other checks, before any work)."""
    if str(OmegaConf.select(cfg, "model.generator._target_") or "").endswith("cyclegan.ResnetGenerator"):
        raise ConfigError("model=cyclegan holds image-to-image networks for task=cyclegan: use +experiment=cyclegan, or another model.")
    if cfg.loss.name == "wasserstein" and cfg.loss.gradient_penalty == 0 and cfg.loss.weight_clip == 0:
        raise ConfigError("loss=wasserstein needs a Lipschitz critic: set loss.weight_clip (e.g. 0.01) or "
                          "loss.gradient_penalty (e.g. 10), or use +experiment=wgan / wgan_gp.")
    penalty = next((k for k in ("loss.gradient_penalty", "loss.r1_gamma", "loss.r2_gamma") if (OmegaConf.select(cfg, k) or 0) > 0), None)
    if penalty is not None:
        # A penalty on input gradients is each critic input's own gradient norm; batch statistics mix other samples' terms in.
        mixing = [what for what, on in (("model.discriminator.minibatch_std=true", OmegaConf.select(cfg, "model.discriminator.minibatch_std")),
                                        ("model.discriminator.norm=batch", OmegaConf.select(cfg, "model.discriminator.norm") == "batch")) if on]
        if mixing:
            raise ConfigError(f"{penalty} needs a critic that judges each sample on its own, and {mixing[0]} mixes the batch: "
                              f"turn it off (minibatch_std=false, or norm=none/layer/instance/spectral) or set {penalty}=0.")


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
    return GANTask(acc, G, D, g_opt, d_opt, loss=cfg.loss.name, z_dim=z_dim, num_classes=num_classes,
                   mismatch_weight=float(cfg.task.mismatch_weight) if conditional else 0.0,
                   gp_weight=float(cfg.loss.gradient_penalty), clip_value=float(cfg.loss.weight_clip),
                   r1_gamma=float(cfg.loss.r1_gamma), r2_gamma=float(cfg.loss.r2_gamma),
                   reg_every=int(cfg.loss.reg_every), augment=build_augment(cfg, dataset).to(acc.device),
                   sample_shape=shape, class_names=dataset.class_names if conditional else None, model_args=args)
