"""The CycleGAN training step (Zhu et al. 2017): unpaired style transfer between domains A and B.

Two generators, G1: A -> B and G2: B -> A, and a discriminator per style, D_A and D_B, each trained
with real images of its own style against translations into it:

    L_D  = d_real(D_A(a)) + d_fake(D_A(pool_A(G2(b))))  +  d_real(D_B(b)) + d_fake(D_B(pool_B(G1(a))))
    L_G  = g(D_B(G1(a))) + g(D_A(G2(b)))
           + cycle.weight * (||G2(G1(a)) - a|| + ||G1(G2(b)) - b||)        cycle consistency
           + identity_weight * (||G1(b) - b|| + ||G2(a) - a||)              optional identity loss

with any adversarial loss of `gan_platform.losses` (least squares by default, as in the paper) in
CycleGAN's weighting (`cyclegan_objective`): with least squares, D_B minimises
1/2 E[(D_B(b) - 1)^2] + 1/2 E[D_B(G1(a))^2] and G1's term is E[(D_B(G1(a)) - 1)^2], the paper's and
its code's (LSGAN's generator term has a 1/2 that would double lambda's weight). ||.|| is the mean
squared error (``cycle.norm: l2``, the default) or the mean absolute error (``l1``, the paper's
choice). `identity_weight` is absolute: the paper's 0.5 * lambda is 5 for lambda = 10.

Mapping onto the trainer's order (d_steps D steps, then g_steps G steps, each on a fresh batch):
the paper's iteration is "G step on a batch, then D step on the same batch, with the fakes that G
step made, passed through the pool". Here `g_step` keeps its batch and fakes, and the next
`d_step` trains D on exactly those (ignoring its own batch), so trainer iteration t runs the D half
of the paper's iteration t-1 and the G half of iteration t: the same sequence of updates on the
same data. A `d_step` with nothing kept (the very first, or extra ones when d_steps > 1) translates
its own batch. The kept batch and both pools belong to each process (every rank draws its own
batches): they are `process_state()`, which the checkpoint keeps for every rank and gives each
rank back its own on resume, so resume is exact with one process or several.
The learning-rate schedule (constant, then linear to zero) is the trainer's `lr_decay=linear`.

Health signals, as in tasks/gan.py and only when the trainer sets `measure_health` (the last
iteration of each log window): `d_grad_norm` over both discriminators, `g_grad_norm` over both
generators (cycle and identity terms included), and `d_acc_real` / `d_acc_fake`, the share of real
and of (pooled) fake images on their side of the loss's decision threshold, over both styles.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from accelerate import Accelerator
from torch import Tensor, nn

from gan_platform.errors import ConfigError, instantiate
from gan_platform.losses import clip_weights, cyclegan_objective, get_loss, gradient_penalty
from gan_platform.tasks.signals import DECISION_THRESHOLDS, decision_accuracies, gradient_norm
from gan_platform.tasks.image_pool import ImagePool
from gan_platform.tasks.optim import build_optimizer, descend, hot_optimizer, loss_scale
from gan_platform.tasks.speed import prepare_networks, set_requires_grad

NORMS = ("l2", "l1")
GRID_ROWS = 6  # real A, G1(A), G2(G1(A)), real B, G2(B), G1(G2(B))


def l2_cycle(reconstruction: Tensor, original: Tensor) -> Tensor:
    """||G2(G1(x)) - x||^2: the mean squared error over all pixels (the platform's default)."""
    return (reconstruction.float() - original.float()).pow(2).mean()


def l1_cycle(reconstruction: Tensor, original: Tensor) -> Tensor:
    """|G2(G1(x)) - x|: the mean absolute error over all pixels (the paper's)."""
    return (reconstruction.float() - original.float()).abs().mean()


CYCLE_LOSSES = {"l2": l2_cycle, "l1": l1_cycle}


def cycle_loss_of(norm: str):
    """The cycle loss `task.cycle.norm` names, checked once (the task looks it up when it is built)."""
    check_norm(norm)
    return CYCLE_LOSSES[norm]


def cycle_loss(reconstruction: Tensor, original: Tensor, norm: str = "l2") -> Tensor:
    """||G2(G1(x)) - x|| in the norm `norm` names (l2 or l1)."""
    return cycle_loss_of(norm)(reconstruction, original)


def check_norm(norm: Any) -> None:
    """The one rule for `task.cycle.norm`."""
    if norm not in NORMS:
        raise ConfigError(f"task.cycle.norm must be l1 or l2, got '{norm}'.")


class CycleGANTask:
    """Trains G1 (A -> B), G2 (B -> A), D_A and D_B on unpaired batches (a, b)."""

    def __init__(self, accelerator: Accelerator, modules: dict[str, nn.Module], g_optimizer: torch.optim.Optimizer,
                 d_optimizer: torch.optim.Optimizer, *, loss: str = "least_squares", cycle_norm: str = "l2",
                 cycle_weight: float = 10.0, identity_weight: float = 0.0, pool_size: int = 50,
                 gp_weight: float = 0.0, clip_value: float = 0.0, image_shape: tuple[int, ...] = (3, 16, 16),
                 seed: int = 0, grid_images: Optional[dict[str, Tensor]] = None):
        self.accelerator, self.device = accelerator, accelerator.device
        self.modules = modules
        self.g_a2b, self.g_b2a = modules["generator_a2b"], modules["generator_b2a"]
        self.d_a, self.d_b = modules["discriminator_a"], modules["discriminator_b"]
        # both Ds unwrapped (no DDP sync in G's step) and the parameters that train listed once, to freeze
        # them in G's step (a block FreezeD froze, models/freeze.py, stays frozen)
        self._d_frozen = (accelerator.unwrap_model(self.d_a), accelerator.unwrap_model(self.d_b))
        self._d_params = [p for d in self._d_frozen for p in d.parameters() if p.requires_grad]
        self.optimizers = {"generator": g_optimizer, "discriminator": d_optimizer}
        self._step_optimizers = {k: hot_optimizer(accelerator, o) for k, o in self.optimizers.items()}
        self.num_classes = 0  # unconditional: translation is the task
        # What translates (grids, evaluation): the generators, or their averages (training/ema.py replaces them).
        self.generators = ("generator_a2b", "generator_b2a")
        self.inference: dict[str, nn.Module] = {k: accelerator.unwrap_model(modules[k]) for k in self.generators}
        self.loss = cyclegan_objective(get_loss(loss))
        self.cycle_norm, self.cycle_weight, self.identity_weight = cycle_norm, float(cycle_weight), float(identity_weight)
        self.cycle = cycle_loss_of(cycle_norm)  # the norm checked once, here
        self.gp_weight, self.clip_value = float(gp_weight), float(clip_value)
        self.image_shape = tuple(int(s) for s in image_shape)
        rank = accelerator.process_index
        self.pools = {"a": ImagePool(pool_size, seed * 1000 + 2 * rank), "b": ImagePool(pool_size, seed * 1000 + 2 * rank + 1)}
        self.kept: Optional[dict[str, Tensor]] = None  # the last g_step's batch and fakes, for the next d_step
        self.grid_images = grid_images or {}  # style -> images the sample grids are drawn from
        self.threshold = DECISION_THRESHOLDS.get(self.loss.name)
        self.measure_health = False  # the trainer sets it for the steps whose health signals it logs

    # -- steps -----------------------------------------------------------------------------
    def _d_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        real_scores, fake_scores = D(real), D(fake)
        loss = self.loss.d(real_scores, fake_scores)
        penalty = torch.zeros((), device=real.device)
        if self.gp_weight > 0:
            penalty = gradient_penalty(D, real, fake, scale=loss_scale(self.accelerator),
                                       pack=getattr(self.accelerator.unwrap_model(D), "pack", 1))
        return loss, penalty, real_scores, fake_scores

    def _grad_norm(self, *nets: nn.Module) -> Tensor:
        scale = loss_scale(self.accelerator)
        return torch.linalg.vector_norm(torch.stack([gradient_norm(net, scale) for net in nets]))

    def d_step(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        """D_A on real a vs pooled G2(b); D_B on real b vs pooled G1(a) (the last g_step's batch if kept)."""
        acc = self.accelerator
        if self.kept is not None:
            a, b, fake_a, fake_b = (self.kept[k] for k in ("a", "b", "fake_a", "fake_b"))
            self.kept = None
        else:
            with torch.no_grad(), acc.autocast():
                fake_b, fake_a = self.g_a2b(a).float(), self.g_b2a(b).float()
        fake_a, fake_b = self.pools["a"].query(fake_a), self.pools["b"].query(fake_b)
        with acc.autocast():
            loss_a, gp_a, real_a, pooled_a = self._d_loss(self.d_a, a, fake_a)
            loss_b, gp_b, real_b, pooled_b = self._d_loss(self.d_b, b, fake_b)
            loss = loss_a + loss_b + self.gp_weight * (gp_a + gp_b)
        def measure() -> dict[str, Tensor]:
            health = {"d_grad_norm": self._grad_norm(self.d_a, self.d_b)}
            if self.threshold is not None:  # both styles, every PatchGAN patch counted
                health.update(decision_accuracies(torch.cat([real_a.flatten(), real_b.flatten()]),
                                                  torch.cat([pooled_a.flatten(), pooled_b.flatten()]), self.threshold))
            return health

        health = descend(acc, self._step_optimizers["discriminator"], loss, measure if self.measure_health else None)
        if self.clip_value > 0:
            clip_weights(self.d_a, self.clip_value)
            clip_weights(self.d_b, self.clip_value)
        logs = {"d_loss": loss.detach().float(), "d_a": loss_a.detach().float(), "d_b": loss_b.detach().float(), **health}
        if self.gp_weight > 0:
            logs["grad_penalty"] = (gp_a + gp_b).detach().float()
        return logs

    def g_step(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        """G1 and G2 together: fool D_B and D_A, and come back: G2(G1(a)) ~ a, G1(G2(b)) ~ b."""
        acc = self.accelerator
        d_a, d_b = self._d_frozen
        set_requires_grad(self._d_params, False)
        try:
            with acc.autocast():
                fake_b, fake_a = self.g_a2b(a), self.g_b2a(b)
                real_b = real_a = None
                if self.loss.g_uses_real:  # a pairing objective scores each fake against a real image
                    with torch.no_grad():
                        real_b, real_a = d_b(b), d_a(a)
                adv_a2b, adv_b2a = self.loss.g(real_b, d_b(fake_b)), self.loss.g(real_a, d_a(fake_a))
                cycle = self.cycle(self.g_b2a(fake_b), a) + self.cycle(self.g_a2b(fake_a), b)
                loss = adv_a2b + adv_b2a + self.cycle_weight * cycle
                identity = torch.zeros((), device=a.device)
                if self.identity_weight > 0:
                    identity = self.cycle(self.g_a2b(b), b) + self.cycle(self.g_b2a(a), a)
                    loss = loss + self.identity_weight * identity
            measure = (lambda: {"g_grad_norm": self._grad_norm(self.g_a2b, self.g_b2a)}) if self.measure_health else None
            health = descend(acc, self._step_optimizers["generator"], loss, measure)
        finally:
            set_requires_grad(self._d_params, True)
        self.kept = {"a": a.detach(), "b": b.detach(), "fake_a": fake_a.detach().float(), "fake_b": fake_b.detach().float()}
        return {"g_loss": loss.detach().float(), "g_adv_a2b": adv_a2b.detach().float(),
                "g_adv_b2a": adv_b2a.detach().float(), "g_cycle": cycle.detach().float(),
                "g_identity": identity.detach().float(), **health}

    # -- translation -----------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x: Tensor, direction: str = "a2b", batch_size: int = 256) -> Tensor:
        """G1(x) (a2b) or G2(x) (b2a) (or their averages, `inference`) in eval mode, in batches, float32 in [-1, 1]."""
        G = self.inference["generator_a2b" if direction == "a2b" else "generator_b2a"]
        was_training = G.training
        G.eval()
        try:
            out = []
            for i in range(0, len(x), batch_size):
                with self.accelerator.autocast():
                    out.append(G(x[i:i + batch_size].to(self.device)).float())
            return torch.cat(out) if out else x.new_zeros((0, *self.image_shape))
        finally:
            G.train(was_training)

    # -- grids -----------------------------------------------------------------------------
    def grid_inputs(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        """Fixed evaluation images, n // 6 of each style (at least 1), the same at every step."""
        k = max(1, n // GRID_ROWS)
        fixed = {}
        for d in "ab":
            pool = self.grid_images[d]
            idx = torch.randperm(len(pool), generator=generator)[:k]
            fixed[d] = pool[idx].cpu()
        return fixed

    def sample_grid(self, fixed: dict[str, Tensor]) -> Tensor:
        """Rows: real A, G1(A), G2(G1(A)), real B, G2(B), G1(G2(B)) (3 channels both ways)."""
        a, b = fixed["a"].to(self.device), fixed["b"].to(self.device)
        a2b = self.translate(a, "a2b")
        b2a = self.translate(b, "b2a")
        return torch.cat([a, a2b, self.translate(a2b, "b2a"), b, b2a, self.translate(b2a, "a2b")])

    def grid_rows(self, fixed: dict[str, Tensor]) -> int:
        return GRID_ROWS

    # -- state -----------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """What every process shares: the image shape the networks were built for."""
        return {"image_shape": list(self.image_shape)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "pool_a" in state:  # a checkpoint from before pools were kept per process
            self.load_process_state(state)

    def process_state(self) -> dict[str, Any]:
        """This process's own pools and kept batch (on the CPU: they are gathered from every rank)."""
        kept = {k: v.cpu() for k, v in self.kept.items()} if self.kept is not None else {}
        return {"pool_a": self.pools["a"].state_dict(), "pool_b": self.pools["b"].state_dict(), "kept": kept}

    def load_process_state(self, state: dict[str, Any]) -> None:
        self.pools["a"].load_state_dict(state["pool_a"], self.device)
        self.pools["b"].load_state_dict(state["pool_b"], self.device)
        kept = state.get("kept") or {}
        self.kept = {k: v.to(self.device) for k, v in kept.items()} if kept else None


# -- building --------------------------------------------------------------------------------------
def check(cfg: Any) -> None:
    """The CycleGAN task's own rules, checked before any work (its weights' ranges are generic: config/checks.py)."""
    if cfg.trainer.get("micro_batch") is not None:
        raise ConfigError("trainer.micro_batch accumulates the GAN step's gradients, and task=cyclegan trains whole "
                          "batches: set trainer.micro_batch=null, or a smaller trainer.batch_size.")
    from omegaconf import OmegaConf

    check_norm(OmegaConf.select(cfg, "task.cycle.norm"))
    if OmegaConf.select(cfg, "loss.r1_gamma") or OmegaConf.select(cfg, "loss.r2_gamma"):
        raise ConfigError("loss.r1_gamma and loss.r2_gamma are penalties of task=gan's step: set them to 0 for task=cyclegan.")
    if OmegaConf.select(cfg, "augment.name") not in (None, "none"):
        raise ConfigError(f"augment={OmegaConf.select(cfg, 'augment.name')} applies to task=gan: use augment=none with task=cyclegan.")


def build_cyclegan_task(cfg: Any, dataset: Any, acc: Accelerator) -> CycleGANTask:
    """conf/task/cyclegan.yaml's `_target_`: networks, optimizers (one for both G, one for both D), the task."""
    if not getattr(dataset, "unpaired", False):
        raise ConfigError(f"task=cyclegan needs an unpaired two-style dataset, and '{dataset.name}' is not one: "
                          "use dataset=digit_styles or dataset=unpaired_folders (or +experiment=cyclegan).")
    if "generator" not in cfg.model or "_target_" not in cfg.model.generator or "z_dim" in cfg.model:
        raise ConfigError("task=cyclegan needs image-to-image networks: use model=cyclegan.")
    shape = dataset.sample_shape
    names = ("generator_a2b", "generator_b2a", "discriminator_a", "discriminator_b")
    from omegaconf import OmegaConf

    node = lambda key: OmegaConf.to_container(cfg.model[key], resolve=True)  # noqa: E731
    generator = {**node("generator"), "in_shape": list(shape), "out_shape": list(shape)}
    model_args = {names[0]: generator, names[1]: generator,
                  names[2]: {**node("discriminator"), "in_shape": list(shape)}, names[3]: {**node("discriminator"), "in_shape": list(shape)}}
    nets = [instantiate(model_args[name]) for name in names]
    prepare_networks(nets, cfg.trainer)
    g_opt = build_optimizer(cfg.optimizer, [p for m in nets[:2] for p in m.parameters()], "generator")
    d_opt = build_optimizer(cfg.optimizer, [p for m in nets[2:] for p in m.parameters()], "discriminator")
    *nets, g_opt, d_opt = acc.prepare(*nets, g_opt, d_opt)
    t = cfg.task
    task = CycleGANTask(acc, dict(zip(names, nets)), g_opt, d_opt, loss=cfg.loss.name, cycle_norm=str(t.cycle.norm),
                        cycle_weight=float(t.cycle.weight), identity_weight=float(t.identity_weight),
                        pool_size=int(t.pool_size), gp_weight=float(cfg.loss.gradient_penalty),
                        clip_value=float(cfg.loss.weight_clip), image_shape=shape, seed=int(cfg.seed),
                        grid_images={d: dataset.test_images(d) for d in "ab"})
    task.model_args = model_args  # a checkpoint alone rebuilds the generators (runs/loading.py)
    return task
