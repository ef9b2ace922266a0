"""The GAN training step, unconditional and conditional.

One critic step:  L_D = d(D(x, c), D(G(z, c), c))              objectives.py: d_real + d_fake, or d_pair
                        [+ w * d_wrong_label(D(x, c_wrong))]   conditional: reject real x with a wrong label
                        [+ the D phases due at this step]      R1, R2, WGAN-GP (phases.py), each every k steps x k
                  then clip D's weights into [-c, c]          WGAN
One generator step: L_G = g(D(x, c), D(G(z, c), c)), with D frozen (D(x) only for a pairing
objective such as RpGAN), [+ the G phases due]: path length (StyleGAN2), orthogonal (BigGAN).

R1 and R2 are the squared gradient of D's summed scores with respect to each input image (the
definition stylegan2-ada's code uses): each image's own gradient where D judges each sample alone,
and with minibatch-std (StyleGAN2's D) the gradient of the sum, other samples' terms included. The
gradient penalty (WGAN-GP) needs each interpolate judged alone and is refused with minibatch-std.

A generator with style mixing (StyleGAN2) draws its mixing latent and cutoff for every training
batch it generates (`style_mixing_inputs`), in both steps, as stylegan2-ada's run_G does.

Where D judges each sample alone (no BatchNorm or minibatch-std in D: speed.judges_samples_alone),
the critic step scores the real batch and the fakes in one D pass over both, split after; otherwise
in two passes, one per batch.

D sees every image, real and fake, in both steps, through the augmentation pipeline A
(gan_platform/augment/; `augment=none` is the identity): D(x) above is D(A(x)). The R1/R2 gradients
are taken with respect to the images before A (as stylegan2-ada does). An adaptive pipeline (ADA)
observes, for each real image of each D step, on which side of its decision D put it
(`real_side`): D(x) - t with the loss's threshold t, or D(x) - D(G(z)) of its pair for a pairing
loss (RpGAN). A Wasserstein critic has neither, and `check` refuses ADA with it.

Health signals, measured only when the trainer sets `measure_health` (the last iteration of a log
window, training/health.py): the gradient norms ||grad L_D|| and ||grad L_G|| over D's and G's
parameters, and D's accuracy on real and fake samples, i.e. the fraction of scores on the right
side of the loss's decision threshold (`DECISION_THRESHOLDS`; a Wasserstein critic has none).

In a conditional run the fakes of both steps get the labels of the real batch drawn for that step:
G learns the classes in the data's proportions, and the gradient penalty's interpolates
x_hat = eps x + (1 - eps) G(z, c) join a real and a fake sample of the same class c, judged under c.
Sampling outside training (grids, evaluation) draws classes uniformly unless labels are given.

The task's builder and its config rules live beside it (gan_build.py).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import torch
from accelerate import Accelerator
from torch import Tensor, nn

from gan_platform.errors import ConfigError, UserError
from gan_platform.augment import NoAugment
from gan_platform.losses import (clip_weights, get_loss, gp_weights, gradient_penalty, orthogonal_regularisation,
                                 path_length_penalty, squared_gradient_norm)
from gan_platform.tasks.optim import descend, hot_optimizer, loss_scale
from gan_platform.tasks.phases import LOG_NAMES, Phase, Phases
from gan_platform.tasks.rounds import Rounds
from gan_platform.tasks.signals import DECISION_THRESHOLDS, decision_accuracies, gradient_norm, real_side
from gan_platform.tasks.speed import judges_samples_alone, set_requires_grad

log = logging.getLogger(__name__)

class GANTask:
    """Adversarial training of `generator` against `discriminator` with a named loss."""

    def __init__(self, accelerator: Accelerator, generator: nn.Module, discriminator: nn.Module,
                 g_optimizer: torch.optim.Optimizer, d_optimizer: torch.optim.Optimizer, *,
                 loss: str, z_dim: int, num_classes: int = 0, mismatch_weight: float = 0.0,
                 gp_weight: float = 0.0, clip_value: float = 0.0, r1_gamma: float = 0.0, r2_gamma: float = 0.0,
                 reg_every: int = 1, augment: Optional[nn.Module] = None, sample_shape: tuple[int, ...] = (),
                 class_names: Optional[list[str]] = None, model_args: Optional[dict[str, dict[str, Any]]] = None,
                 phases: Optional[Phases] = None, path_length_decay: float = 0.01, micro_batch: Optional[int] = None):
        if mismatch_weight > 0 and num_classes < 2:
            raise ConfigError("task.mismatch_weight > 0 needs a conditional run with at least 2 classes: set task.conditional=true or task.mismatch_weight=0.")
        self.accelerator = accelerator
        self.generator, self.discriminator = generator, discriminator
        self.modules = {"generator": generator, "discriminator": discriminator}
        self.optimizers = {"generator": g_optimizer, "discriminator": d_optimizer}
        self._step_optimizers = {k: hot_optimizer(accelerator, o) for k, o in self.optimizers.items()}
        self.loss = get_loss(loss)
        self.z_dim, self.num_classes = z_dim, num_classes
        self.mismatch_weight, self.clip_value = mismatch_weight, clip_value
        # the regularising phases (phases.py); from the keywords when the builder gives none
        self.phases = phases if phases is not None else Phases([Phase("r1", float(r1_gamma), int(reg_every)),
                                                                Phase("r2", float(r2_gamma), int(reg_every)),
                                                                Phase("gradient_penalty", float(gp_weight))])
        self.d_steps_done = self.g_steps_done = 0  # for the phases' intervals; in the checkpoint (extra_state)
        self.path_length_decay = float(path_length_decay)
        self.micro_batch = int(micro_batch) if micro_batch else None  # gradient accumulation (`rounds`)
        self.path_length_mean = torch.zeros((), device=accelerator.device)  # StyleGAN2's running a
        self.augment = augment if augment is not None else NoAugment()
        self.device = accelerator.device
        self.sample_shape, self.class_names = tuple(sample_shape), class_names
        self._d_frozen = accelerator.unwrap_model(discriminator)
        # D's parameters, listed once: freezing them for each G step loops over this list instead of
        # Module.requires_grad_'s walk of the module tree (~0.1 ms a call on the MLPs, per call); those
        # that train: a G step must not wake the blocks FreezeD froze (models/freeze.py)
        self._d_params = [p for p in self._d_frozen.parameters() if p.requires_grad]
        self.one_pass = judges_samples_alone(self._d_frozen)  # the critic step's D pass over real and fakes together
        self._g_unwrapped = accelerator.unwrap_model(generator)
        self.mixes_styles = float(getattr(self._g_unwrapped, "style_mixing", 0.0) or 0.0) > 0  # StyleGAN2's mixing
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
    def generate(self, z: Tensor, y: Optional[Tensor]) -> Tensor:
        """G(z, y) for a training step (G's style mixing drawn for the batch where G mixes styles)."""
        if self.mixes_styles:
            mix_z, cutoff = self._g_unwrapped.style_mixing_inputs(z)
            return self.generator(z, y, mix_z=mix_z, cutoff=cutoff)
        return self.generator(z, y)

    def d_step(self, real: Tensor, labels: Optional[Tensor]) -> dict[str, Tensor]:
        """One D update on the batch, in rounds of `trainer.micro_batch` whose gradients add up (rounds.py)."""
        n = real.shape[0]
        cond = labels if self.num_classes else None  # the fakes get the same classes
        self.d_steps_done += 1
        due = self.phases.due("D", self.d_steps_done)  # the regularisers of this step (phases.py)
        out, D = Rounds(n, self.micro_batch), self.discriminator
        losses = (self._d_round(real[p], cond[p] if cond is not None else None, cond, due, out) for p in out.each())
        measure = (lambda: self._health(D, out.cat("real"), out.cat("fake"), "d")) if self.measure_health else None
        logs = descend(self.accelerator, self._step_optimizers["discriminator"], losses, measure, len(out), D)
        if self.clip_value > 0:
            clip_weights(D, self.clip_value)
        return {**out.logs, **logs, "d_loss": out.loss}

    def _d_round(self, real: Tensor, cond: Optional[Tensor], labels: Optional[Tensor], due: list[Phase],
                 out: Rounds) -> Tensor:
        """One round's D loss (main, wrong labels, the due phases), weighted by its share of the batch
        (`labels`: the whole batch's, for the step-wide draws); its logs and scores go to `out`. ADA
        observes the whole batch's real images at the last round."""
        D, A, acc = self.discriminator, self.augment, self.accelerator
        with torch.no_grad(), acc.autocast():
            fake = self.generate(out.drawn("z", lambda: self.noise(out.n)), cond)
        if any(p.name == "r1" for p in due):
            real = real.detach().requires_grad_(True)
        if any(p.name == "r2" for p in due):
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
                wrong_scores = D(seen_real, out.drawn("wrong", lambda: self.wrong_labels(labels)))
                loss = loss + self.mismatch_weight * self.loss.d_wrong_label(real_scores, wrong_scores)
                logs["d_wrong_label"] = wrong_scores.detach().float().mean()
            if self.loss.name == "wasserstein":
                logs["wasserstein"] = logs["d_real"] - logs["d_fake"]
        out.keep(real=real_scores.detach(), fake=fake_scores.detach(), evidence=real_side(self.loss, real_scores, fake_scores))
        if out.last:
            A.observe(out.cat("evidence"), out.n)
            out.logs.update(A.logs())
        for phase in due:  # R1, R2, the gradient penalty, in this order
            term = self._d_term(phase.name, real, fake, real_scores, fake_scores, cond, out)
            loss = loss + phase.factor * term
            logs[LOG_NAMES[phase.name]] = term.detach()
        return out.add(loss, logs)

    def _d_term(self, name: str, real: Tensor, fake: Tensor, real_scores: Tensor, fake_scores: Tensor,
                cond: Optional[Tensor], out: Rounds) -> Tensor:
        """A D phase's term (phases.py): R1 on the real images (under their true label), R2 on the
        fakes, both before augmentation; or the gradient penalty on interpolates (per pack under PacGAN)."""
        scale = loss_scale(self.accelerator)
        if name == "r1":
            return squared_gradient_norm(real_scores, real, scale)
        if name == "r2":
            return squared_gradient_norm(fake_scores, fake, scale)
        D, A, extra = self.discriminator, self.augment, ((cond,) if self.num_classes else ())
        pack = getattr(self._d_frozen, "pack", 1)
        eps = out.drawn("eps", lambda: gp_weights(out.n // pack, real), per=pack)  # the step's, per pack
        with self.accelerator.autocast():
            return gradient_penalty(lambda x, *c: D(A(x), *c), real, fake, *extra, scale=scale, pack=pack, eps=eps)

    def g_step(self, real: Tensor, labels: Optional[Tensor]) -> dict[str, Tensor]:
        """One G update, in rounds as `d_step` (path length per round, weighted; the orthogonal
        regularisation of G's weights once, at the last round)."""
        n = real.shape[0]
        y = labels if self.num_classes else None
        self.g_steps_done += 1
        due = self.phases.due("G", self.g_steps_done)
        out, G = Rounds(n, self.micro_batch), self.generator
        losses = (self._g_round(real[p], y[p] if y is not None else None, due, out) for p in out.each())
        measure = (lambda: self._health(G, None, None, "g")) if self.measure_health else None
        set_requires_grad(self._d_params, False)
        try:
            logs = descend(self.accelerator, self._step_optimizers["generator"], losses, measure, len(out), G)
        finally:
            set_requires_grad(self._d_params, True)
        return {"g_loss": out.loss, **out.logs, **logs}

    def _g_round(self, real: Tensor, y: Optional[Tensor], due: list[Phase], out: Rounds) -> Tensor:
        """One round's G loss (D frozen and unwrapped: no DDP sync of D's unused gradients), weighted."""
        A, acc, D = self.augment, self.accelerator, self._d_frozen
        with acc.autocast():
            fake_scores = D(A(self.generate(out.drawn("z", lambda: self.noise(out.n)), y)), y)
            real_scores = None
            if self.loss.g_uses_real:  # a pairing objective: D(x) of this real batch, a constant for G
                with torch.no_grad():
                    real_scores = D(A(real), y)
            loss = self.loss.g(real_scores, fake_scores)
        terms = {}
        for phase in due:  # path length (each round's), orthogonal (G's weights: once, at the last round)
            if phase.name == "orthogonal" and not out.last:
                continue
            term = self._g_term(phase.name, len(real), y)
            factor = phase.factor / out.share if phase.name == "orthogonal" else phase.factor  # once, unweighted
            loss = loss + factor * term
            (out.logs if phase.name == "orthogonal" else terms)[LOG_NAMES[phase.name]] = term.detach()
        return out.add(loss, terms)

    def _g_term(self, name: str, n: int, y: Optional[Tensor]) -> Tensor:
        """A G phase's term (phases.py): StyleGAN2's path length on half a batch of fresh latents
        (its running mean a kept on the device), or BigGAN's orthogonal regularisation of G's weights."""
        G = self._g_unwrapped
        if name == "orthogonal":
            return orthogonal_regularisation(G, 1.0)
        m = max(1, n // 2)  # stylegan2-ada's pl_batch_shrink of 2
        with self.accelerator.autocast():
            ws = G.mapping(self.noise(m), y[:m] if y is not None else None).unsqueeze(1).expand(-1, G.num_ws, -1)
            images = G.synthesis(ws, "random")
        term, self.path_length_mean = path_length_penalty(images.float(), ws, self.path_length_mean,
                                                          self.path_length_decay, scale=loss_scale(self.accelerator))
        return term

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

    def process_state(self) -> dict[str, Any]:
        """No state of its own per process: every rank's step is the same."""
        return {}

    def load_process_state(self, state: dict[str, Any]) -> None:
        pass

    def extra_state(self) -> dict[str, Any]:
        """What G was built for, so a checkpoint alone can rebuild it (`gan_platform.sample`), and the
        step's own state: the phases' step counters, path length's running mean and the augmentation
        pipeline (ADA's p)."""
        return {"sample_shape": list(self.sample_shape), "num_classes": self.num_classes,
                "class_names": list(self.class_names) if self.class_names else None,
                "d_steps_done": self.d_steps_done, "g_steps_done": self.g_steps_done,
                "path_length_mean": self.path_length_mean.detach().cpu(), "augment": self.augment.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "augment" in state:
            try:
                self.augment.load_state_dict(state["augment"])
            except RuntimeError as e:
                raise UserError("The checkpoint's augmentation state does not fit this run's augment choice: "
                                "resume with the augment=... the run was started with.") from e
        self.d_steps_done = int(state.get("d_steps_done", 0))
        self.g_steps_done = int(state.get("g_steps_done", 0))
        if "path_length_mean" in state:
            self.path_length_mean = state["path_length_mean"].to(self.device)
