"""The "Segment" dock widget: a model (a ``.scseg`` package or a checkpoint) on an image
layer, in a worker thread with a progress bar and a Cancel button; the result is a Labels
layer named after the model with its class names and colours, and the attention maps (the
sSE map of each decoder block as a hidden Image layer on the scan's grid, the cSE weights
as a small plot).

The scan is handed to :func:`scseg.inference.predict_volume` as a NIfTI file of the
layer's data and world affine, so the labels are those ``scseg predict`` writes for the
file the layer was read from, voxel for voxel. Every error (a package that fails its
checksum, a 2D model on a volume, a file that is not a volume) is one line in napari's
notifications, and adds no layer.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from scseg.napari.layers import placement
from scseg.napari.writer import world_affine


class Cancelled(Exception):
    """Raised in the worker when the user pressed Cancel."""


class _Signals(QObject):
    progress = Signal(float)  # emitted from the worker thread, delivered in the GUI thread


def load_any(path: Path, device: str = "cpu"):
    """A model package (an ensemble of configurations too) or a checkpoint, by what the
    file is."""
    from scseg.inference import load_model
    from scseg.inference.package import is_package, read_package

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if is_package(path):
        return read_package(path, device, ensembles=True)
    return load_model(path, device)


def segment(model_path: Path, data: np.ndarray, affine: np.ndarray, tta: bool = False,
            device: str = "cpu", attention: bool = True, progress=None,
            name: str = "scan"):  # fmt: skip
    """What the widget runs in its worker: ``(model, labels, attention or None)`` for the
    scan ``data`` with world ``affine``. ``progress`` is called with 0..1 (and what it
    raises stops the run); errors about the scan name it by ``name`` (its layer)."""
    import nibabel as nib

    from scseg.inference import predict_volume
    from scseg.inference.ensemble import predict_ensemble_volume

    report = progress or (lambda share: None)
    report(0.0)
    model = load_any(model_path, device)
    report(0.05)
    with tempfile.TemporaryDirectory(prefix="scseg-napari-") as scratch:
        scan = Path(scratch) / "scan.nii"  # uncompressed: no time in gzip
        image = nib.Nifti1Image(np.asarray(data), np.asarray(affine, float))
        image.set_qform(affine, code=1)
        image.set_sform(affine, code=1)
        nib.save(image, scan)
        try:
            members = getattr(model, "members", None)  # an ensemble of configurations
            predict = functools.partial(predict_ensemble_volume if members else predict_volume,
                                        model, scan, tta=tta)  # fmt: skip
            result = predict(progress=lambda share: report(0.05 + 0.8 * share))
            labels = np.asarray(result.labels.dataobj)
            report(0.9)
            maps = None  # an ensemble's members each have their own: none are shown
            if attention and not members and model.hparams.get("attention", "none") != "none":
                from scseg.inference.attention_volume import attention_on_input

                maps = attention_on_input(model, scan)
        except ValueError as err:  # InputError and the like: name the layer, not the copy
            raise type(err)(str(err).replace(str(scan), name)) from None
    report(1.0)
    return model, labels, maps


class SegmentWidget(QWidget):
    """The dock widget (see the module). ``viewer`` is the napari viewer it serves."""

    def __init__(self, viewer, parent=None) -> None:
        super().__init__(parent)
        # Imported here, in the GUI thread: a module imported by the worker holds the
        # interpreter while it executes (half a second for MONAI's transforms), and the
        # viewer would stall.
        import scseg.inference.attention_volume
        import scseg.inference.package  # noqa: F401

        self.viewer = viewer
        self.worker = None
        self._cancel = False
        self.signals = _Signals()
        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText("a .scseg package or a .ckpt checkpoint")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model_path)
        row.addWidget(browse)
        self.image = QComboBox()
        self.tta = QCheckBox("test-time mirroring")
        self.attention = QCheckBox("attention maps")
        self.attention.setChecked(True)
        self.device = QComboBox()
        self.device.addItems(_devices())
        self.run_button, self.cancel_button = QPushButton("Run"), QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.status = QLabel("")
        form = QFormLayout()
        form.addRow("model", row)
        form.addRow("image", self.image)
        form.addRow("device", self.device)
        form.addRow(self.tta)
        form.addRow(self.attention)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch()
        self.signals.progress.connect(lambda share: self.progress.setValue(round(100 * share)))
        viewer.layers.events.inserted.connect(self._refresh)
        viewer.layers.events.removed.connect(self._refresh)
        self._refresh()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model", "", "scseg models (*.scseg *.ckpt)")
        if path:
            self.model_path.setText(path)

    def _refresh(self, event=None) -> None:
        from napari.layers import Image

        current = self.image.currentText()
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        self.image.clear()
        self.image.addItems(names)
        if current in names:
            self.image.setCurrentText(current)

    def run(self) -> None:
        """Starts the prediction in a worker thread (see :func:`segment`)."""
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error

        text = self.model_path.text().strip()
        if not text:
            show_error("choose a model: a .scseg package or a .ckpt checkpoint")
            return
        if self.image.currentText() not in self.viewer.layers:
            show_error("open a scan first: no image layer to segment")
            return
        layer = self.viewer.layers[self.image.currentText()]
        if layer.data.ndim != 3:
            show_error(f"{layer.name}: a volume has 3 axes; this layer has {layer.data.ndim}")
            return
        self._cancel = False
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("segmenting...")
        self.worker = create_worker(
            segment, Path(text), np.asarray(layer.data), world_affine(placement(layer)),
            self.tta.isChecked(), self.device.currentText(), self.attention.isChecked(),
            self._report, layer.name, _start_thread=False, _ignore_errors=True,
        )  # fmt: skip
        self.worker.returned.connect(lambda result: self._add(layer, Path(text), result))
        self.worker.errored.connect(self._failed)
        self.worker.start()

    def cancel(self) -> None:
        """Stops the run at its next step (the worker checks between slabs)."""
        self._cancel = True
        self.status.setText("cancelling...")

    def _report(self, share: float) -> None:
        if self._cancel:
            raise Cancelled
        self.signals.progress.emit(share)

    def _failed(self, err: Exception) -> None:
        from napari.utils.notifications import show_error, show_info

        self._done()
        if isinstance(err, Cancelled):
            show_info("segmentation cancelled")
            self.status.setText("cancelled")
            return
        message = (str(err).strip().splitlines() or [type(err).__name__])[0]
        show_error(message)
        self.status.setText("failed")

    def _done(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _add(self, layer, model_path: Path, result) -> None:
        """Adds the result's layers one per turn of the event loop, so the viewer keeps
        drawing between them (each is a volume the size of the scan)."""
        from qtpy.QtCore import QTimer

        from scseg.napari.layers import attention_layer, cse_plot, labels_layer

        model, labels, maps = result
        # the labels layer is added empty, its data set a turn later: napari's add_layer
        # of a filled label volume takes 0.3-0.4 s in the GUI thread, of an empty one 0.1 s
        added = labels_layer(model, model_path, np.zeros_like(labels), layer)

        def fill() -> None:
            added.data = labels

        steps = [lambda: self.viewer.add_layer(added), fill]
        if maps is not None:
            steps += [lambda k=k: self.viewer.add_layer(attention_layer(maps, k, layer))
                      for k in range(len(maps.sse))]  # fmt: skip
            if maps.cse:
                steps.append(lambda: self.viewer.window.add_dock_widget(
                    cse_plot(maps), name="cSE weights", area="right"))  # fmt: skip
        steps.append(lambda: self.status.setText(f"done: {model_path.name}"))
        steps.append(self._done)

        def next_step() -> None:
            steps.pop(0)()
            if steps:
                QTimer.singleShot(0, next_step)

        next_step()


def _devices() -> list[str]:
    import torch

    return ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
