"""Screenshots of the napari plugin for the docs and the README, as a user sees it: the
1 mm ICBM T1 opened with the scseg reader, the Segment widget docked and run with a 3D
model, then the same view with one sSE attention layer shown.

    xvfb-run -a -s "-screen 0 1600x1000x24" uv run python docs/napari_screenshot.py MODEL

Writes docs/napari_segment.png (the window with its docks), docs/napari_attention.png (the
canvas) and docs/napari_cse.png (the cSE dock), and prints the layers it added.
"""

from __future__ import annotations

import sys
from pathlib import Path

import scseg.napari  # noqa: F401  (before Qt: see scseg.napari._settle_triton)

DOCS = Path(__file__).resolve().parent


def main(model: str) -> None:
    import napari
    from qtpy.QtCore import QEventLoop, QTimer

    from scseg.data.samples import fetch_sample
    from scseg.napari.widget import SegmentWidget

    scan = (
        fetch_sample("brain_tissue3d", quiet=True)
        / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    )
    viewer = napari.Viewer(title="scseg in napari")
    viewer.window.resize(1500, 900)
    (image,) = viewer.open(str(scan), plugin="scseg")
    image.name = "ICBM 2009a T1"
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment", area="right")
    widget.model_path.setText(model)
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(50)
    poll.timeout.connect(lambda: loop.quit() if widget.run_button.isEnabled() else None)
    widget.run()
    poll.start()
    loop.exec()
    poll.stop()
    viewer.dims.order = (2, 0, 1)  # axial planes: the last two axes are displayed
    viewer.dims.set_point(2, float(image.data_to_world([96, 114, 100])[2]))
    viewer.reset_view()
    labels = next(layer for layer in viewer.layers if layer.name.endswith(" labels"))
    labels.opacity = 0.5
    viewer.window.screenshot(str(DOCS / "napari_segment.png"), canvas_only=False)
    maps = [layer for layer in viewer.layers if layer.name.startswith("sSE block")]
    labels.visible = False
    maps[-1].visible = True  # the last decoder block: the finest map
    viewer.layers.selection.active = maps[-1]
    # the canvas alone: Qt's grab of the window shows a stale, grey frame of a colormap
    # layer just made visible under Xvfb's software OpenGL; the canvas render is exact
    from PIL import Image

    Image.fromarray(viewer.screenshot(canvas_only=True)).save(DOCS / "napari_attention.png")
    viewer.window.dock_widgets["cSE weights"].grab().save(str(DOCS / "napari_cse.png"))
    print("layers:", [layer.name for layer in viewer.layers])
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1])
