"""Package faces whose names load on first use (PEP 562): reading a sample's names or
``scseg --help`` imports neither torch nor MONAI."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_getattr(package: str, homes: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports each name of ``homes``
    (``{name: module}``) from its module when it is first asked for."""

    def __getattr__(name: str):
        if name in homes:
            return getattr(importlib.import_module(homes[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
