"""One task a GPU (training/cluster.py): a task started by the cluster, not by a launcher, finds its
rank in the job's layout; a launcher's variables and a job of one task are left alone.
(tests/test_preemption.py trains one run on two real submitit tasks.)"""

from __future__ import annotations

import os

import pytest

from gan_platform.training.cluster import export_task_ranks

pytest.importorskip("submitit", reason="reading SLURM's layout needs the slurm extra")

TORCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def job_env():
    """A clean slate of the variables these tests set and read, restored afterwards."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(("SLURM_", "SUBMITIT_")) or key in TORCH_ENV:
            del os.environ[key]
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


def exported():
    return {k: os.environ.get(k) for k in TORCH_ENV}


def test_an_srun_task_of_a_two_node_job_gets_its_rank(job_env):
    job_env.update(SLURM_JOB_ID="81234", SLURM_STEP_NUM_TASKS="8", SLURM_NTASKS="8", SLURM_PROCID="5", SLURM_LOCALID="1",
                   SLURM_NODEID="1", SLURM_JOB_NUM_NODES="2", SLURM_JOB_NODELIST="gpu[07-08]")
    assert export_task_ranks()
    mine = exported()
    assert {k: mine[k] for k in TORCH_ENV[:5]} == {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8",
                                                   "LOCAL_WORLD_SIZE": "4", "MASTER_ADDR": "gpu07"}
    assert 20000 <= int(mine["MASTER_PORT"]) < 60000
    for key in TORCH_ENV:  # every task of the job (and the job after a requeue) meets at the same port
        del job_env[key]
    job_env["SLURM_PROCID"] = "0"
    assert export_task_ranks() and exported()["MASTER_PORT"] == mine["MASTER_PORT"]


def test_a_submitit_local_task_gets_its_rank(job_env):
    job_env.update(SUBMITIT_EXECUTOR="local", SUBMITIT_LOCAL_JOB_ID="777", SUBMITIT_LOCAL_NTASKS="2",
                   SUBMITIT_LOCAL_GLOBALID="1", SUBMITIT_LOCAL_LOCALID="1", SUBMITIT_LOCAL_JOB_NUM_NODES="1",
                   SUBMITIT_LOCAL_NODEID="0", MASTER_PORT="29511")
    assert export_task_ranks()
    assert {k: v for k, v in exported().items() if k != "MASTER_ADDR"} == {
        "RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_PORT": "29511"}


@pytest.mark.parametrize("env", [
    {"SLURM_JOB_ID": "5", "SLURM_NTASKS": "4", "SLURM_PROCID": "0"},  # the batch script itself: no srun step
    {"SLURM_JOB_ID": "5", "SLURM_STEP_NUM_TASKS": "1", "SLURM_NTASKS": "1", "SLURM_PROCID": "0"},  # one task a node
    {"SLURM_JOB_ID": "5", "SLURM_STEP_NUM_TASKS": "2", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
     "RANK": "3", "LOCAL_RANK": "3"},  # accelerate launch inside the task has set them
    {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": "9", "SUBMITIT_LOCAL_NTASKS": "1"},
], ids=["batch script", "one task", "a launcher's ranks", "one submitit task"])
def test_nothing_changes_without_several_cluster_tasks(job_env, env):
    job_env.update(env)
    before = exported()
    assert not export_task_ranks()
    assert exported() == before
