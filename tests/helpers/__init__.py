"""Shared test helpers: compose configs with Hydra, run the platform in-process or as a user would."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]
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


def hydra_compose(overrides, **kwargs):
    """Hydra's own compose of `overrides` as they are (no `+experiment=default` added)."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides), **kwargs)


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


def built_task(overrides: list[str]):
    """The task a run of `TINY + overrides` trains, built in this process from the checked config."""
    from gan_platform.config import validate
    from gan_platform.run import build_dataset, build_task, make_accelerator

    cfg = compose(TINY + overrides)
    validate(cfg)
    acc = make_accelerator(cfg)
    return build_task(cfg, build_dataset(cfg, acc), acc)


def installed(module: str) -> bool:
    """Whether `module` can be imported. find_spec of a dotted name imports its parent, which need not
    exist (no Hydra plugin at all)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


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

    from helpers.fork_server import server

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
