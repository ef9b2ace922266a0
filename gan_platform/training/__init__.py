"""The training loop (trainer.py) and its parts: what a checkpoint holds of the training (state.py),
the logged losses (loss_window.py), NaN/inf checks (divergence.py), Ctrl-C and SIGTERM
(stopping.py), early stopping, sample grids, config sections as plain dicts (settings.py) and
several processes (distributed.py). The trainer knows only the task's small interface
(tasks/base.py)."""
