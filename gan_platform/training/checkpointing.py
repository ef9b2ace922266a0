"""What a checkpoint of a run holds and how a run continues from one: the trainer's state half.

`Checkpointing` is the part of `Trainer` (trainer.py) that turns the run into a checkpoint and back:
`state_dict` (step, modules, optimizers, schedulers, scaler, RNG streams, the task's own state and
the trainer's: best value, loss window, metrics.jsonl's record count, tracker run, warnings),
`save` (a collective: every rank calls it, the main one writes, runs/checkpoint.py says how) and
`resume`, which returns what it found (`Resumed`) for the builder to hand on (the tracker's run).
A run that does not resume may start from another run's networks instead (`initialise_from`,
`trainer.init_from`: init_from.py); where it came from stays in every checkpoint. A run that starts
in the dir of a `preempted` run continues it as `trainer.resume=auto` would, whatever its own
`trainer.resume` says: it is the requeued job (preemption.py).
On resume the config's optimizer hyperparameters win over the checkpoint's (state.py), and
metrics.jsonl is cut back to the records the checkpoint counted (the trainer's docstring says why).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from accelerate.utils import broadcast_object_list

from gan_platform.runs.checkpoint import load_checkpoint, load_for_resume, save_checkpoint, settle_resumed
from gan_platform.runs.rundir import read_metrics
from gan_platform.runs.status import continues
from gan_platform.training.distributed import average_buffers
from gan_platform.training.init_from import init_networks
from gan_platform.training.state import load_training_state, training_state

log = logging.getLogger("gan_platform.training.trainer")  # the training loop's messages keep one logger name


@dataclass
class Resumed:
    """What `Checkpointing.resume` continued from."""

    folder: Path
    step: int
    meta: dict
    tracker_state: dict = field(default_factory=dict)  # the tracker's run to continue (its id)


class Checkpointing:
    """The checkpoint half of `Trainer`; it uses the trainer's attributes (trainer.py)."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint holds: step, modules, optimizers, schedulers, scaler, rng, task, trainer."""
        return {
            "step": self.step,
            "num_processes": self.acc.num_processes,
            **training_state(self.acc, self.task, self.schedulers, self.data_generator),  # collective (RNG gather)
            "trainer": {"best": self.best, "bad_evals": self.early_stopping.bad_evals, "fixed": self.fixed,
                        "last_eval": self.last_eval, "last_train": self.last_train, "metrics_records": self.records,
                        "loss_window": self.losses.state(),  # collective with several processes
                        "tracker": self.tracker.state(), "warnings": self.health.warnings,
                        "init_from": self.init_from},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (the config's optimizer settings win)."""
        load_training_state(state, self.acc, self.task, self.schedulers, self.configured, self.data_generator)
        t = state["trainer"]
        self.early_stopping.best, self.early_stopping.bad_evals, self.fixed = t["best"], t["bad_evals"], t["fixed"]
        self.last_eval, self.last_train = t.get("last_eval", {}), t.get("last_train", {})
        self.health.warnings = list(t.get("warnings", []))
        self.init_from = t.get("init_from")
        self.records = t.get("metrics_records")  # None in checkpoints from before it was kept
        if "loss_window" in t:
            self.losses.load_state(t["loss_window"])
        self.step = int(state["step"])

    def save(self, name: str = "last") -> None:
        """checkpoints/<name>; a collective: every rank calls it."""
        average_buffers(self.acc, self.task.modules.values())  # collective, like the RNG gather below
        state = self.state_dict()  # collective (RNG gather): every rank calls it
        if self.main:
            save_checkpoint(self.run_dir.checkpoints_dir / name, state, self.step)
        self.acc.wait_for_everyone()
        if name == "last":
            self.checkpoint_step = self.step

    def initialise_from(self, spec: str) -> None:
        """A fresh run starts from the networks of the checkpoint `spec` names (init_from.py)."""
        self.init_from = init_networks(self.acc, self.task, spec)

    def resume(self) -> Optional[Resumed]:
        """Continue from `trainer.resume` ("auto": this run dir's newest checkpoint that verifies, if
        there is one, or the dir's preempted run); returns what it continued from, None when the run starts fresh."""
        spec = self.cfg.resume or self._requeued()
        if not spec:
            return None
        found = None
        if spec == "auto":  # the newest checkpoint that verifies (checkpoint.load_for_resume)
            found = load_for_resume(self.run_dir.checkpoints_dir)
            if found is None:
                log.info("trainer.resume=auto: no checkpoint in %s, starting fresh.", self.run_dir.root)
                if self.main:  # what a killed first attempt logged before its first checkpoint
                    self.run_dir.truncate_metrics(0, records=0)
                return None
            folder, state, meta = found.folder, found.state, found.meta
        else:
            folder = spec
            state, meta = load_checkpoint(folder)
        self.load_state_dict(state)
        self.checkpoint_step = self.step
        self.acc.wait_for_everyone()  # every rank has read it before it is moved back into place
        if self.main:
            if found is not None:
                settle_resumed(self.run_dir.checkpoints_dir, found)
            self.records = self.run_dir.truncate_metrics(self.step, records=self.records)
            self.kept_records = list(read_metrics(self.run_dir.metrics_path))
        log.info("Resumed from %s at step %d.", folder, self.step)
        return Resumed(Path(folder), self.step, meta, state["trainer"].get("tracker") or {})

    def _requeued(self) -> Optional[str]:
        """"auto" when this run dir holds a preempted run (this is its requeued job), decided by the
        main process for all (a collective with several processes), else None."""
        decision = ["auto" if self.main and continues(self.run_dir.read_summary().get("status")) else None]
        if self.acc.num_processes > 1:
            broadcast_object_list(decision, from_process=0)
        if decision[0] and self.main:
            log.warning("Continuing the preempted run in %s (its job was requeued).", self.run_dir.root)
        return decision[0]
