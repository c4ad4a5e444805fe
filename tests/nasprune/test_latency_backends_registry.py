"""The latency backends' registry: a backend a user registers is found by name and built from
a config naming it; a name taken by another backend is refused, naming the holder; an unknown
name lists the known ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from torch import nn

from nasprune.config import LatencyConfig, parse_config
from nasprune.errors import ConfigError
from nasprune.latency import BACKENDS, LatencyBackend, create_backend, register_backend
from nasprune.latency.torch_eager import TorchBackend


@pytest.fixture
def user_backend() -> Iterator[type[LatencyBackend]]:
    """A backend registered from user code (eager torch under another name), removed after."""

    @register_backend
    class Recorded(TorchBackend):
        name = "test.recorded"

        def fingerprint(self) -> str:
            return "test:recorded"

    yield Recorded
    BACKENDS.pop("test.recorded")


def test_a_registered_backend_is_found_by_name(user_backend: type[LatencyBackend]) -> None:
    assert "test.recorded" in BACKENDS
    assert "test.recorded" in BACKENDS.names()
    assert BACKENDS.get("test.recorded") is user_backend


def test_a_config_naming_a_registered_backend_creates_it(
    user_backend: type[LatencyBackend], tmp_path: Path, make_config
) -> None:
    latency = {"backend": "test.recorded", "threads": 1, "warmup": 1, "repeats": 3}
    config = parse_config(make_config(tmp_path, latency=latency))
    backend = create_backend(config.latency)
    assert type(backend) is user_backend and backend.fingerprint() == "test:recorded"
    assert backend.measure(nn.Linear(4, 2), (4,)).median_ms > 0


def test_the_same_backend_registered_again_changes_nothing(
    user_backend: type[LatencyBackend],
) -> None:
    assert register_backend(user_backend) is user_backend
    assert register_backend(TorchBackend) is TorchBackend
    assert BACKENDS.get("torch") is TorchBackend


def test_another_backend_under_a_taken_name_is_refused_naming_the_holder() -> None:
    class Impostor(TorchBackend):
        name = "torch"

    with pytest.raises(ConfigError) as info:
        register_backend(Impostor)
    assert str(info.value) == (
        "latency backend 'torch' is already registered "
        "(by nasprune.latency.torch_eager.TorchBackend)"
    )
    assert BACKENDS.get("torch") is TorchBackend


def test_a_backend_without_a_name_is_refused() -> None:
    class Nameless(TorchBackend):
        name = ""

    with pytest.raises(ConfigError, match="Nameless needs a class attribute `name`"):
        register_backend(Nameless)


def test_an_unknown_backend_lists_the_known_ones_in_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        create_backend(LatencyConfig(backend="tvm"))
    assert str(info.value) == (
        "unknown latency backend 'tvm'; known: onnxruntime, tensorrt, torch, torchscript"
    )
