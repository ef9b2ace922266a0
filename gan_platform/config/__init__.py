"""The config: its schema (schema.py), its checks, each rule once (checks.py), composition errors
as one sentence (compose_errors.py) and the pre-flight that runs them all before Hydra creates a run
dir (preflight.py). See docs/experiments.md for the groups and keys."""

from gan_platform.config.checks import validate
from gan_platform.config.schema import register_schema

__all__ = ["validate", "register_schema"]
