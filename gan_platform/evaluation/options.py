"""The evaluation options beyond one FID, read from `cfg.eval` in one place for every builder of
the GAN evaluator (the trainer's, evaluation/build.py, and `gan_platform.evaluate`'s).

    fd_inf, fd_inf_points   eval/fd_inf (fd_infinity.py): FD at 15 counts, extrapolated to N -> infinity
    memorization            memorization/authpct, /nn_ratio, /ct (memorization/): does G copy its training images?
    heldout                 real images never trained on (folder, zip or npz): C_T needs them
    ct_cells                k-means cells of C_T
    nn_search               nearest-neighbour back end: auto, torch or faiss
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from gan_platform.errors import ConfigError
from gan_platform.evaluation.fd_infinity import POINTS
from gan_platform.evaluation.memorization import CT_CELLS
from gan_platform.evaluation.memorization.neighbours import BACKENDS


@dataclass(frozen=True)
class BeyondFID:
    """FD at infinity and the memorisation checks: off in training unless asked for (they cost time)."""

    fd_inf: bool = False
    fd_inf_points: int = POINTS
    memorization: bool = False
    heldout: Optional[str] = None
    ct_cells: int = CT_CELLS
    nn_search: str = "auto"

    @classmethod
    def from_config(cls, ev: Any) -> "BeyondFID":
        """The options of `cfg.eval`, checked (one sentence each)."""
        for key in ("fd_inf", "memorization"):
            if not isinstance(ev.get(key, False), bool):
                raise ConfigError(f"eval.{key} must be true or false, got '{ev.get(key)}'.")
        for key, minimum in (("fd_inf_points", 2), ("ct_cells", 1)):
            value = ev.get(key, getattr(cls, key))
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"eval.{key} must be a whole number of at least {minimum}, got {value!r}.")
        if ev.get("nn_search", "auto") not in BACKENDS:
            raise ConfigError(f"eval.nn_search must be one of {', '.join(BACKENDS)}, got '{ev.get('nn_search')}'.")
        heldout = ev.get("heldout")
        return cls(bool(ev.get("fd_inf", False)), int(ev.get("fd_inf_points", POINTS)), bool(ev.get("memorization", False)),
                   str(heldout) if heldout else None, int(ev.get("ct_cells", CT_CELLS)), str(ev.get("nn_search", "auto")))
