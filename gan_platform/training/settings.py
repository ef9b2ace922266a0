"""Config sections as plain dicts: what the training loop reads every iteration."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


class Settings(dict):
    """A config section as a plain dict with attribute access: the loop reads its settings every
    iteration, and an OmegaConf lookup costs about as much as a small layer's forward pass."""

    def __init__(self, section: Any):
        super().__init__(OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else section)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None
