"""``scseg view``: a scan in napari with the scseg plugin, segmented when a model is given:
one command for a new user."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    view = sub.add_parser(
        "view", help="open a scan in napari; with --model, segment it and show the attention"
    )
    view.add_argument("scan", type=Path, help="a NIfTI or NRRD file, or a DICOM series' folder")
    view.add_argument("--model", type=Path, help="a .scseg package or .ckpt checkpoint to run")
    view.add_argument("--labels", type=Path, help="a label map to show over the scan")
    view.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for given, what in ((args.scan, "scan"), (args.model, "--model"), (args.labels, "--labels")):
        if given is not None and not given.exists():
            raise FileNotFoundError(f"{given}: {what} not found")
    from scseg.napari.reader import read_layers  # before the viewer exists (scseg.napari)
    from scseg.napari.widget import SegmentWidget

    read_layers(str(args.scan))  # a scan napari cannot show: one line, before a window opens
    import napari

    viewer = napari.Viewer(title=f"scseg: {args.scan.name}")
    viewer.open(str(args.scan), plugin="scseg")
    if args.labels is not None:
        viewer.open(str(args.labels), plugin="scseg")
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment", area="right")
    if args.model is not None:
        widget.model_path.setText(str(args.model))
        widget.run()
    napari.run()
    return 0
