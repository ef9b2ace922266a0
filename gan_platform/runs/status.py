"""How a run ends: every status summary.json can hold, and what each means, in one table.

| status             | how the run got there                                         | exit | done | success |
|--------------------|---------------------------------------------------------------|------|------|---------|
| `running`          | going on, or killed without a word (SIGKILL): resume it       |  -   |  no  |   no    |
| `finished`         | trained `trainer.steps`, final evaluation written             |  0   | yes  |  yes    |
| `early_stopped`    | the evaluation metric stopped improving (`eval.early_stop_patience`) | 0 | yes | yes   |
| `stopped_by_sweep` | SIGTERM in a sweep trial: the sweep asked (hyperband, agent shutting down) | 0 | no | yes |
| `interrupted`      | Ctrl-C, or SIGTERM outside a sweep: checkpointed, resumable   | 130  |  no  |   no    |
| `preempted`        | the cluster's signal before it stops the job (SIGUSR1, submitit's SIGUSR2): checkpointed and requeued | 0 | no | no |
| `diverged`         | a NaN/inf in the losses or the weights: the last finite checkpoint kept | 3 | no | no  |
| `failed`           | an error: one sentence for the user's, a traceback for the others |  1   |  no  |   no    |

- exit: the command line's exit code (`exit_code`);
- done: `trainer.resume=auto` has nothing to continue at the last step (`is_done`); the others resume;
- success: counted as a run that did its work, by W&B (its exit code 0) and by a multirun's report
  of failed jobs (`succeeded`).

A `preempted` run is continued by the next run that starts in its dir, whatever that run's
`trainer.resume` says (`continues`): the job a cluster requeues runs the command it was given, and
must take up the checkpoint rather than start over (training/preemption.py).

`Status` is a `str` enum: its members are the strings written to summary.json and compare equal to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional


class Status(str, Enum):
    RUNNING = "running"
    FINISHED = "finished"
    EARLY_STOPPED = "early_stopped"
    STOPPED_BY_SWEEP = "stopped_by_sweep"
    INTERRUPTED = "interrupted"
    PREEMPTED = "preempted"
    DIVERGED = "diverged"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Ending:
    exit_code: int
    done: bool
    success: bool
    reason: Optional[str] = None  # summary.json's `reason`, for a run stopped from outside


ENDINGS: dict[Status, Ending] = {
    Status.FINISHED: Ending(0, True, True),
    Status.EARLY_STOPPED: Ending(0, True, True),
    Status.STOPPED_BY_SWEEP: Ending(0, False, True, "stopped by the sweep (SIGTERM from the sweep agent: early "
                                                    "termination such as hyperband, or the agent shutting down)"),
    Status.INTERRUPTED: Ending(130, False, False, "stopped by a signal (Ctrl-C or SIGTERM); resume with trainer.resume=auto"),
    Status.PREEMPTED: Ending(0, False, False, "stopped by the cluster's preemption signal (SIGUSR1, or submitit's SIGUSR2) "
                                              "with a checkpoint; the requeued job (or trainer.resume=auto) continues it"),
    Status.DIVERGED: Ending(3, False, False),
    Status.FAILED: Ending(1, False, False),
}


def _ending(status: Optional[str]) -> Optional[Ending]:
    try:
        return ENDINGS.get(Status(status)) if status is not None else None
    except ValueError:
        return None


def exit_code(status: Optional[str]) -> int:
    """The command line's exit code for a run that ended with `status` (1 for anything unknown)."""
    ending = _ending(status)
    return ending.exit_code if ending is not None else 1


def is_done(status: Optional[str]) -> bool:
    """Did the run end with nothing left to do (finished, early-stopped)?"""
    ending = _ending(status)
    return ending is not None and ending.done


def succeeded(status: Optional[str]) -> bool:
    """Did the run end as it was asked to (finished, early-stopped, stopped by its sweep)?"""
    ending = _ending(status)
    return ending is not None and ending.success


def continues(status: Optional[str]) -> bool:
    """Does a run that starts in the dir of a run that ended with `status` continue it (a requeued job)?"""
    return status == Status.PREEMPTED


def reason(status: Optional[str]) -> Optional[str]:
    """Why a run stopped from outside stopped (summary.json's `reason`), else None."""
    ending = _ending(status)
    return ending.reason if ending is not None else None
