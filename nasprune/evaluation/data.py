"""Data for supernet training and evaluation: bundled digits, synthetic clusters, or the user's.

Nothing downloads: ``digits`` is scikit-learn's bundled ``load_digits`` (1,797 8x8 images) with
a fixed seeded 60/20/20 train/val/test split; ``synthetic`` draws Gaussian clusters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from nasprune.config import DataConfig
from nasprune.errors import ConfigError

SPLIT_SEED = 0  # the digits split never changes, so every search sees the same validation set


@dataclass
class Loaders:
    """Train, validation and (optional) test loaders; ``train`` is shuffled by a seeded
    generator. The search selects on ``val``; ``test`` is held out and only reported."""

    train: DataLoader[Any]
    val: DataLoader[Any]
    test: DataLoader[Any] | None = None


def _split(x: torch.Tensor, y: torch.Tensor) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_train, n_val = int(0.6 * len(y)), int(0.2 * len(y))
    parts = order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
    train, val, test = (TensorDataset(x[p], y[p]) for p in parts)
    return train, val, test


def digits(input_shape: tuple[int, ...]) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    """scikit-learn's bundled digits, scaled to [0, 1] and shaped for the space."""
    from sklearn.datasets import load_digits

    features, labels = load_digits(return_X_y=True)
    if math.prod(input_shape) != features.shape[1]:
        raise ConfigError(
            f"digits samples have 64 features, the space expects input shape {input_shape}"
        )
    x = torch.tensor(features / 16.0, dtype=torch.float32).reshape(-1, *input_shape)
    return _split(x, torch.tensor(labels, dtype=torch.long))


def synthetic(
    input_shape: tuple[int, ...],
    num_classes: int,
    num_samples: int = 2000,
    noise: float = 1.0,
    seed: int = 0,
) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    """Gaussian clusters, one per class, around seeded random centres."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, *input_shape, generator=gen)
    labels = torch.randint(num_classes, (num_samples,), generator=gen)
    x = centres[labels] + noise * torch.randn(num_samples, *input_shape, generator=gen)
    return _split(x, labels)


def _user_data(entry_point: str, params: dict[str, Any]) -> tuple[Any, Any, Any]:
    from search_spaces import SpaceError
    from search_spaces.derived.loading import import_object

    try:
        obj = import_object(entry_point, "data entry point")
    except SpaceError as exc:
        raise ConfigError(str(exc)) from None
    try:
        result = obj(**params)
    except TypeError as exc:
        raise ConfigError(f"data entry point {entry_point!r}: {exc}") from None
    if not (isinstance(result, tuple | list) and len(result) in (2, 3)):
        raise ConfigError(f"data entry point {entry_point!r} must return (train, val[, test])")
    return result[0], result[1], result[2] if len(result) == 3 else None


def _loader(data: Any, batch_size: int, shuffle: bool, seed: int) -> DataLoader[Any]:
    if isinstance(data, DataLoader):
        return data
    if not isinstance(data, Dataset):
        raise ConfigError(f"expected a Dataset or DataLoader, got {type(data).__name__}")
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=gen)


def _empty(data: Any) -> bool:
    """Whether a dataset (or a loader's) has no sample; one without a length is not judged."""
    data = data.dataset if isinstance(data, DataLoader) else data
    try:
        return len(data) == 0
    except TypeError:
        return False


def make_loaders(
    config: DataConfig, input_shape: tuple[int, ...], num_classes: int, seed: int
) -> Loaders:
    """Build the train and validation loaders that a config names."""
    test: Any
    if config.entry_point is not None:
        train, val, test = _user_data(config.entry_point, config.params)
    elif config.builtin == "digits":
        if config.params:
            raise ConfigError(f"data: builtin digits takes no params, got {sorted(config.params)}")
        train, val, test = digits(input_shape)
    else:
        try:
            train, val, test = synthetic(input_shape, num_classes, **config.params)
        except TypeError as exc:
            raise ConfigError(f"data: bad synthetic params: {exc}") from None
    for split, data in (("training", train), ("validation", val)):
        if _empty(data):
            raise ConfigError(f"the data's {split} split is empty")
    return Loaders(
        train=_loader(train, config.batch_size, shuffle=True, seed=seed),
        val=_loader(val, config.batch_size, shuffle=False, seed=seed),
        test=None if test is None else _loader(test, config.batch_size, shuffle=False, seed=seed),
    )
