"""Search spaces derived from a user's own torch model (registered as ``derived``).

``discovery`` finds channel groups with torch-pruning's DepGraph, ``blocks`` finds removable
residual blocks with torch.fx, ``importance`` ranks channels by a registered criterion
(``criteria``; a user adds one with :func:`register_criterion`), ``plan`` turns an
architecture into JSON that replays on the dense model, ``masking`` activates candidates
inside one shared copy (elastic mode), ``space`` ties them into a :class:`SearchSpace`.
"""

from search_spaces.derived.criteria import Criterion, register_criterion
from search_spaces.derived.plan import apply_plan, nonzero_params
from search_spaces.derived.space import DerivedSpace, derive_space

__all__ = [
    "Criterion",
    "DerivedSpace",
    "apply_plan",
    "derive_space",
    "nonzero_params",
    "register_criterion",
]
