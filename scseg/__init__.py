"""scseg: U-Nets with cSE, sSE or scSE recalibration after every decoder block, 2D and 3D."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models"]

if TYPE_CHECKING:
    from scseg.models import create_model, list_models


def __getattr__(name: str):
    # Imported on first use: `import scseg` (and so `scseg --help`) must not pay for torch.
    if name in ("create_model", "list_models"):
        import scseg.models

        return getattr(scseg.models, name)
    raise AttributeError(f"module 'scseg' has no attribute {name!r}")
