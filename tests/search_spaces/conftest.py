"""The `space` fixture: every registered space, so the conformance suite runs on each."""

from __future__ import annotations

from typing import Any

import pytest

from search_spaces import SearchSpace, create_space, list_spaces

# Spaces that cannot be built from defaults alone get these params (zoo is tests/support/zoo.py).
PARAMS: dict[str, dict[str, Any]] = {
    "derived": {"model": "zoo:resnet", "input_shape": [1, 3, 32, 32], "sparsity": [0.5]},
}


@pytest.fixture(params=sorted(list_spaces()))
def space(request: pytest.FixtureRequest) -> SearchSpace:
    """Each registered space (the conformance suite runs on all), with its state loaded."""
    built = create_space(request.param, **PARAMS.get(request.param, {}))
    built.load_state(built.fit_state([], seed=0))
    return built
