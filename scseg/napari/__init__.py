"""scseg in napari: a reader and a writer for NIfTI, NRRD and DICOM series that keep each
scan in world millimetres, the bundled samples under ``File > Open Sample``, and a
"Segment" dock widget that runs a model package or checkpoint on an image layer and adds
its labels (named and coloured by the model's classes) and attention maps as layers.

The plugin is declared in ``napari.yaml`` (npe2) and found through the ``napari.manifest``
entry point; ``scseg view SCAN`` opens it in one command.
"""

import contextlib
import sys


def _settle_triton() -> None:
    """Mesa's software OpenGL (llvmpipe, what napari renders with on machines without a
    GPU driver, and under Xvfb) and triton each load their own LLVM: importing triton
    after the viewer's GL context exists kills the process (a segmentation fault), and
    torch imports triton on the way to ``torch._dynamo`` (timm, torchvision). Before any
    Qt application exists, triton is imported now, which is safe; after, it is kept out
    of this process (torch then runs without it: the plugin never compiles)."""
    if "triton" in sys.modules:
        return
    try:
        from qtpy.QtWidgets import QApplication

        running = QApplication.instance() is not None
    except Exception:  # no Qt binding: no GL context either
        running = False
    if running:
        sys.modules["triton"] = None  # type: ignore[assignment]
        return
    with contextlib.suppress(Exception):  # absent or broken: torch copes without it
        import triton  # noqa: F401


_settle_triton()
