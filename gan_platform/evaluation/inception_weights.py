"""torch-fidelity's Inception weights file for the `inception` extractor (features.py): where it is
looked for, its download, and the check that it loads as the expected network.

The file is looked for at `eval.inception_weights`, then in the torch hub cache; if missing it is
downloaded from torch-fidelity's release (`eval.inception_url`, `eval.inception_download`); a file
that does not load as that network (same keys, same shapes) is refused with one sentence.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from gan_platform.errors import UserError

log = logging.getLogger(__name__)

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


def inception_cache_path() -> Path:
    """Where torch hub keeps downloaded weights: $TORCH_HOME/hub/checkpoints/<file>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def find_inception_weights(path: Optional[str] = None, url: Optional[str] = None, download: bool = True) -> Path:
    """The Inception weights file: `path` if given, else the torch hub cache; downloaded there from
    `url` (torch-fidelity's release by default) when missing; one-sentence UserError when impossible."""
    target = Path(path).expanduser() if path else inception_cache_path()
    if target.is_file():
        return target
    if download:
        if url is None:
            from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3 as url
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(target), progress=False)
            return target
        except Exception as e:  # noqa: BLE001 - offline, 404, permissions: all mean the same to the user
            log.debug("Inception download from %s failed: %s", url, e)
    raise UserError(f"The FID Inception weights are missing and cannot be downloaded: put torch-fidelity's "
                    f"{INCEPTION_FILE} at {target} (or set eval.inception_weights=PATH, or eval.features=digits).")


def load_inception(path: Path) -> nn.Module:
    """torchmetrics' Inception from `path`; a file that does not load as that network (same keys,
    same shapes) is refused with one sentence."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    why = ""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # refuses pickled code
        if not isinstance(state, dict) or not state:
            why = "it holds no state dict"
        else:
            # antialias=False: torch-fidelity's own TF-1 compatible resize, as reference FID numbers use
            return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                      feature_extractor_weights_path=str(path), antialias=False)
    except RuntimeError as e:  # load_state_dict: missing/unexpected keys or size mismatch
        why = "its keys or shapes differ" if "state_dict" in str(e) else "it cannot be read"
    except Exception:  # noqa: BLE001 - unpickling errors, truncated files
        why = "it cannot be read as torch weights"
    raise UserError(f"{path} is not torch-fidelity's Inception network ({why}): replace it with the original "
                    f"{INCEPTION_FILE}, or set eval.features=digits.")
