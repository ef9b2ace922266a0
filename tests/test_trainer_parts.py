"""The parts of the training loop on their own: the loss window, the stop request, early stopping,
RNG state, the lr schedule and the config's optimizer settings on resume."""

import math
import os
import random
import signal

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from gan_platform.training.early_stopping import EarlyStopping
from gan_platform.errors import DivergedError
from gan_platform.training.loss_window import LossWindow
from gan_platform.training.settings import Settings
from gan_platform.training.stopping import StopRequest
from gan_platform.training.state import (apply_configured_hyperparameters, configured_hyperparameters, make_schedulers,
                                         rng_state, set_rng_state, side_rng)


@pytest.fixture
def acc():
    return Accelerator(cpu=True)


def test_the_loss_window_averages_each_key_over_the_steps_that_logged_it(acc):
    window = LossWindow(acc)
    window.add({"d_loss": torch.tensor(1.0), "grad_penalty": torch.tensor(10.0)})  # a critic step
    window.add({"d_loss": torch.tensor(3.0)})  # a critic step without the penalty
    window.add({"g_loss": torch.tensor(-2.0)})
    window.iterations += 1
    out = window.flush(step=1, checkpoint_step=None)
    assert {k: v for k, v in out.items() if k.startswith("train/")} == {"train/d_loss": 2.0, "train/grad_penalty": 10.0,
                                                                        "train/g_loss": -2.0}
    assert out["perf/it_per_s"] > 0
    assert window.sums == {} and window.counts == {} and window.iterations == 0
    assert window.flush(step=2, checkpoint_step=None) == {}


def test_a_non_finite_average_is_divergence_naming_the_loss(acc):
    window = LossWindow(acc)
    window.add({"d_loss": torch.tensor(1.0), "g_loss": torch.tensor(float("nan"))})
    with pytest.raises(DivergedError) as info:
        window.flush(step=7, checkpoint_step=5)
    assert (info.value.what, info.value.step, info.value.checkpoint_step) == ("train/g_loss", 7, 5)
    assert window.sums == {}  # the next window starts empty


def test_a_signal_asks_to_stop_its_echo_is_ignored_and_a_later_one_quits(acc):
    before = signal.getsignal(signal.SIGTERM)
    stop = StopRequest(acc)
    stop.install()
    try:
        assert signal.getsignal(signal.SIGTERM) == stop.on_signal  # else the kill below would end pytest
        assert not stop.agreed()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.agreed()
        os.kill(os.getpid(), signal.SIGINT)  # within a second: the same request (e.g. forwarded by a launcher)
        stop.time -= 2.0  # as if the first came two seconds ago
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGTERM) is before


def test_early_stopping_keeps_the_best_and_counts_evaluations_without_improvement():
    stopping = EarlyStopping(Settings({"best_metric": "eval/fid", "best_mode": "min", "early_stop_patience": 2}))
    verdicts = [stopping.update({"eval/fid": v}, step) for step, v in enumerate([3.0, 2.0, 2.5, math.nan, 2.6], 1)]
    assert verdicts == [True, True, False, None, False]
    assert stopping.best == {"step": 2, "eval/fid": 2.0, "metrics": {"eval/fid": 2.0}}
    assert stopping.bad_evals == 2 and stopping.patience_exhausted
    assert stopping.update({"eval/kid": 0.1}, 6) is None
    maximise = EarlyStopping(Settings({"best_metric": "collapse/modes", "best_mode": "max", "early_stop_patience": 0}))
    assert [maximise.update({"collapse/modes": v}, 1) for v in (5.0, 8.0, 7.0, 7.0)] == [True, True, False, False]
    assert maximise.best["collapse/modes"] == 8.0 and not maximise.patience_exhausted  # patience 0: never


def test_rng_state_restores_every_stream_and_side_sampling_moves_none():
    data = torch.Generator().manual_seed(3)
    state = rng_state(data)

    def draw():
        return (torch.rand(3).tolist(), torch.rand(3, generator=data).tolist(), random.random(), np.random.rand())

    first = draw()
    set_rng_state(state, data)
    with side_rng(seed=1, step=4):
        side = torch.rand(3).tolist()
    assert draw() == first
    with side_rng(seed=1, step=4):
        assert torch.rand(3).tolist() == side  # seeded by seed and step


def test_a_data_stream_from_another_kind_of_device_restarts_and_the_other_streams_resume(caplog):
    """A CPU checkpoint resumed on a GPU (or back): the data generator's state is of another kind
    (a CUDA generator's is 16 bytes, a CPU one's 5056), so that stream keeps this run's seed, with a
    warning, and the torch, Python and NumPy streams are restored as usual."""
    data = torch.Generator().manual_seed(3)
    state = rng_state(data)
    state["data"] = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA (Philox) generator's state
    fresh = torch.Generator().manual_seed(3)
    expected = (torch.rand(3).tolist(), torch.rand(3, generator=fresh).tolist(), random.random(), np.random.rand())
    torch.rand(5), random.random(), np.random.rand()  # move the global streams on
    set_rng_state(state, data)
    assert (torch.rand(3).tolist(), torch.rand(3, generator=data).tolist(), random.random(), np.random.rand()) == expected
    assert "data stream restarts from the seed" in caplog.text


def test_resume_applies_the_configured_lr_on_the_decayed_schedule():
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([w], lr=0.1, betas=(0.5, 0.9))
    schedulers = make_schedulers({"generator": opt}, "linear", 0.5, 10)  # factor 1 to step 5, then 0 at 10
    for _ in range(7):
        opt.step()
        schedulers["generator"].step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.6)
    configured = {"generator": [{"lr": 0.05, "betas": (0.0, 0.99), "eps": 1e-8, "weight_decay": 0}]}
    apply_configured_hyperparameters({"generator": opt}, schedulers, configured, announce=False)
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(0.05 * 0.6) and group["initial_lr"] == 0.05 and group["betas"] == (0.0, 0.99)
    schedulers["generator"].step()
    assert group["lr"] == pytest.approx(0.05 * 0.4)
    assert configured_hyperparameters({"generator": opt})["generator"][0]["lr"] == pytest.approx(0.05 * 0.4)
