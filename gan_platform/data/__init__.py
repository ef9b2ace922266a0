"""Datasets. Every dataset is a tensor in memory with a `sample` method (see `base.TensorDataset`)."""

from gan_platform.data.base import TensorDataset

__all__ = ["TensorDataset"]
