"""What the NNI adapters share: a quiet import of NNI, and seeded global random state.

NNI, on import, attaches a coloured INFO handler that prints to stdout (and, when it detects
an NNI trial or dispatcher environment, reconfigures the root logger and ``sys.stdout``); its
NAS modules also emit ``RuntimeWarning`` about the installed torch. :func:`import_nni` imports
it with warnings ignored, undoes any change to the root logger and ``sys.stdout``, removes the
stdout handler with NNI's own ``silence_stdout()``, and sets the ``nni`` logger to ERROR, so its
records reach the application's handlers only when something really breaks.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import random
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType

import numpy as np

from .errors import MissingDependencyError

INSTALL_HINT = "NNI strategies need nni: pip install 'nni>=3.0'"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Ignore every warning raised inside the block (NNI's deprecation and torch notices)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def import_nni(*modules: str) -> list[ModuleType]:
    """Import ``nni`` and then ``modules`` silently; raise MissingDependencyError if absent."""
    root = logging.getLogger()
    saved_level, saved_handlers, saved_stdout = root.level, list(root.handlers), sys.stdout
    try:
        with quiet():
            nni = importlib.import_module("nni")
            loaded = [importlib.import_module(name) for name in modules]
    except ImportError as exc:
        raise MissingDependencyError(f"{INSTALL_HINT} ({exc})") from exc
    finally:
        root.setLevel(saved_level)
        root.handlers[:] = saved_handlers
        sys.stdout = saved_stdout
    nni.runtime.log.silence_stdout()
    logging.getLogger("nni").setLevel(logging.ERROR)
    return loaded


def numpy_seed(seed: int) -> int:
    """``seed`` folded into the range numpy generators accept (negative seeds included)."""
    return seed % 2**32


class SeededGlobals:
    """Private states for Python's ``random`` and numpy's global RNG, swapped in per call.

    Some NNI code draws from the global generators (``EvolutionTuner`` uses ``random.shuffle``).
    Inside ``with self.active():`` those generators run from this object's states, seeded from
    the strategy's seed; on exit the caller's global states are put back untouched.
    """

    def __init__(self, seed: int) -> None:
        self._py = random.Random(seed).getstate()
        self._np = np.random.RandomState(numpy_seed(seed)).get_state()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        outer_py, outer_np = random.getstate(), np.random.get_state()
        random.setstate(self._py)
        np.random.set_state(self._np)
        try:
            with quiet():
                yield
        finally:
            self._py, self._np = random.getstate(), np.random.get_state()
            random.setstate(outer_py)
            np.random.set_state(outer_np)
