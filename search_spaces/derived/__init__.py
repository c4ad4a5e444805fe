"""Search spaces derived from a user's own torch model (registered as ``derived``).

``discovery`` finds channel groups with torch-pruning's DepGraph, ``blocks`` finds removable
residual blocks with torch.fx, ``importance`` ranks channels, ``plan`` turns an architecture
into JSON that replays on the dense model, ``masking`` activates candidates inside one shared
copy (elastic mode), ``space`` ties them into a :class:`SearchSpace`.
"""

from search_spaces.derived.plan import apply_plan, nonzero_params
from search_spaces.derived.space import DerivedSpace, derive_space

__all__ = ["DerivedSpace", "apply_plan", "derive_space", "nonzero_params"]
