"""Hydra config groups. Importing this package registers the structured schema (`config.py`)."""

from gan_platform.config.schema import register_schema

register_schema()
