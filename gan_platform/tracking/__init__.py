"""Where a run is recorded besides its run dir's own files: trackers (base.py; W&B in wandb.py),
sample pictures (pictures.py) and the HTML dashboards (report/). A leaf: nothing here imports the
training, the tasks or the config."""

from gan_platform.tracking.base import SafeTracker, Tracker

__all__ = ["SafeTracker", "Tracker"]
