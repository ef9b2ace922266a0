"""A step as named phases (tasks/phases.py): lazy regularisation gives the expected gradient of
every step's; the G phases (StyleGAN2's path length, BigGAN's orthogonal regularisation) join G's
step when due; the phases are in the composed config and refused in one sentence when wrong."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator
from torch import nn

from helpers import built_task, compose
from gan_platform.config import validate
from gan_platform.errors import ConfigError
from gan_platform.tasks.gan import GANTask
from gan_platform.tasks.phases import Phase, Phases


class TanhD(nn.Module):
    """A small nonlinear critic D(x, c): its R1 term's gradient in its parameters is not trivial."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x, c=None):
        return self.net(x).squeeze(1)


class ConstantG(nn.Module):
    def __init__(self):
        super().__init__()
        self.point = nn.Parameter(torch.tensor([0.5, -0.3]))

    def forward(self, z, c=None):
        return self.point.expand(len(z), -1)


def _d_gradient_per_step(every: int, steps: int) -> torch.Tensor:
    """D's gradient (flattened) of each of `steps` D steps with R1 (gamma 2) every `every` steps, on a
    fixed batch with SGD at lr 0 (the weights never move, so every step sees the same problem)."""
    torch.manual_seed(0)
    D = TanhD()
    G = ConstantG()
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.0)  # noqa: E731
    task = GANTask(Accelerator(cpu=True), G, D, sgd(G), sgd(D), loss="nonsaturating", z_dim=2,
                   phases=Phases([Phase("r1", 2.0, every)]))
    real = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    grads = []
    for _ in range(steps):
        task.d_step(real, None)
        grads.append(torch.cat([p.grad.flatten() for p in D.parameters()]))
    return torch.stack(grads)


def test_r1_every_16_steps_scaled_by_16_has_the_gradient_of_every_step_on_average():
    every_step = _d_gradient_per_step(1, 16)
    lazy = _d_gradient_per_step(16, 16)
    assert torch.allclose(every_step, every_step[0].expand_as(every_step))  # the same problem each step
    main = lazy[0]  # steps 1..15 hold the main loss alone; step 16 adds 16 x the R1 term
    assert torch.allclose(lazy[:15], main.expand(15, -1))
    assert not torch.allclose(lazy[15], every_step[0], atol=1e-3)  # one lazy step is not an eager one...
    torch.testing.assert_close(lazy.mean(0), every_step[0], rtol=1e-5, atol=1e-6)  # ...but the average is


def test_phases_are_in_the_composed_config_and_follow_the_loss_keys():
    cfg = compose(["+experiment=r3gan", "loss.reg_every=16", "task.phases.r2.every=4"])
    phases = cfg.task.phases
    assert (phases.r1.weight, phases.r1.every, phases.r2.weight, phases.r2.every) == (0.1, 16, 0.1, 4)
    assert phases.path_length.weight == 0 and phases.orthogonal.weight == 0
    described = Phases.from_config(phases).describe()
    assert described == "D: main, r1 (weight 0.1, every 16), r2 (weight 0.1, every 4); G: main"


@pytest.mark.parametrize("override, phrase", [
    ("+task.phases.r3.weight=1", "Unknown phase(s) r3 in task.phases"),
    ("task.phases.r1.every=0", "task.phases.r1.every must be a whole number of steps of at least 1"),
    ("loss.path_length=2", "loss.path_length regularises how G's images move with w"),
])
def test_wrong_phases_are_one_sentence(override, phrase):
    with pytest.raises(ConfigError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        validate(compose(["+experiment=r3gan", override]))


def test_path_length_joins_every_fourth_g_step_and_its_running_mean_is_kept():
    task = built_task(["+experiment=nsgan", "model=stylegan2", "dataset.resolution=8", "model.generator.channel_base=64",
                       "model.discriminator.channel_base=64", "model.z_dim=8", "model.generator.w_dim=8",
                       "model.generator.mapping_layers=2", "loss.path_length=2"])
    x = torch.zeros(4, 1, 8, 8)
    seen = [("path_length_penalty" in task.g_step(x, None)) for _ in range(8)]
    assert seen == [False, False, False, True] * 2
    assert float(task.path_length_mean) > 0 and task.extra_state()["g_steps_done"] == 8
    assert "path_length_mean" in task.extra_state()


def test_orthogonal_regularisation_joins_every_g_step_with_its_weight():
    task = built_task(["+experiment=hinge", "model=biggan", "task.conditional=true", "dataset.resolution=8",
                       "model.generator.width=4", "model.discriminator.width=4", "loss.orthogonal=1e-4"])
    logs = task.g_step(torch.zeros(4, 1, 8, 8), torch.arange(4))
    from gan_platform.losses import orthogonal_regularisation

    expected = orthogonal_regularisation(task.modules["generator"], 1.0)
    assert logs["orthogonal_penalty"].item() > 0
    assert logs["orthogonal_penalty"].item() == pytest.approx(expected.item(), rel=1e-2)  # after one step of G
