"""The `space` fixture: every registered space, so the conformance suite runs on each."""

from __future__ import annotations

import pytest

from search_spaces import SearchSpace, create_space, list_spaces


@pytest.fixture(params=sorted(list_spaces()))
def space(request: pytest.FixtureRequest) -> SearchSpace:
    """Each registered space with its default parameters (the conformance suite runs on all)."""
    return create_space(request.param)
