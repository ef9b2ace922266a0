"""Hydra config groups. Importing this package registers the structured schema (`gan_platform/config/schema.py`)."""

from gan_platform.config.schema import register_schema

register_schema()
