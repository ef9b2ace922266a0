"""The tracker interface, the no-op tracker (`tracker=none`) and the wrapper that keeps tracking
from ever breaking training.

The trainer talks to a tracker through `start(config, run_dir, resume_state)`, `log(metrics,
step)`, `log_images(pictures, step, captions)` and `finish(summary)`; `state()` is saved in
checkpoints and handed back as `resume_state`, so a resumed run continues the same tracker run.
Tracking must never break training: `SafeTracker` turns any tracker failure into one warning and
carries on with the local files. A tracker is built from `conf/tracker/*.yaml` by its `_target_`,
called with the run's `accelerator`.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import numpy as np

log = logging.getLogger("gan_platform.tracking")


class Tracker:
    """No tracker (``tracker=none``): the run dir's files are the record."""

    name = "none"

    def __init__(self, accelerator: Any = None, name: str = "none"):
        self.name = name

    def start(self, config: dict[str, Any], run_dir: str, resume_state: Optional[dict] = None) -> None:
        pass

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_images(self, pictures: dict[str, np.ndarray], step: int, captions: Optional[dict[str, str]] = None) -> None:
        pass

    def state(self) -> dict[str, Any]:
        return {}

    def finish(self, summary: dict[str, Any]) -> None:
        pass

    def abandon(self) -> None:
        """Stop using this tracker after a failure, releasing what it holds; never raises."""

    def where(self) -> Optional[str]:
        """Where the run's record went and how to upload it, for the closing line (None: nowhere else)."""
        return None


class SafeTracker(Tracker):
    """Wraps a tracker so that its failures become a warning and tracking stops; training goes on."""

    def __init__(self, inner: Tracker):
        self.inner = inner
        self.name = inner.name
        self.failed: Optional[str] = None

    def _call(self, what: str, *args, **kwargs):
        if self.failed is not None:
            return None
        try:
            return getattr(self.inner, what)(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - tracking must never crash training
            self.failed = f"{type(e).__name__}: {e}"
            log.warning("Tracker '%s' failed in %s (%s); training goes on with the run dir's own files.",
                        self.name, what, self.failed)
            try:
                self.inner.abandon()
            except Exception:  # noqa: BLE001
                pass
            return None

    def start(self, config, run_dir, resume_state=None):
        self._call("start", config, run_dir, resume_state)

    def log(self, metrics, step):
        self._call("log", metrics, step)

    def log_images(self, pictures, step, captions=None):
        self._call("log_images", pictures, step, captions)

    def state(self):
        return self._call("state") or {}

    def finish(self, summary):
        self._call("finish", summary)

    def where(self):
        if self.failed is not None:
            return f"{self.name}: stopped after a failure ({self.failed}); the run dir holds the record"
        return self._call("where")
