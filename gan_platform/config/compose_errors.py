"""Hydra and OmegaConf composition errors as one sentence naming the problem and the fix; used by
the CLI's pre-flight and by the multirun pre-flight of every swept job."""

from __future__ import annotations

import re

# Options that come with a Hydra plugin the platform offers as an extra: (group, option) -> the extra.
PLUGIN_OPTIONS = {("hydra/launcher", "submitit_local"): "slurm", ("hydra/launcher", "submitit_slurm"): "slurm"}
PLUGIN_PACKAGES = {"slurm": "hydra-submitit-launcher"}


def group_options(group: str) -> list[str]:
    """The options of a config group (`tracker` -> [none, wandb]); [] when Hydra is not initialised."""
    from hydra.core.global_hydra import GlobalHydra

    try:
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))
    except Exception:  # noqa: BLE001
        return []


def explain_compose_error(error: Exception) -> str:
    """Hydra/OmegaConf composition error -> one sentence naming the problem and the fix."""
    parts, e = [], error
    while e is not None and len(parts) < 5:  # Hydra keeps the details in the cause
        parts.append(str(e))
        e = e.__cause__ or e.__context__
    text = "\n".join(parts)
    m = re.search(r"Could not (?:find|load) '([\w/]+)/(\w+)'", text)
    if m:
        group, option = m.group(1), m.group(2)
        extra = PLUGIN_OPTIONS.get((group, option))
        if extra is not None and option not in group_options(group):
            return (f"{group}={option} comes with the {PLUGIN_PACKAGES[extra]} plugin, which is not installed: install the "
                    f"{extra} extra (bash scripts/install {extra}, or pip install 'gan_platform[{extra}]') and run again.")
        options = group_options(group)
        how = f"+{group}=NAME" if group == "experiment" else f"{group}=NAME"
        return f"Unknown {group} '{option}': choose one of {', '.join(options)} ({how})."
    m = re.search(r"Could not override '([\w.]+)'", text) or re.search(r"Key '(\w+)' (?:is not in struct|not in)", text)
    if m and ("not in struct" in text or re.search(r"Key '\w+' not in '\w+'", text)):
        full = re.search(r"full_key: ([\w.]+)", text)
        key = full.group(1) if full else m.group(1)
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        hint = f" (see the keys of '{parent}' with --cfg job)" if parent else ""
        return f"Unknown config key '{key}': check its spelling{hint}; add a new key only with +{key}=VALUE."
    m = re.search(r"Value '(.*?)' (?:of type '\w+' )?could not be converted to (\w+)", text, re.S)
    if m:
        full = re.search(r"full_key: ([\w.]+)", text)
        key = full.group(1) if full else "a config value"
        return f"{key} must be of type {m.group(2).lower()}, got '{m.group(1)}'."
    m = re.search(r"Error parsing override '(.*?)'", text)
    if m:
        return f"Cannot parse the override '{m.group(1)}': write overrides as key=value (group=option, +key=value to add)."
    m = re.search(r"Could not append to config. An item is already at '([\w.]+)'", text)
    if m:
        return f"'{m.group(1)}' is already set by the config: override it as {m.group(1)}=VALUE, without the '+'."
    if "Missing mandatory value" in text:
        full = re.search(r"full_key: ([\w.]+)", text)
        return f"The config value '{full.group(1) if full else '?'}' must be set: add {full.group(1) if full else 'KEY'}=VALUE."
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"Invalid configuration: {first}"
