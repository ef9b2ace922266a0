"""A W&B sweep YAML: read it, check it, and turn a proposed trial into its command line.

The same file serves `wandb sweep FILE` and `python -m gan_platform.sweep FILE`, so it is checked
with W&B's own schema (the `sweeps` package) and then for what this platform needs: a `command`
that runs `-m gan_platform` with `${args_no_hyphens}` (Hydra reads `key=value`, not `--key=value`),
a metric where the method or early termination needs one, and parameters that compose into a
valid config. A trial's command line is built with wandb's own macro expansion, exactly as
`wandb agent` builds it, except that `${interpreter}` is the Python running the sweep rather than
whatever `python` is first on PATH.
"""

from __future__ import annotations

import itertools
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml

from gan_platform.errors import UserError

ARGS_MACRO = "${args_no_hyphens}"
METHODS = ("grid", "random", "bayes")
# Macros whose rendering Hydra cannot read, with the reason.
UNREADABLE_MACROS = {
    "${args}": "renders --key=value flags",
    "${args_no_boolean_flags}": "renders --key=value flags",
    "${args_no_equals}": "renders --key value pairs",
    "${args_json}": "renders one JSON string",
    "${args_json_file}": "passes a JSON file",
}
MAX_COMPOSE_CHECKS = 40


def engine():
    """W&B's sweep engine, the `sweeps` package (imported quietly: it warns about its pydantic models)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic v2 notes on its v1-style models
        import sweeps
    return sweeps


def plain(value: Any) -> Any:
    """numpy scalars (as the sweep engine proposes them) -> Python values, for JSON and the command line."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _schema_sentence(path: Path, violations: list[str]) -> str:
    first = " ".join(str(violations[0]).split()).rstrip(".")
    more = f" (and {len(violations) - 1} more problem{'s' if len(violations) > 2 else ''})" if len(violations) > 1 else ""
    return f"The sweep file {path} is not a valid W&B sweep config: {first}{more}; fix it as the W&B sweep configuration reference describes."


def load_sweep(path: str | Path, check_compose: bool = True) -> dict[str, Any]:
    """Read and check a sweep YAML; returns the config with W&B's defaults filled in.

    Raises UserError (one sentence) for a missing or unreadable file, a schema violation, a
    command this platform cannot run, or parameters that do not compose into a valid config."""
    SweepConfig, schema_violations_from_proposed_config = engine().SweepConfig, engine().schema_violations_from_proposed_config
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Sweep file {path} not found: pass the path of a sweep YAML such as sweeps/losses.yaml.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise UserError(f"The sweep file {path} is not valid YAML{line}: fix its syntax.") from None
    if not isinstance(raw, dict):
        raise UserError(f"The sweep file {path} must be a YAML mapping with method, metric, parameters and command.")
    try:
        violations = schema_violations_from_proposed_config(raw)
    except ValueError as e:
        violations = [str(e)]
    if violations:
        raise UserError(_schema_sentence(path, violations))
    if raw.get("method") not in METHODS:
        raise UserError(f"The sweep file {path} uses method '{raw.get('method')}', which runs only on a W&B server: "
                        f"use one of {', '.join(METHODS)}.")
    config = dict(SweepConfig(raw))
    _check_metric(path, config)
    _check_command(path, config)
    if check_compose:
        check_parameters_compose(path, config)
    return config


def _check_metric(path: Path, config: dict[str, Any]) -> None:
    needs = [why for why, needed in (("method bayes", config["method"] == "bayes"),
                                     ("early_terminate", "early_terminate" in config)) if needed]
    if needs and not (config.get("metric") or {}).get("name"):
        raise UserError(f"The sweep file {path} uses {needs[0]}, which needs a metric: add `metric: {{name: eval/fid, goal: minimize}}`.")
    if "early_terminate" in config:
        try:
            engine().stop_runs(config, [])
        except (ValueError, KeyError) as e:
            raise UserError(f"The sweep file {path} has an early_terminate section W&B cannot use ({e}): "
                            "give hyperband min_iter and eta, or max_iter, eta and s.") from None


def _check_command(path: Path, config: dict[str, Any]) -> None:
    command = [str(c) for c in config.get("command") or []]
    fix = ("make `command` the list ${env}, ${interpreter}, -m, gan_platform, any fixed overrides "
           "(+experiment=wgan), ${args_no_hyphens}, one item a line")
    if not command:
        raise UserError(f"The sweep file {path} has no command: {fix}.")
    for macro, why in UNREADABLE_MACROS.items():
        if macro in command:
            raise UserError(f"The sweep file {path} passes parameters with {macro}, which {why} that Hydra cannot read: "
                            f"use {ARGS_MACRO} instead.")
    if "-m" not in command or command[command.index("-m") + 1: command.index("-m") + 2] != ["gan_platform"]:
        raise UserError(f"The sweep file {path} does not run `-m gan_platform`: {fix}.")
    if ARGS_MACRO not in command:
        raise UserError(f"The sweep file {path} never passes the trial's parameters: {fix}.")


def add_overrides(config: dict[str, Any], overrides: list[str], path: Path) -> dict[str, Any]:
    """The sweep with `overrides` (from the command line) added to every trial's command: the words go
    after the trial's own parameters, as fixed overrides in the YAML's `command` would. The sweep
    state records the command, so a sweep continued with other overrides is refused as another
    sweep (state.py)."""
    for word in overrides:
        key = word.lstrip("+~").split("=", 1)[0]
        if "=" not in word or word.startswith("-"):
            raise UserError(f"'{word}' is not an override: after the sweep file write key=value words for every "
                            "trial (e.g. trainer.steps=300), and options (--count) anywhere.")
        if key in config["parameters"] or f"+{key}" in config["parameters"]:
            raise UserError(f"{key} is a parameter of the sweep {path}: drop {word} from the command line, "
                            "or change its values in the file.")
    return {**config, "command": [*config["command"], *overrides]} if overrides else config


def fixed_overrides(config: dict[str, Any]) -> list[str]:
    """The Hydra overrides the command gives every trial (the words after `-m gan_platform`)."""
    command = [str(c) for c in config["command"]]
    after = command[command.index("-m") + 2:]
    return [c for c in after if not (c.startswith("${") and c.endswith("}"))]


def render_args(params: dict[str, Any]) -> list[str]:
    """`key=value` words for `params`, rendered by wandb's own code for `${args_no_hyphens}`."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    return create_sweep_command_args({"args": {k: {"value": plain(v)} for k, v in params.items()}})[ARGS_MACRO[2:-1]]


def trial_command(config: dict[str, Any], params: dict[str, Any], interpreter: Optional[str] = None,
                  program: Optional[str] = None) -> list[str]:
    """The command line `wandb agent` would run for a trial with `params`.

    Mirrors wandb 0.31's `Agent._command_run`: `${envvar:NAME}` macros are filled by
    `create_sweep_command`, argument macros by `create_sweep_command_args`, `${env}` is
    /usr/bin/env, `${program}` the file named by `program:`; `${interpreter}` is `interpreter`
    (default: this Python, so the trial runs in the same environment as the sweep)."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    sweep_command = create_sweep_command([str(c) for c in config.get("command") or []])
    macros: dict[str, list[str]] = create_sweep_command_args({"args": {k: {"value": plain(v)} for k, v in params.items()}})
    macros["interpreter"] = [interpreter or sys.executable]
    macros["program"] = [program or config.get("program") or ""]
    macros["env"] = ["/usr/bin/env"]
    words: list[str] = []
    for word in sweep_command:
        if word.startswith("${") and word.endswith("}"):
            words += [w for w in macros.get(word[2:-1]) or [] if w]
        else:
            words.append(word)
    return words


def parameter_values(spec: dict[str, Any]) -> Optional[list[Any]]:
    """The finite list of values a parameter takes (None for a continuous distribution)."""
    if "value" in spec:
        return [spec["value"]]
    if "values" in spec:
        return list(spec["values"])
    if spec.get("distribution") == "int_uniform":
        return list(range(int(spec["min"]), int(spec["max"]) + 1))
    return None


def grid_size(config: dict[str, Any]) -> Optional[int]:
    """Number of trials in a grid sweep (None for random and bayes, which never run out)."""
    if config["method"] != "grid":
        return None
    sizes = [parameter_values(spec) for spec in config["parameters"].values()]
    return math.prod(len(v) for v in sizes if v is not None)


def check_parameters_compose(path: Path, config: dict[str, Any]) -> None:
    """Compose the command's overrides with every listed value of every parameter (the others at
    their first proposal), so a misspelt key or option fails here, not in every trial."""
    from gan_platform.config.preflight import append_experiment, preflight

    first = engine().next_run(config, [])
    base = {k: v["value"] for k, v in (first.config if first else {}).items()}
    trials = [dict(base)]
    for name, spec in config["parameters"].items():
        for value in (parameter_values(spec) or [])[1:]:
            trials.append({**base, name: value})
    fixed = fixed_overrides(config)
    for params in itertools.islice(trials, MAX_COMPOSE_CHECKS):
        try:
            preflight(append_experiment(fixed + render_args(params)))
        except UserError as e:
            shown = " ".join(render_args(params))
            raise UserError(f"The sweep file {path} proposes a trial ({shown}) that does not compose: {e}") from None
