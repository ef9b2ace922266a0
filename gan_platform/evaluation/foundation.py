"""Today's feature spaces: DINOv2 (FD-DINOv2) and CLIP, from weights files the user supplies.

Stein et al. 2023 ("Exposing flaws of generative model evaluation metrics and their unfair
treatment of diffusion models") found Inception features blind to much of what people see, and
recommend the Fréchet distance in DINOv2 ViT-L/14's space, which EDM2 now reports beside FID. Both
extractors follow their `dgm-eval` protocol:

- `dinov2`: timm's `vit_large_patch14_dinov2` (Oquab et al. 2023; 304M parameters), images to
  224 x 224 by bicubic resizing, ImageNet mean and std, the final-norm CLS token (1,024-d). The
  pretrained position embeddings (a 37 x 37 grid, for 518 pixels) are resampled to the 16 x 16 grid
  of 224 pixels as DINOv2's own `interpolate_pos_encoding` does it at every forward pass (bicubic,
  scale factor (16 + 0.1) / 37, no antialiasing), once, at load time. Metrics: `eval/fd_dinov2`, `eval/kd_dinov2`.
- `clip`: open_clip's `ViT-L-14` image tower (the DataComp-XL weights, `datacomp_xl_s13b_b90k`,
  dgm-eval's default), images to 224 by bicubic resizing, CLIP's mean and std, the CLS token
  after `ln_post` before the projection (1,024-d, dgm-eval's features). Metrics: `eval/fd_clip`, `eval/kd_clip`.

Images are quantised to uint8 (as saved images would be) and resized with PIL's bicubic filter
(resize.resize_clean), as dgm-eval resizes PIL images. No wheel ships these weights, and nothing
is downloaded: the file is looked for at `eval.dinov2_weights` / `eval.clip_weights`, then in the
torch hub and Hugging Face caches; missing, one sentence names the file and where to put it. A
file that does not load as the network (keys or shapes) is refused; its SHA-256 goes into the
protocol. `eval.dinov2_model_args` / `eval.clip_model_args` change the architecture (tests build
small networks of the same family); the protocol records them, and only the defaults give numbers
that compare with published ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_platform.errors import UserError
from gan_platform.evaluation.features import FeatureExtractor, _needs_images
from gan_platform.evaluation.image_sets import to_uint8
from gan_platform.evaluation.resize import resize_clean
from gan_platform.runs.checkpoint import file_sha256

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
DINOV2_MODEL, CLIP_MODEL, SIDE = "vit_large_patch14_dinov2", "ViT-L-14", 224
DINOV2_POS_OFFSET = 0.1  # DINOv2's interpolate_offset


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache: $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"


@dataclass(frozen=True)
class WeightsFile:
    """Where a network's weights are looked for, and what to tell a user who has none."""

    network: str            # "DINOv2 ViT-L/14"
    key: str                # eval.<key>
    file: str               # the name the usual place expects
    source: str             # where the file comes from
    usual: Callable[[], Path]                    # the place the message names
    caches: Callable[[], list[Path]]             # every place searched, in order

    def find(self, path: Optional[str]) -> Path:
        if path:
            found = Path(path).expanduser()
            if found.is_file():
                return found
            raise UserError(f"eval.{self.key}={path} does not exist: put the {self.network} weights ({self.file}, from "
                            f"{self.source}) there, or point eval.{self.key} at the file.")
        for candidate in self.caches():
            if candidate.is_file():
                return candidate
        raise UserError(f"The {self.network} weights are not on disk and no wheel ships them: put {self.file} (from "
                        f"{self.source}) at {self.usual()}, or set eval.{self.key}=PATH.")


def _snapshots(repo: str, *names: str) -> list[Path]:
    return sorted(p for name in names for p in (hf_hub_cache() / repo / "snapshots").glob(f"*/{name}"))


DINOV2_WEIGHTS = WeightsFile(
    "DINOv2 ViT-L/14", "dinov2_weights", "dinov2_vitl14_pretrain.pth",
    "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
    lambda: Path(torch.hub.get_dir()) / "checkpoints" / "dinov2_vitl14_pretrain.pth",
    lambda: [Path(torch.hub.get_dir()) / "checkpoints" / "dinov2_vitl14_pretrain.pth",
             *_snapshots("models--timm--vit_large_patch14_dinov2.lvd142m", "model.safetensors", "pytorch_model.bin")])
CLIP_WEIGHTS = WeightsFile(
    "CLIP ViT-L/14 (DataComp-XL)", "clip_weights", "open_clip_pytorch_model.bin",
    "https://huggingface.co/laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K",
    lambda: hf_hub_cache() / "models--laion--CLIP-ViT-L-14-DataComp.XL-s13B-b90K" / "snapshots" / "main" / "open_clip_pytorch_model.bin",
    lambda: _snapshots("models--laion--CLIP-ViT-L-14-DataComp.XL-s13B-b90K", "open_clip_pytorch_model.bin",
                       "open_clip_model.safetensors"))


def read_state_dict(path: Path, network: str) -> dict[str, Tensor]:
    """A state dict from .safetensors or torch weights (tensors only), unwrapped and unprefixed."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - TorchScript archives, pickled code, truncated files
        raise UserError(f"{path} cannot be read as {network} weights (a state dict of tensors): replace it with the "
                        "original file.") from None
    for key in ("state_dict", "model"):
        state = state.get(key, state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not state:
        raise UserError(f"{path} holds no state dict: replace it with the original {network} weights file.")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_strict(net: nn.Module, state: dict[str, Tensor], path: Path, network: str) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError:
        raise UserError(f"{path} does not load as {network} (its keys or shapes differ): replace it with the original "
                        "weights file, or match eval.*_model_args to it.") from None


def resample_dinov2_positions(state: dict[str, Tensor], grid: int) -> dict[str, Tensor]:
    """The position embeddings resampled to `grid` x `grid` as DINOv2 does at every forward pass."""
    pos = state.get("pos_embed")
    if pos is None or pos.shape[1] - 1 == grid * grid:
        return state
    side = int(round((pos.shape[1] - 1) ** 0.5))
    patches = pos[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    scale = (grid + DINOV2_POS_OFFSET) / side
    patches = F.interpolate(patches, scale_factor=(scale, scale), mode="bicubic", antialias=False)
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)
    return {**state, "pos_embed": torch.cat([pos[:, :1].float(), patches], dim=1).to(pos.dtype)}


def _require(module: str, package: str, feature: str) -> Any:
    """`module` imported, or one sentence naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"eval.features={feature} needs {package}, which is not installed: "
                        "pip install 'gan_platform[features]' (or pip install " + package + ").") from None


def dinov2_network(model: str = DINOV2_MODEL, args: Optional[dict[str, Any]] = None) -> nn.Module:
    """timm's DINOv2 ViT at 224 pixels, returning the final-norm CLS token (no head)."""
    timm = _require("timm", "timm", "dinov2")

    return timm.create_model(model, pretrained=False, **{"num_classes": 0, "img_size": SIDE, **dict(args or {})})


def clip_network(model: str = CLIP_MODEL, args: Optional[dict[str, Any]] = None) -> nn.Module:
    """open_clip's image tower of `model`, its vision config changed by `args`."""
    open_clip = _require("open_clip", "open_clip_torch", "clip")
    from open_clip.model import _build_vision_tower

    cfg = open_clip.get_model_config(model)
    if cfg is None:
        raise UserError(f"open_clip knows no model '{model}': set eval.clip_model to one of open_clip.list_models().")
    return _build_vision_tower(cfg["embed_dim"], {**cfg["vision_cfg"], **dict(args or {})}, quick_gelu=cfg.get("quick_gelu", False))


class FoundationFeatures(FeatureExtractor):
    """uint8 RGB -> PIL bicubic to the network's side -> normalised -> the network's embedding."""

    def __init__(self, name: str, fd_name: str, net: nn.Module, side: int, mean: tuple, std: tuple, weights: Path,
                 architecture: str, args: dict[str, Any], layer: str):
        super().__init__()
        self.name, self.fd_name, self.kid_name = name, fd_name, "kd" + fd_name[2:]
        self.net, self.side, self.weights = net.eval().requires_grad_(False), int(side), Path(weights)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.num_features = int(self.net(torch.zeros(1, 3, self.side, self.side)).shape[1])
        self.sha256 = file_sha256(self.weights)
        self.architecture, self.args, self.layer = architecture, dict(args), layer

    def features(self, x: Tensor) -> Tensor:
        u8 = to_uint8(x)
        u8 = u8.expand(-1, 3, -1, -1) if u8.shape[1] == 1 else u8[:, :3]
        u8 = resize_clean(u8.contiguous(), self.side)
        return self.net((u8.float() / 255 - self.mean) / self.std)

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "weights_file": str(self.weights), "architecture": self.architecture,
                "architecture_args": self.args, "features_layer": self.layer,
                "resize": f"uint8, PIL bicubic to {self.side} x {self.side} (dgm-eval's protocol)", "resize_mode": "clean"}


def dinov2_features(sample_shape: tuple[int, ...], eval_cfg: Any) -> FeatureExtractor:
    """`dinov2`: DINOv2 ViT-L/14 features from the supplied weights (eval.dinov2_weights or the caches)."""
    _needs_images("dinov2", sample_shape)
    model, args = str(eval_cfg.get("dinov2_model") or DINOV2_MODEL), dict(eval_cfg.get("dinov2_model_args") or {})
    path = DINOV2_WEIGHTS.find(eval_cfg.get("dinov2_weights"))
    net = dinov2_network(model, args)
    state = resample_dinov2_positions(read_state_dict(path, "DINOv2"), net.patch_embed.grid_size[0])
    from timm.models.vision_transformer import checkpoint_filter_fn

    load_strict(net, checkpoint_filter_fn(state, net), path, f"DINOv2 {model}")
    return FoundationFeatures("dinov2", "fd_dinov2", net, net.patch_embed.img_size[0], IMAGENET_MEAN, IMAGENET_STD,
                              path, model, args, "CLS token after the final norm")


def clip_features(sample_shape: tuple[int, ...], eval_cfg: Any) -> FeatureExtractor:
    """`clip`: CLIP ViT-L/14 image features from the supplied weights (eval.clip_weights or the cache)."""
    _needs_images("clip", sample_shape)
    model, args = str(eval_cfg.get("clip_model") or CLIP_MODEL), dict(eval_cfg.get("clip_model_args") or {})
    path = CLIP_WEIGHTS.find(eval_cfg.get("clip_weights"))
    net = clip_network(model, args)
    state = {k.removeprefix("visual."): v for k, v in read_state_dict(path, "CLIP").items() if k.startswith("visual.")}
    load_strict(net, state, path, f"CLIP {model}'s image tower")
    net.proj = None  # dgm-eval's features: before the projection into the text space
    side = net.image_size[0] if isinstance(net.image_size, tuple) else int(net.image_size)
    return FoundationFeatures("clip", "fd_clip", net, side, CLIP_MEAN, CLIP_STD, path, model, args,
                              "CLS token after ln_post, before the projection")
