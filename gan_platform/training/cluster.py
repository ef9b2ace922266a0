"""One task per GPU on a cluster: a process's rank from the job's task layout.

`accelerate launch` (or torchrun) starts the processes of a run itself and tells each its rank
(`RANK`, `LOCAL_RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`: torch's env:// variables). A
cluster can start them instead, one task a GPU: `srun` in an sbatch script with
`--ntasks-per-node` equal to the GPUs a node, or Hydra's submitit launcher with
`hydra.launcher.tasks_per_node` equal to `gpus_per_node`. Each task then runs `python -m
gan_platform` alone, and `export_task_ranks` sets torch's variables from the layout the job
describes, before any process group exists: submitit's job environment (its local executor's
variables, or SLURM's under its SLURM executor), or SLURM's own variables in a step that `srun`
started with several tasks (`SLURM_STEP_NUM_TASKS`). The address of rank 0 is the job's first node;
the port is `MASTER_PORT` if set, else one derived from the job id (the same on every task, and
after a requeue). Nothing changes where a launcher has set `RANK` already, or where the job has one
task.

A task's signals come from the cluster straight (no launcher between them to forward or swallow
them), which is what preemption needs (preemption.py): SLURM's `--signal` reaches every task.
Reading SLURM's layout (its compressed node lists) uses submitit, the `slurm` extra.
"""

from __future__ import annotations

import hashlib
import os

from gan_platform.errors import UserError

PORTS = (20000, 60000)  # the range a job's MASTER_PORT is drawn from when none is set


def _job_environment():
    """submitit's view of this job, or None when this process is not one of several cluster tasks."""
    submitit_job = bool(os.environ.get("SUBMITIT_EXECUTOR"))
    if not submitit_job and int(os.environ.get("SLURM_STEP_NUM_TASKS", "1") or 1) < 2:
        return None
    try:
        import submitit
        from submitit.slurm.slurm import SlurmJobEnvironment
    except ImportError as e:
        raise UserError("This SLURM step runs several tasks, and reading their layout needs the slurm extra: install it "
                        "(bash scripts/install slurm), or run one task a node with accelerate launch.") from e
    job = submitit.JobEnvironment() if submitit_job else SlurmJobEnvironment()
    return job if job.num_tasks > 1 else None


def export_task_ranks() -> bool:
    """Set torch's env:// variables for this task from the job's layout (module docstring); True
    when it did."""
    if "RANK" in os.environ or "LOCAL_RANK" in os.environ:
        return False
    job = _job_environment()
    if job is None:
        return False
    digest = int(hashlib.sha256(str(job.job_id).encode()).hexdigest(), 16)
    port = os.environ.get("MASTER_PORT") or str(PORTS[0] + digest % (PORTS[1] - PORTS[0]))
    os.environ.update(RANK=str(job.global_rank), LOCAL_RANK=str(job.local_rank), WORLD_SIZE=str(job.num_tasks),
                      LOCAL_WORLD_SIZE=str(job.num_tasks // job.num_nodes), MASTER_ADDR=str(job.hostnames[0]),
                      MASTER_PORT=port)
    return True
