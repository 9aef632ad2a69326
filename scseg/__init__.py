"""scseg: U-Nets with cSE, sSE or scSE recalibration after every decoder block, 2D and 3D."""

from scseg.models import create_model, list_models

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models"]
