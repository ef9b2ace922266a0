"""No host-device synchronisation inside the iterations between two log steps, for every bundled experiment.

On a GPU, a call that reads a tensor's value on the host (`.item()`, `.tolist()`, `.cpu()`,
`.numpy()`, `bool`/`float`/`int` of a tensor, `nonzero`) waits for every queued kernel: one in a
training step stalls the pipeline at every iteration. The trainer reads its losses back only at the
log cadence (training/loss_window.py). On the CPU nothing waits, so this guard counts the calls
themselves, made from Python (the platform's code and the libraries it calls), while the trainer runs
the iterations of a log window other than its log step: the iteration itself and the cadence checks
after it. A new network, regulariser or schedule that reads a tensor in the step fails it.
"""

from __future__ import annotations

import traceback
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

import pytest
import torch

from helpers import EXPERIMENTS, compose
from helpers.experiments import tiny_experiment
from gan_platform.config import validate

# The papers' networks that no bundle uses yet, at CPU sizes: held to the same rule.
NETWORKS = {
    "nsgan model=stylegan2": ["model=stylegan2", "model.generator.channel_base=256", "model.generator.channel_max=16",
                              "model.discriminator.channel_base=256", "model.discriminator.channel_max=16",
                              "model.z_dim=16", "model.generator.w_dim=16", "model.generator.mapping_layers=2",
                              "dataset.resolution=8"],
    "hinge model=biggan": ["model=biggan", "task.conditional=true", "model.z_dim=24", "model.generator.width=4",
                           "model.discriminator.width=4", "dataset.resolution=16"],
    "r3gan model=r3gan": ["model=r3gan", "dataset.resolution=8", "model.generator.widths=8", "model.generator.cardinality=2",
                          "model.discriminator.widths=8", "model.discriminator.cardinality=2"],
}
SYNCING = ("item", "tolist", "cpu", "numpy", "nonzero", "__bool__", "__float__", "__int__", "__index__")
LOG_EVERY = 3  # a window of 3 iterations: 2 counted in full, and the log step's iteration


class SyncCounter:
    """Counts the syncing calls made while `counting` is set, with where each was made."""

    def __init__(self) -> None:
        self.counting = False
        self.calls: Counter[str] = Counter()

    def wrap(self, name: str, original):
        counter = self

        def counted(*args, **kwargs):
            if counter.counting:
                counter.counting = False  # a call inside the original (e.g. .tolist() calling .item()) is the same sync
                try:
                    caller = traceback.extract_stack(limit=2)[0]
                    counter.calls[f"{name} at {caller.filename}:{caller.lineno}"] += 1
                    return original(*args, **kwargs)
                finally:
                    counter.counting = True
            return original(*args, **kwargs)

        return counted


@contextmanager
def syncs_counted(monkeypatch) -> Iterator[SyncCounter]:
    counter = SyncCounter()
    for name in SYNCING:
        monkeypatch.setattr(torch.Tensor, name, counter.wrap(f"Tensor.{name}", getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch, "nonzero", counter.wrap("torch.nonzero", torch.nonzero))
    yield counter


def count_syncs_between_log_steps(trainer, counter: SyncCounter) -> None:
    """Run `trainer` to its end, counting during every iteration and during the cadence checks of
    every step that is not a log step (the log step reads the window back: one sync, on purpose)."""
    iteration, cadences = trainer.iteration, trainer._cadences

    def counted_iteration():
        counter.counting = True
        try:
            iteration()
        finally:
            counter.counting = False

    def counted_cadences():
        counter.counting = not trainer._logs_after(trainer.step)
        try:
            cadences()
        finally:
            counter.counting = False

    trainer.iteration, trainer._cadences = counted_iteration, counted_cadences
    trainer.fit()


def experiment_trainer(case: str, run_dir):
    """The trainer of bundle `case` (or of a bundle with one of NETWORKS), tiny, logging every LOG_EVERY."""
    from gan_platform.run import build_trainer

    experiment = case.split()[0]
    overrides = tiny_experiment(experiment, run_dir) + NETWORKS.get(case, []) + ["trainer.steps=6", f"trainer.log_every={LOG_EVERY}",
                                               "trainer.sample_every=0", "trainer.checkpoint_every=0", "eval.every=0",
                                               "eval.enabled=false"]
    cfg = compose(overrides)
    validate(cfg)
    return build_trainer(cfg, run_dir)


@pytest.mark.parametrize("case", [e for e in EXPERIMENTS if e != "horse2zebra"] + list(NETWORKS))
def test_no_host_device_sync_between_log_steps(tmp_path, monkeypatch, case):
    trainer = experiment_trainer(case, tmp_path)
    try:
        with syncs_counted(monkeypatch) as counter:
            count_syncs_between_log_steps(trainer, counter)
    finally:
        trainer.tracker.finish(trainer.summary())
        trainer.run_dir.unlock()
    assert trainer.status == "finished" and trainer.step == 6
    assert dict(counter.calls) == {}, f"{sum(counter.calls.values())} syncing calls in the iterations between log steps"


def test_the_guard_sees_one_item_in_a_critic_step(tmp_path, monkeypatch):
    """The guard can fail: one `.item()` added to the D step is counted at every D step it makes
    between log steps (6 iterations, d_steps 1: 6 steps, all counted)."""
    trainer = experiment_trainer("nsgan", tmp_path)
    d_step = trainer.task.d_step

    def reading_d_step(x, y):
        logs = d_step(x, y)
        logs["d_loss"].item()
        return logs

    trainer.task.d_step = reading_d_step
    try:
        with syncs_counted(monkeypatch) as counter:
            count_syncs_between_log_steps(trainer, counter)
    finally:
        trainer.tracker.finish(trainer.summary())
        trainer.run_dir.unlock()
    assert sum(counter.calls.values()) == 6
    assert all(where.startswith("Tensor.item at ") and where.split(" at ")[1].startswith(__file__)
               for where in counter.calls)
