"""The trainer's contract with a task (tasks/base.Task) is the whole of what it uses: both tasks of the
platform satisfy it, and a third task written here from the contract alone trains through the real
trainer, writes its run dir and checkpoints, and resumes."""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest
import torch
from accelerate import Accelerator
from torch import Tensor, nn

from helpers import TINY, compose
from gan_platform.evaluation.evaluator import Evaluator, Samples, Translates
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.runs.rundir import RunDir, read_metrics
from gan_platform.tasks.base import Task
from gan_platform.tracking.base import Tracker
from gan_platform.training.trainer import Trainer


class CriticTask:
    """A linear generator against a clipped linear critic (a WGAN of the simplest kind), written from
    the contract: nothing of the platform's tasks is reused."""

    def __init__(self, acc: Accelerator, dim: int = 2, z_dim: int = 3):
        self.acc, self.z_dim = acc, z_dim
        G, D = nn.Linear(z_dim, dim), nn.Linear(dim, 1)
        g_opt, d_opt = torch.optim.SGD(G.parameters(), lr=0.05), torch.optim.SGD(D.parameters(), lr=0.05)
        G, g_opt = acc.prepare(G, g_opt)
        D, d_opt = acc.prepare(D, d_opt)
        self.modules = {"generator": G, "discriminator": D}
        self.optimizers = {"generator": g_opt, "discriminator": d_opt}
        self.generators = ("generator",)
        self.inference = {"generator": G}
        self.model_args = {"generator": {"_target_": "torch.nn.Linear", "in_features": z_dim, "out_features": dim}}
        self.num_classes = 0
        self.measure_health = False
        self.critic_steps = 0

    def _z(self, n: int) -> Tensor:
        return torch.randn(n, self.z_dim)

    def d_step(self, real: Tensor, labels: Optional[Tensor]) -> dict[str, Tensor]:
        G, D = self.modules["generator"], self.modules["discriminator"]
        with torch.no_grad():
            fake = G(self._z(len(real)))
        loss = D(fake).mean() - D(real).mean()
        self.optimizers["discriminator"].zero_grad()
        loss.backward()
        self.optimizers["discriminator"].step()
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-0.1, 0.1)
        self.critic_steps += 1
        return {"d_loss": loss.detach()}

    def g_step(self, real: Tensor, labels: Optional[Tensor]) -> dict[str, Tensor]:
        G, D = self.modules["generator"], self.modules["discriminator"]
        loss = -D(G(self._z(len(real)))).mean()
        self.optimizers["generator"].zero_grad()
        loss.backward()
        self.optimizers["generator"].step()
        return {"g_loss": loss.detach()}

    def grid_inputs(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        return {"z": torch.randn(n, self.z_dim, generator=generator)}

    @torch.no_grad()
    def sample_grid(self, fixed: dict[str, Tensor]) -> Tensor:
        return self.inference["generator"](fixed["z"])

    def grid_rows(self, fixed: dict[str, Tensor]) -> int:
        return 0

    def extra_state(self) -> dict[str, Any]:
        return {"critic_steps": self.critic_steps}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.critic_steps = int(state["critic_steps"])

    def process_state(self) -> dict[str, Any]:
        return {}

    def load_process_state(self, state: dict[str, Any]) -> None:
        pass


def _trainer(run_dir, steps: int, resume: Optional[str] = None) -> Trainer:
    from gan_platform.data.mixtures import ring8

    cfg = compose(TINY + ["+experiment=none", f"trainer.steps={steps}", "trainer.log_every=2", "trainer.sample_every=2",
                          "trainer.checkpoint_every=2", "eval.every=0", *([f"trainer.resume={resume}"] if resume else [])])
    acc = Accelerator(cpu=True)
    dataset = ring8()
    torch.manual_seed(0)
    task = CriticTask(acc)
    assert isinstance(task, Task)
    trainer = Trainer(accelerator=acc, task=task, dataset=dataset, run_dir=RunDir(run_dir), cfg=cfg.trainer,
                      eval_cfg=cfg.eval, evaluator=Evaluator(), tracker=Tracker(), seed=0, config={"name": "critic"})
    trainer.resume()
    return trainer


def test_a_task_written_from_the_contract_alone_trains_checkpoints_and_resumes(tmp_path):
    run = tmp_path / "run"
    summary = _trainer(run, 4).fit()
    assert summary["status"] == "finished" and summary["step"] == 4
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [2, 4]
    assert sorted(p.name for p in (run / "samples").glob("*.pt")) == ["step_000000.pt", "step_000002.pt", "step_000004.pt"]
    state, meta = load_checkpoint(run / "checkpoints" / "last")
    assert meta["step"] == 4 and state["task"] == {"critic_steps": 4} and state["task_processes"] is None
    assert state["model_args"]["generator"]["out_features"] == 2
    resumed = _trainer(run, 6, resume="auto")
    assert resumed.step == 4 and resumed.task.critic_steps == 4
    assert resumed.fit()["status"] == "finished"
    assert json.loads((run / "summary.json").read_text())["step"] == 6
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [2, 4, 6]


@pytest.mark.parametrize("experiment, evaluator_needs", [("nsgan", Samples), ("cyclegan", Translates)])
def test_the_platforms_tasks_satisfy_the_contract_and_their_evaluators_needs(experiment, evaluator_needs):
    from gan_platform.run import build_dataset, build_task, make_accelerator

    cfg = compose(TINY + [f"+experiment={experiment}", "model.generator.width=8", "model.discriminator.width=8"])
    acc = make_accelerator(cfg)
    task = build_task(cfg, build_dataset(cfg, acc), acc)
    assert isinstance(task, Task) and isinstance(task, evaluator_needs)
    declared = set(Task.__annotations__) | {n for n, v in vars(Task).items() if callable(v) and not n.startswith("_")}
    assert len(declared) == 16 and not [name for name in declared if not hasattr(task, name)]
