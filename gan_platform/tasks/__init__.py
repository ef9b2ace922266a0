"""What one training step means. A task owns its networks and optimizers and exposes a small
interface to the trainer (see `Task`); a new GAN variant is a loss and a config file, not a loop."""

from gan_platform.tasks.base import Task

__all__ = ["Task"]
