"""Importance criteria: which channels of a group matter most, by name.

Each criterion is a small :class:`Criterion` class registered with :func:`register_criterion`
(its docstring is the contract); a derived space names one as ``importance: {criterion: ...}``.
Those that ship with nasprune register when this package is imported:

* ``random``   seeded random scores, the baseline every criterion must beat (:mod:`.baseline`);
* ``l1``, ``l2`` group magnitude, ``bn_scale`` the norm layers' scales (:mod:`.magnitude`),
  both torch-pruning importance classes applied to whole dependency groups (:mod:`.grouped`);
* ``taylor``   first-order Taylor, |gradient x weight| over training batches (:mod:`.taylor`);
* ``snip``     SNIP's connection sensitivity, |weight x gradient| summed over the connections
  each channel takes away, Lee et al. (:mod:`.snip`);
* ``synflow``  iterative synaptic flow, data-free, Tanaka et al. (:mod:`.synflow`);
* ``synaptic_strength`` |norm scale| x kernel norm of each connection a channel feeds, Lin et
  al. (:mod:`.synaptic_strength`);
* ``l0``       learnt hard-concrete gates' open probabilities, Louizos et al. (:mod:`.l0`);
* ``nni.l1``, ``nni.taylor`` NNI 3.0's L1NormPruner and TaylorPruner, their masks' order; NNI
  loads only when one of them scores (:mod:`.nni_pruners`).

>>> from search_spaces.derived.criteria import Criterion, register_criterion
>>> @register_criterion
... class Ones(Criterion):
...     name = "mine.ones"
...     def __call__(self, model, input_shape, groups, batches, seed):
...         return {g.name: [1.0] * g.channels for g in groups}, []
>>> CRITERIA.pop("mine.ones") is Ones
True
"""

from search_spaces.derived.criteria import (  # noqa: F401
    baseline,
    l0,
    magnitude,
    nni_pruners,
    snip,
    synaptic_strength,
    synflow,
    taylor,
)
from search_spaces.derived.criteria.base import (
    CRITERIA,
    Criterion,
    check_criterion,
    register_criterion,
)

__all__ = ["CRITERIA", "Criterion", "check_criterion", "register_criterion"]
