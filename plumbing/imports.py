"""Optional libraries imported where they are used, with the line that says how to get them."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, needed_by: str, install: str, error: type[Exception]) -> ModuleType:
    """``module``, imported; if it is missing, ``error`` with one line: "``needed_by`` needs
    it: pip install ``install``" (the import error is chained to it)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise error(f"{needed_by}: pip install {install}") from exc
