"""What a preempted run does once its checkpoint and summary are written: have its job requeued.

A cluster warns a job before it stops it: SLURM sends the signal that `--signal` asks for
(`--signal=USR1@180`: SIGUSR1 three minutes before the time limit), submitit sends SIGUSR2
(`signal_delay_s` before the time limit; a preempting scheduler configured to signal first does the
same). The run stops after the current iteration (stopping.py), saves a checkpoint and ends with
status `preempted`; then, as the last thing the process does (`requeue`, called by run.py once the
tracker is closed and the run dir unlocked), the main process:

1. inside a submitit job (Hydra's `hydra/launcher=submitit_slurm` or `submitit_local`) calls the
   handler submitit had installed for the signal before training took it over. That is submitit's
   requeue protocol: it asks the launcher's `checkpoint()` for the resubmission (the same Hydra job:
   the same overrides, the same run dir), requeues it (`scontrol requeue` on SLURM; the local
   executor starts it again) and exits;
2. else inside a SLURM job (`SLURM_JOB_ID`, a script with `#SBATCH --requeue`) runs
   `scontrol requeue $SLURM_JOB_ID`, which stops the job and puts it back in the queue;
3. else (no cluster to ask) logs how to continue the run (`trainer.resume=auto`).

The requeued job runs its command again in the same run dir (a submitit job's Hydra dir; under sbatch
the `GAN_RUN_DIR` its script derives from `SLURM_JOB_ID`, which a requeue keeps) and continues the
checkpoint whatever its `trainer.resume` says (runs/status.py `continues`, checkpointing.py): nothing
trained before the signal is lost, and on the CPU the run continues bit for bit. The other processes
of a multi-process job end without asking: the requeue stops and restarts the whole job.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from typing import Any, Callable, Optional

log = logging.getLogger("gan_platform.training.trainer")  # the training loop's messages keep one logger name


def _handed_back(previous: dict[int, Any], signum: Optional[int]) -> Optional[Callable[..., Any]]:
    """The handler installed before training for the signal received (or for any preemption signal,
    when this process only agreed to another's stop), if it is a Python callable (submitit's)."""
    order = ([signum] if signum in previous else []) + [s for s in previous if s != signum]
    return next((previous[s] for s in order if callable(previous[s])), None)


def _scontrol_requeue(job: str) -> None:
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.error("Could not run `scontrol requeue %s` (%s): the checkpoint is kept; continue the run with "
                  "trainer.resume=auto in a new job.", job, e)
        return
    if done.returncode:
        log.error("`scontrol requeue %s` failed (%s): the checkpoint is kept; continue the run with trainer.resume=auto "
                  "in a new job (and give the batch script #SBATCH --requeue).", job, done.stderr.strip() or done.returncode)
    else:
        log.warning("Requeued SLURM job %s: it continues this run from its checkpoint.", job)


def requeue(previous: dict[int, Any], signum: Optional[int], main: bool) -> None:
    """Have the preempted job requeued (module docstring); submitit's handler exits the process."""
    if not main:
        return
    handler = _handed_back(previous, signum)
    if handler is not None:
        log.warning("Preempted: handing the signal to the job's own handler (submitit), which requeues the job.")
        try:
            handler(signum if signum is not None else signal.SIGUSR2, None)
        except Exception as e:  # noqa: BLE001 - submitit refuses (e.g. timed out too many times): the run stays resumable
            log.error("The job was not requeued (%s): the checkpoint is kept; continue the run with trainer.resume=auto.", e)
        return
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        _scontrol_requeue(job)
        return
    log.warning("Preempted outside a cluster job: there is no job to requeue; continue the run with trainer.resume=auto.")
