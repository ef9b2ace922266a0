"""A trial stopped on purpose by its sweep (hyperband, through `wandb agent`) ends `stopped_by_sweep`
with exit code 0, so the agent does not count it as a failed run; Ctrl-C stays `interrupted` (130)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from gan_platform.training.stopping import LOCAL_SWEEP_ENV, StopRequest, stop_status

TRIAL = ["${env}", "${interpreter}", "-m", "gan_platform", "dataset=ring8", "model=mlp", "model.generator.hidden=32",
         "model.discriminator.hidden=32", "trainer.steps=100000", "trainer.batch_size=16", "trainer.log_every=5",
         "trainer.progress=false", "trainer.sample_every=0", "trainer.checkpoint_every=0", "tracker=none",
         "report=false", "${args_no_hyphens}"]


def _logged(run_dir) -> int:
    path = run_dir / "metrics.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


@pytest.mark.slow
def test_wandb_agent_stop_is_exit_0_and_ctrl_c_stays_130(tmp_path, monkeypatch, agent_env):
    """Two trials started by wandb's own Agent code: the server's `stop` command (what hyperband sends)
    reaches one as the agent's SIGTERM; the other gets Ctrl-C (SIGINT), as from the agent's terminal."""
    from wandb.wandb_agent import Agent

    from gan_platform.runs.checkpoint import read_meta

    monkeypatch.delenv(LOCAL_SWEEP_ENV, raising=False)
    agent = Agent(api=None, queue=None, sweep_id="sw33p")
    agent._sweep_command = list(TRIAL)
    for run_id, lr in (("hb", 1e-8), ("cc", 1e-3)):
        agent._command_run({"type": "run", "run_id": run_id, "program": None,
                            "args": {"optimizer.lr": {"value": lr}}})
    procs = agent._run_processes
    dirs = {r: tmp_path / "outputs" / "sweeps" / "sw33p" / r for r in procs}
    try:
        deadline = time.monotonic() + 240
        while min(_logged(d) for d in dirs.values()) < 2 and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs.values()), "a trial ended before it was stopped"
            time.sleep(0.1)
        agent._command_stop({"run_id": "hb"})  # the agent's answer to the server's stop: SIGTERM
        procs["cc"]._popen.send_signal(signal.SIGINT)
        codes = {r: p.wait(timeout=240) for r, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    assert codes == {"hb": 0, "cc": 130}  # the agent counts exit codes > 0 as failed runs
    stopped = json.loads((dirs["hb"] / "summary.json").read_text())
    interrupted = json.loads((dirs["cc"] / "summary.json").read_text())
    assert stopped["status"] == "stopped_by_sweep" and "stopped by the sweep" in stopped["reason"]
    assert stopped["error"] is None
    assert interrupted["status"] == "interrupted" and "Ctrl-C" in interrupted["reason"]
    for summary, d in ((stopped, dirs["hb"]), (interrupted, dirs["cc"])):
        assert 10 <= summary["step"] < 100000  # the iteration after the signal, a log step or not
        assert read_meta(d / "checkpoints" / "last")["step"] == summary["step"] == summary["checkpoint_step"]


def test_sigterm_is_the_sweeps_stop_only_inside_a_sweep_trial(monkeypatch):
    from accelerate import Accelerator

    for k in ("WANDB_SWEEP_ID", "WANDB_RUN_ID", LOCAL_SWEEP_ENV):
        monkeypatch.delenv(k, raising=False)
    assert (stop_status(signal.SIGTERM), stop_status(signal.SIGINT)) == ("interrupted", "interrupted")
    monkeypatch.setenv("WANDB_SWEEP_ID", "abc")
    assert stop_status(signal.SIGTERM) == "interrupted"  # no run id: not a trial the agent started
    monkeypatch.setenv("WANDB_RUN_ID", "r1")
    assert (stop_status(signal.SIGTERM), stop_status(signal.SIGINT)) == ("stopped_by_sweep", "interrupted")
    for k in ("WANDB_SWEEP_ID", "WANDB_RUN_ID"):
        monkeypatch.delenv(k)
    monkeypatch.setenv(LOCAL_SWEEP_ENV, "1")  # a trial of `python -m gan_platform.sweep`
    assert stop_status(signal.SIGTERM) == "stopped_by_sweep"

    stop = StopRequest(Accelerator(cpu=True))
    stop.install()
    try:
        assert not stop.agreed()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.agreed() and stop.status == "stopped_by_sweep"
        os.kill(os.getpid(), signal.SIGINT)  # an echo within a second does not change why it stops
        assert stop.agreed() and stop.status == "stopped_by_sweep"
    finally:
        stop.restore()
