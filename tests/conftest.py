"""Shared test helpers: compose configs with Hydra, run the platform in-process or as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
assert EXPERIMENTS, "no experiment bundles found in conf/experiment/"

# Small, fast settings for tests: a handful of steps, no progress bar, no tracker, no dashboard.
TINY = ["trainer.progress=false", "trainer.batch_size=16", "trainer.grid_size=16", "tracker=none", "report=false"]


def compose(overrides: list[str]):
    """The config `python -m gan_platform OVERRIDES` would run, composed by Hydra."""
    from hydra import compose as hydra_compose, initialize_config_module

    from gan_platform.config.preflight import append_experiment  # no experiment named: +experiment=default

    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        return hydra_compose("config", overrides=append_experiment(list(overrides)))


def write_hydra_config(run_dir: Path, cfg) -> Path:
    """`<run_dir>/.hydra/config.yaml` as a Hydra run writes it: the composed config without the
    `hydra` node, unresolved, before the run starts (hydra.core.utils.run_job)."""
    from omegaconf import OmegaConf

    path = Path(run_dir) / ".hydra" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OmegaConf.to_yaml(cfg), encoding="utf-8")
    return path


def train(run_dir: Path, overrides: list[str]) -> dict:
    """Compose and run in this process: the fast way to test training. As from the command line,
    the config is checked before anything is written, then `.hydra/config.yaml` is written (what
    `gan_platform.sample` and `gan_platform.translate` read), then the run starts."""
    from gan_platform.config import validate
    from gan_platform.run import run

    cfg = compose(overrides)
    validate(cfg)
    write_hydra_config(run_dir, cfg)
    return run(cfg, run_dir, checked=True)


def cli_env(extra: Optional[dict] = None) -> dict:
    """The environment of a command-line run in a test; a None value in `extra` removes that variable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.pop("GAN_RUN_DIR", None)
    # an in-process test that started W&B leaves its service's address here: a run of the command line
    # must start its own service, as a user's does, not attach to the test process's
    env.pop("WANDB_SERVICE", None)
    env["WANDB_SILENT"] = "true"
    env.update(extra or {})
    return {k: v for k, v in env.items() if v is not None}


def run_cli(args: list[str], cwd: Path, env: Optional[dict] = None, timeout: float = 600,
            module: str = "gan_platform", fork: bool = True) -> subprocess.CompletedProcess:
    """`python -m gan_platform ARGS` in `cwd`, as a user runs it: a process of its own, forked from
    an interpreter that has the heavy imports done (fork_server.py), or with `fork=False` a fresh
    interpreter."""
    if not fork:
        return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=cli_env(env),
                              capture_output=True, text=True, timeout=timeout)
    import tempfile

    from fork_server import server

    with tempfile.TemporaryDirectory(prefix="run_cli_") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        proc = server(cli_env()).spawn(module, args, cwd, cli_env(env), out, err)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        return subprocess.CompletedProcess([sys.executable, "-m", module, *args], code,
                                           out.read_text(errors="replace"), err.read_text(errors="replace"))


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
