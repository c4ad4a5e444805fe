"""What a config sent over HTTP may ask for: only what the server's settings allow."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from nasprune.config import SearchConfig, parse_config
from nasprune.errors import ConfigError
from nasprune.service.checks import check_names
from nasprune.service.settings import ServiceSettings


def checked_config(body: dict[str, Any], settings: ServiceSettings) -> SearchConfig:
    """Validate a posted config and refuse what the service does not allow (ConfigError
    naming the field): unlisted spaces, data entry points and models, a storage URL of its
    own, a checkpoint directory outside the workers' working directory."""
    cfg = parse_config(body, source="config")
    if cfg.storage is not None:
        raise ConfigError(
            "config: storage: the service keeps searches in its own store; leave storage out"
        )
    model = cfg.space.params.get("model")
    if model is not None and (not isinstance(model, str) or model not in settings.models):
        raise ConfigError(
            f"config: space.params.model: {model!r} is not registered on this service "
            "(importing a module is a privilege of the CLI)"
        )
    if cfg.space.name not in settings.spaces:
        raise ConfigError(
            f"config: space.name: {cfg.space.name!r} is not allowed on this service; "
            f"allowed: {', '.join(settings.spaces)}"
        )
    entry = cfg.data.entry_point
    if entry is not None and entry not in settings.data_entry_points:
        raise ConfigError(
            f"config: data.entry_point: {entry!r} is not registered on this service "
            "(importing a module is a privilege of the CLI)"
        )
    _check_relative("supernet.checkpoint_dir", cfg.supernet.checkpoint_dir)
    check_names(body)  # in the service's checking process: this one loads no torch
    return cfg


def _check_relative(field: str, path: str) -> None:
    for flavour in (PurePosixPath(path), PureWindowsPath(path)):
        if flavour.is_absolute() or flavour.anchor or ".." in flavour.parts:
            raise ConfigError(
                f"config: {field}: {path!r} must be a relative path without '..' "
                "(inside the workers' working directory)"
            )
