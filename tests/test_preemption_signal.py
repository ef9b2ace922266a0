"""The preemption signal in one process (training/stopping.py, training/preemption.py): SIGUSR1 and
SIGUSR2 ask for a `preempted` stop, the handler installed before training is kept and handed the
signal after the checkpoint, and an interruption outranks a preemption. (tests/test_preemption.py
runs it all for real: submitit's requeue and an sbatch job's.)"""

from __future__ import annotations

import logging
import os
import signal

import pytest
from accelerate import Accelerator

from gan_platform.training.preemption import requeue
from gan_platform.training.stopping import STOPS, StopRequest, stop_status


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGUSR2])
def test_a_cluster_signal_stops_the_run_as_preempted_and_hands_the_signal_back(signum):
    received = []
    before = signal.signal(signum, lambda s, frame: received.append(s))  # the job's own handler (submitit's)
    stop = StopRequest(Accelerator(cpu=True))
    try:
        stop.install()
        os.kill(os.getpid(), signum)
        assert stop.agreed() and (stop.status, stop.signum) == ("preempted", signum)
        assert received == []  # training took the signal over
        stop.restore()
        assert signal.getsignal(signum) == stop.previous[signum]  # put back as it was
        requeue(stop.previous, stop.signum, main=True)
        assert received == [signum]  # handed the signal once the checkpoint was written
        requeue(stop.previous, stop.signum, main=False)
        assert received == [signum]  # only the main process asks for the requeue
    finally:
        stop.restore()
        signal.signal(signum, before)


def test_an_interruption_outranks_a_sweeps_stop_which_outranks_a_preemption():
    assert (stop_status(signal.SIGUSR1), stop_status(signal.SIGUSR2)) == ("preempted", "preempted")
    assert STOPS == ("interrupted", "stopped_by_sweep", "preempted")


def test_preempted_outside_a_cluster_says_how_to_continue(monkeypatch, caplog):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with caplog.at_level(logging.WARNING, logger="gan_platform.training.trainer"):
        requeue({signal.SIGUSR1: signal.SIG_DFL, signal.SIGUSR2: signal.SIG_DFL}, signal.SIGUSR1, main=True)
    assert [r.getMessage() for r in caplog.records] == [
        "Preempted outside a cluster job: there is no job to requeue; continue the run with trainer.resume=auto."]
