"""gan_platform: a Hydra-configured experiment platform for generative adversarial networks."""

__version__ = "0.1.0"
