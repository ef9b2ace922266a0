"""Datasets. Every dataset is sampled through one shape, `base.TensorDataset.sample` (tensors in
memory, or streamed through a reader). `TensorDataset` is imported on first use, so that
`python -m gan_platform.data.pack` starts without loading torch."""

from typing import Any

__all__ = ["TensorDataset"]


def __getattr__(name: str) -> Any:
    if name == "TensorDataset":
        from gan_platform.data.base import TensorDataset

        return TensorDataset
    raise AttributeError(f"module 'gan_platform.data' has no attribute '{name}'")
