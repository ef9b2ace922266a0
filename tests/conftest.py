"""pytest's own parts for the whole suite: hooks that fix the random state, autouse fixtures that
isolate tests, and fixtures that several test modules share. The plain helpers are in `helpers`."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from helpers import cli_env, train
from helpers.evaluation import DIGITS, RING


def pytest_configure(config):
    """pytest-randomly shuffles the order (kept: that is how order dependence shows) and would reseed
    `random` and numpy at every test from this session's random seed, a different draw on every run;
    torch it leaves alone, so a test's torch draws were whatever the tests before it left. Both are
    replaced by the fixed seeds of `pytest_runtest_setup` below."""
    if hasattr(config.option, "randomly_reset_seed"):
        config.option.randomly_reset_seed = False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Every test, in any order, on any run, starts from the same random state, before its fixtures."""
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """Accelerate keeps its state (device, precision) for the life of the process: a test that made
    `Accelerator(cpu=True)` would otherwise put later in-process runs of the same worker on the CPU
    while the runs they resume, started from the command line, train on a GPU."""
    yield
    from accelerate.state import AcceleratorState, GradientState

    if not torch.distributed.is_initialized():
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run in parallel (xdist) on small machines: one intra-op thread each."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def agent_env(monkeypatch, tmp_path):
    """The environment a `wandb agent` gives its trials, offline, with tmp_path as the working dir:
    trials started by wandb's own Agent code run `python -m gan_platform` from this checkout."""
    monkeypatch.chdir(tmp_path)
    for k, v in cli_env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])  # `python` is this one
    for k, v in {"WANDB_SWEEP_ID": "sw33p", "WANDB_DIR": str(tmp_path), "WANDB_RUN_ID": "",
                 "WANDB_SWEEP_PARAM_PATH": "", "WANDB_MODE": "offline"}.items():
        monkeypatch.setenv(k, v)
    return tmp_path


@pytest.fixture(autouse=True, scope="session")
def _cache_in_tmp(tmp_path_factory):
    """Cached real features go to a folder of this session, never to ~/.cache/gan_platform: no test
    reads what an earlier session or run left there (the digit classifiers ship with the package)."""
    cache = tmp_path_factory.mktemp("gan_platform_cache")
    old = os.environ.get("GAN_PLATFORM_CACHE")
    os.environ["GAN_PLATFORM_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("GAN_PLATFORM_CACHE", None)
    else:
        os.environ["GAN_PLATFORM_CACHE"] = old


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory):
    """A conditional digits run of 3 steps, trained once per test module that asks for it."""
    run_dir = tmp_path_factory.mktemp("digits") / "run"
    train(run_dir, DIGITS + ["task.conditional=true", "trainer.steps=3", "eval.every=0", "eval.num_samples=100"])
    return run_dir


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """A ring run of 30 steps, trained once per test module that asks for it."""
    run_dir = tmp_path_factory.mktemp("ring") / "run"
    train(run_dir, RING + ["trainer.steps=30", "eval.every=0", "eval.num_samples=200"])
    return run_dir
