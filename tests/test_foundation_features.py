"""FD-DINOv2 and CLIP features (`eval.features=dinov2 | clip`) from weights files the user supplies:
the real architectures have the papers' sizes; small networks of the same families, randomly
initialised and saved to files here, carry the path end to end (evaluate and training); missing or
wrong files are one sentence; FD-DINOv2 is never reported from other features."""

import hashlib
import json

import numpy as np
import pytest
import torch

pytest.importorskip("timm", reason="the features extra (pip install -e '.[features]'; scripts/test installs it)")
pytest.importorskip("open_clip", reason="the features extra (pip install -e '.[features]'; scripts/test installs it)")

from helpers import TINY, train  # noqa: E402
from helpers.evaluation import evaluate  # noqa: E402
from gan_platform.errors import ConfigError, UserError  # noqa: E402
from gan_platform.evaluation.foundation import (clip_features, clip_network, dinov2_features, dinov2_network,
                                                resample_dinov2_positions)  # noqa: E402
from gan_platform.evaluation.image_sets import export_images  # noqa: E402

SMALL_DINO = {"depth": 1, "embed_dim": 32, "num_heads": 2}
SMALL_CLIP = {"layers": 1, "width": 64, "head_width": 32}


def _dino_file(path, img_size=224, meta_layout=False):
    torch.manual_seed(0)  # layer scale 1 (DINOv2's init: 1e-5): features of random weights that depend on the image
    state = dinov2_network(args={**SMALL_DINO, "img_size": img_size, "init_values": 1.0}).state_dict()
    if meta_layout:  # DINOv2's own checkpoint: a mask token beside the network
        state["mask_token"] = torch.zeros(1, SMALL_DINO["embed_dim"])
    torch.save(state, path)
    return path


def _clip_file(path):
    torch.manual_seed(0)
    visual = clip_network(args=SMALL_CLIP).state_dict()
    torch.save({**{f"visual.{k}": v for k, v in visual.items()}, "token_embedding.weight": torch.zeros(8, 4)}, path)
    return path


def _count(net):
    return sum(p.numel() for p in net.parameters())


def test_the_real_architectures_are_the_papers_vit_l_14():
    """DINOv2 ViT-L/14 (Oquab et al. 2023, table 1: 300M) and CLIP ViT-L/14's image tower (Radford
    et al. 2021: 24 layers of width 1,024, patch 14), built without memory on the meta device."""
    with torch.device("meta"):
        dino, clip = dinov2_network(), clip_network()
    assert _count(dino) == pytest.approx(304e6, rel=0.01) and (dino.embed_dim, len(dino.blocks)) == (1024, 24)
    assert dino.patch_embed.patch_size == (14, 14) and dino.patch_embed.grid_size == (16, 16)  # 224 pixels
    assert _count(clip) == pytest.approx(304e6, rel=0.01) and clip.proj.shape == (1024, 768)
    assert (clip.transformer.width, clip.transformer.layers, clip.image_size) == (1024, 24, (224, 224))


def _keys_cubic(source: torch.Tensor, size: int, a: float = -0.75) -> torch.Tensor:
    """(len(source), size) weights of cubic convolution (Keys 1981, a = -0.75 as torch's bicubic) at
    real-valued source coordinates, indices clamped to the grid: written out here, independently."""
    def k(x):
        x = x.abs()
        return torch.where(x <= 1, (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1,
                           torch.where(x < 2, a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a, torch.zeros_like(x)))
    weights = torch.zeros(len(source), size, dtype=torch.float64)
    base = source.floor()
    for offset in (-1, 0, 1, 2):
        taps = base + offset
        weights[torch.arange(len(source)), taps.clamp(0, size - 1).long()] += k(source - taps)
    return weights


def test_dinov2s_own_layout_loads_with_positions_resampled_as_dinov2_does(tmp_path):
    """A 37 x 37 grid (518 pixels) to 16 x 16 as DINOv2's interpolate_pos_encoding does it: bicubic at
    scale (16 + 0.1) / 37, so output cell u reads the input at (u + 0.5) 37 / 16.1 - 0.5."""
    table = torch.randn(37, 37, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pos = torch.cat([torch.full((1, 1), 7.0, dtype=torch.float64), table.reshape(1, -1)], 1)[..., None]
    out = resample_dinov2_positions({"pos_embed": pos.float()}, 16)["pos_embed"]
    assert out.shape == (1, 257, 1) and out[0, 0, 0] == 7.0
    w = _keys_cubic((torch.arange(16, dtype=torch.float64) + 0.5) * 37 / 16.1 - 0.5, 37)
    assert torch.allclose(out[0, 1:, 0].double().reshape(16, 16), w @ table @ w.T, atol=1e-5)
    plain = _keys_cubic((torch.arange(16, dtype=torch.float64) + 0.5) * 37 / 16 - 0.5, 37)  # without DINOv2's offset
    assert not torch.allclose(out[0, 1:, 0].double().reshape(16, 16), plain @ table @ plain.T, atol=1e-2)
    extractor = dinov2_features((1, 16, 16), {"dinov2_weights": str(_dino_file(tmp_path / "meta.pth", 518, True)),
                                              "dinov2_model_args": SMALL_DINO})
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    assert extractor(x).shape == (3, 32) and torch.equal(extractor(x), extractor(x.expand(-1, 3, -1, -1)))


def test_missing_and_wrong_weights_are_one_sentence_and_the_caches_are_searched(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    hub, hf = tmp_path / "torch" / "hub" / "checkpoints", tmp_path / "hf" / "hub"
    for build, file, place in ((dinov2_features, "dinov2_vitl14_pretrain.pth", hub), (clip_features, "open_clip_pytorch_model.bin", hf)):
        with pytest.raises(UserError) as e:
            build((3, 16, 16), {})
        msg = str(e.value)
        assert file in msg and str(place) in msg and "_weights=PATH" in msg and msg.count(". ") == 0
    hub.mkdir(parents=True)
    _dino_file(hub / "dinov2_vitl14_pretrain.pth")
    assert dinov2_features((1, 8, 8), {"dinov2_model_args": SMALL_DINO}).weights == hub / "dinov2_vitl14_pretrain.pth"
    snapshot = hf / "models--laion--CLIP-ViT-L-14-DataComp.XL-s13B-b90K" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    _clip_file(snapshot / "open_clip_pytorch_model.bin")
    assert clip_features((1, 8, 8), {"clip_model_args": SMALL_CLIP}).weights == snapshot / "open_clip_pytorch_model.bin"
    (tmp_path / "junk.pth").write_bytes(b"not weights")
    for weights, phrase in ((snapshot / "open_clip_pytorch_model.bin", "does not load as DINOv2"), (tmp_path / "junk.pth", "cannot be read")):
        with pytest.raises(UserError, match=phrase):
            dinov2_features((1, 8, 8), {"dinov2_weights": str(weights), "dinov2_model_args": SMALL_DINO})
    with pytest.raises(ConfigError, match="needs images"):
        dinov2_features((2,), {})


@pytest.mark.parametrize("features", ["dinov2", "clip"])
def test_fd_from_a_supplied_weights_file_end_to_end(digit_run, tmp_path, features):  # noqa: F811
    """evaluate: eval/fd_<features> and eval/kd_<features>, never eval/fid; the file's SHA-256 in the
    protocol; the real digits scored as images against themselves at distance 0."""
    weights = _dino_file(tmp_path / "w.pth") if features == "dinov2" else _clip_file(tmp_path / "w.bin")
    args = SMALL_DINO if features == "dinov2" else SMALL_CLIP
    common = [f"eval.features={features}", f"eval.{features}_weights={weights}",
              f"eval.{features}_model_args={json.dumps(args)}", "--num-real", 200, "--metrics", "fid,kid,prdc"]
    evaluate([digit_run, "--num-samples", 60, "--name", f"g_{features}", *common])
    from gan_platform.data.digits import load_digit_images
    from gan_platform.data.base import TensorDataset

    real = TensorDataset("digits", load_digit_images(16)[0]).all(200)[0]  # the seeded subset the statistics use
    export_images(((real + 1) * 127.5).round().byte(), None, {}, tmp_path / "real.npz")
    evaluate([digit_run, "--fake", tmp_path / "real.npz", "--name", f"r_{features}", *common])
    made, itself = (json.loads((digit_run / f"eval_{n}_{features}.json").read_text()) for n in ("g", "r"))
    fd = f"eval/fd_{features}"
    assert set(made["metrics"]) >= {fd, f"eval/kd_{features}", "eval/precision"} and "eval/fid" not in made["metrics"]
    assert made["metrics"][fd]["mean"] > 1e-3 and itself["metrics"][fd]["mean"] == pytest.approx(0.0, abs=1e-6)
    p = made["protocol"]
    assert p["extractor"] == features and p["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert p["architecture_args"] == args and p["num_features"] == (32 if features == "dinov2" else 64)


def test_training_reports_fd_dinov2_and_keeps_its_best_by_it(tmp_path):
    """The trainer's builder sees the same options: eval/fd_dinov2 in the run's numbers, best by it."""
    weights = _dino_file(tmp_path / "w.pth")
    summary = train(tmp_path / "run", [*TINY, "+experiment=none", "dataset=digits", "model=dcgan", "model.generator.width=8",
                                       "model.discriminator.width=8", "trainer.steps=2", "trainer.sample_every=0",
                                       "eval.num_samples=20", "eval.num_real=50", "eval.features=dinov2",
                                       f"eval.dinov2_weights={weights}", "eval.dinov2_model_args={depth:1,embed_dim:32,num_heads:2}"])
    assert "eval/fd_dinov2" in summary["final"] and not [k for k in summary["final"] if "fid" in k]
    assert summary["protocol"]["extractor"] == "dinov2" and np.isfinite(summary["final"]["eval/fd_dinov2"])
    best = json.loads((tmp_path / "run" / "summary.json").read_text())["best"]
    assert best["eval/fd_dinov2"] == summary["final"]["eval/fd_dinov2"] and "eval/fid" not in best


def test_a_cyclegan_refuses_features_whose_distance_it_would_misname():
    from accelerate import Accelerator
    from hydra.utils import instantiate

    from helpers import compose
    from gan_platform.evaluation.cyclegan_metrics import CycleGANEvaluator

    cfg = compose(["+experiment=cyclegan", "eval.features=dinov2"])
    with pytest.raises(ConfigError, match="eval.features=dinov2 measures GAN runs"):
        CycleGANEvaluator.from_config(cfg, instantiate(cfg.dataset), Accelerator(cpu=True))
