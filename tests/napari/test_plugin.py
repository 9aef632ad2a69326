"""The napari plugin, in a real viewer (napari's ``make_napari_viewer`` under Xvfb): layers
in world millimetres, labels written back on the scan's grid, the Segment widget's labels
equal to ``scseg predict``'s, its attention layers, progress, Cancel and bad input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from scseg.cli import main
from scseg.napari.reader import get_reader, read_layers
from scseg.napari.widget import SegmentWidget
from scseg.napari.writer import write_labels

from ..data.test_dicom import sample_crop
from ..dicom_series import write_series


def _oblique_lps(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """``affine`` turned 20 degrees about a tilted axis, x and y negated (LPS), voxels
    made anisotropic: a geometry where any axis mix-up would show."""
    axis = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    a = np.radians(20.0)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    turn = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k
    out = affine.copy()
    out[:3, :3] = np.diag([-1.0, -1.0, 1.0]) @ turn @ affine[:3, :3] @ np.diag([0.9, 1.1, 2.5])
    out[:3, 3] = [12.0, -30.0, 7.5]
    return out


def _world(layer) -> np.ndarray:
    return layer._data_to_world.affine_matrix


def test_reader_places_oblique_lps_nifti_and_anisotropic_nrrd_in_world_mm(
    make_napari_viewer, tmp_path
) -> None:
    import nrrd

    data, affine = sample_crop()
    oblique = _oblique_lps(data, affine)
    nib.save(nib.Nifti1Image(data, oblique), tmp_path / "oblique.nii.gz")
    # NRRD in LPS with anisotropic voxels: its space directions, as RAS for the layer
    directions = np.diag([-0.7, -1.3, 3.0]) @ np.eye(3)
    header = {"space": "left-posterior-superior", "space directions": directions.T,
              "space origin": np.array([5.0, 6.0, -7.0])}  # fmt: skip
    nrrd.write(str(tmp_path / "aniso.nrrd"), data, header)
    expected_nrrd = np.eye(4)
    expected_nrrd[:3, :3] = np.diag([-1.0, -1.0, 1.0]) @ directions
    expected_nrrd[:3, 3] = np.diag([-1.0, -1.0, 1.0]) @ [5.0, 6.0, -7.0]
    viewer = make_napari_viewer()
    for name, expected in (("oblique.nii.gz", oblique), ("aniso.nrrd", expected_nrrd)):
        assert get_reader(str(tmp_path / name)) is not None
        (layer,) = viewer.open(str(tmp_path / name), plugin="scseg")
        np.testing.assert_allclose(_world(layer), expected, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(layer.data), data)
    assert get_reader(str(tmp_path / "nothing.txt")) is None


def test_a_dicom_series_and_its_nifti_line_up(make_napari_viewer, tmp_path) -> None:
    data, affine = sample_crop()
    oblique = _oblique_lps(data, affine)
    write_series(data, oblique, tmp_path / "series")
    nib.save(nib.Nifti1Image(data, oblique), tmp_path / "scan.nii.gz")
    viewer = make_napari_viewer()
    (series,) = viewer.open(str(tmp_path / "series"), plugin="scseg")
    (nifti,) = viewer.open(str(tmp_path / "scan.nii.gz"), plugin="scseg")
    # the same voxel at the same world point, whatever the axis order of each
    for index in ([0, 0, 0], [10, 20, 5], [46, 54, 22]):
        world = nifti.data_to_world(index)
        other = np.round(series.world_to_data(world)).astype(int)
        assert series.data[tuple(other)] == nifti.data[tuple(index)]


def test_labels_written_back_keep_the_scans_geometry(tmp_path) -> None:
    data, affine = sample_crop()
    oblique = _oblique_lps(data, affine)
    nib.save(nib.Nifti1Image(data, oblique), tmp_path / "scan.nii.gz")
    _, kwargs, _ = read_layers(str(tmp_path / "scan.nii.gz"))[0]
    labels = (data > np.percentile(data, 60)).astype(np.int32)
    meta = {"affine": kwargs["affine"], "features": {"class": ["background", "bright"]}}
    written = write_labels(str(tmp_path / "labels.nii.gz"), labels, meta)
    image = nib.load(written[0])
    np.testing.assert_allclose(image.affine, oblique, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(image.dataobj), labels)
    assert (tmp_path / "labels.tsv").read_text() == "index\tname\n0\tbackground\n1\tbright\n"
    # read back: a Labels layer with its class names
    _, back_kwargs, kind = read_layers(written[0])[0]
    assert kind == "labels" and back_kwargs["features"]["class"] == ["background", "bright"]


@pytest.fixture
def scan(data_env, tmp_path):
    """A crop of the real T1 with an oblique LPS affine, as a user would open it."""
    data, affine = sample_crop((60, 70, 40))
    path = tmp_path / "in" / "crop.nii.gz"
    path.parent.mkdir()
    nib.save(nib.Nifti1Image(data, _oblique_lps(data, affine)), path)
    return path


def _run(qtbot, widget, timeout=120_000) -> None:
    """Presses Run and waits until the run is over (Run enabled again)."""
    widget.run()
    assert widget.worker is not None and not widget.run_button.isEnabled()
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=timeout)


def _segment(make_napari_viewer, qtbot, scan, model_path):
    """The scan opened, the widget docked and run with ``model_path``: the viewer, the
    image layer and the progress values the bar took."""
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(scan), plugin="scseg")
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.model_path.setText(str(model_path))
    seen: list[int] = []
    widget.progress.valueChanged.connect(seen.append)
    _run(qtbot, widget)
    return viewer, image, seen


def test_the_widget_segments_as_predict_does(make_napari_viewer, qtbot, ckpt_3d, scan,
                                             tmp_path) -> None:  # fmt: skip
    assert main(["predict", "--quiet", "--checkpoint", str(ckpt_3d), "--input", str(scan),
                 "--output", str(tmp_path / "cli")]) == 0  # fmt: skip
    expected = np.asarray(nib.load(tmp_path / "cli" / "crop.nii.gz").dataobj)
    viewer, image, seen = _segment(make_napari_viewer, qtbot, scan, ckpt_3d)
    labels = viewer.layers["last labels"]
    np.testing.assert_array_equal(np.asarray(labels.data), expected)  # voxel for voxel
    np.testing.assert_allclose(_world(labels), _world(image))
    assert seen[-1] == 100 and len(set(seen)) > 3
    # hovering names the class of the value under the cursor: a grid of cursor positions
    # over the slice shown, each status naming the class of the value it reports
    names = ["background", "grey matter", "white matter"]
    shown = set()
    lo, hi = labels.extent.world
    (a, b), point = viewer.dims.displayed, np.asarray(viewer.dims.point, float)
    for u in np.linspace(lo[a], hi[a], 30):
        for v in np.linspace(lo[b], hi[b], 30):
            point[a], point[b] = u, v
            status = labels.get_status(point, world=True)["coordinates"]
            found = status.split("]: ")[1].split(";")[0]
            if found:
                assert status.endswith(f": {found}; class: {names[int(found)]}"), status
                shown.add(int(found))
    assert shown & {1, 2}
    # one hidden attention layer per decoder block, on the scan's grid
    maps = [layer for layer in viewer.layers if layer.name.startswith("sSE block")]
    assert len(maps) == 3 and not any(m.visible for m in maps)
    for layer in maps:
        assert layer.data.shape == image.data.shape
        np.testing.assert_allclose(_world(layer), _world(image))
        assert float(layer.data.min()) >= 0.0 and float(layer.data.max()) <= 1.0


def test_cancel_stops_the_worker(make_napari_viewer, qtbot, ckpt_3d, scan) -> None:
    viewer = make_napari_viewer()
    viewer.open(str(scan), plugin="scseg")
    widget = SegmentWidget(viewer)
    widget.model_path.setText(str(ckpt_3d))
    widget.cancel()  # pressed before the first slab: the run stops at its first check
    widget._cancel = False
    widget.run()
    widget.cancel()
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=120_000)
    assert widget.status.text() == "cancelled"
    assert [layer.name for layer in viewer.layers] == ["crop"]
    assert widget.run_button.isEnabled()


@pytest.mark.parametrize("bad", ["damaged package", "2D model", "missing model"])
def test_bad_input_is_one_notification_and_no_layer(
    bad, make_napari_viewer, qtbot, ckpt_2d, scan, tmp_path, monkeypatch
) -> None:
    from napari.utils import notifications

    shown: list[str] = []
    monkeypatch.setattr(notifications, "show_error", shown.append)
    if bad == "damaged package":
        assert (
            main(["package", "--checkpoint", str(ckpt_2d), "--out", str(tmp_path / "m.scseg")]) == 0
        )
        raw = bytearray((tmp_path / "m.scseg").read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        (tmp_path / "m.scseg").write_bytes(bytes(raw))
        model = tmp_path / "m.scseg"
    else:
        model = ckpt_2d if bad == "2D model" else tmp_path / "none.scseg"
    viewer = make_napari_viewer()
    viewer.open(str(scan), plugin="scseg")
    widget = SegmentWidget(viewer)
    widget.model_path.setText(str(model))
    _run(qtbot, widget)
    assert len(shown) == 1 and "\n" not in shown[0], shown
    expected = {"damaged package": f"{model}: damaged package",
                "2D model": "crop: the checkpoint is a 2D image model, not a volume model",
                "missing model": f"{model}: no such model file"}[bad]  # fmt: skip
    assert shown[0].startswith(expected), shown
    assert [layer.name for layer in viewer.layers] == ["crop"]


def test_a_file_that_is_not_a_volume_is_one_notification(make_napari_viewer, tmp_path,
                                                         monkeypatch) -> None:  # fmt: skip
    from napari.utils import notifications

    shown: list[str] = []
    monkeypatch.setattr(notifications, "show_error", shown.append)
    bad = tmp_path / "scan.nii.gz"
    bad.write_bytes(b"not a volume")
    viewer = make_napari_viewer()
    viewer.open(str(bad), plugin="scseg")
    assert len(viewer.layers) == 0
    assert len(shown) == 1 and shown[0].startswith(f"{bad}: cannot read volume"), shown


def test_labels_on_a_dicom_series_are_written_as_dicom_seg(make_napari_viewer, tmp_path) -> None:
    import highdicom as hd

    data, affine = sample_crop()
    write_series(data, _oblique_lps(data, affine), tmp_path / "series")
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(tmp_path / "series"), plugin="scseg")
    labels = (np.asarray(image.data) > np.percentile(image.data, 70)).astype(np.int32)
    layer = viewer.add_labels(labels, affine=image.affine.affine_matrix,
                              metadata=image.metadata,
                              features={"class": ["background", "bright"]})  # fmt: skip
    out = tmp_path / "labels.dcm"
    layer.save(str(out), plugin="scseg")
    seg = hd.seg.segread(out)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["bright"]
    from scseg.io.dicom import read_series

    ordered = [ds.SOPInstanceUID for ds in read_series(image.metadata["dicom_series"]).datasets]
    frames = seg.get_pixels_by_source_instance(ordered, combine_segments=True)
    np.testing.assert_array_equal(frames.transpose(2, 1, 0), labels)


def test_scseg_view_opens_segments_and_docks_the_widget(qtbot, ckpt_3d, scan, monkeypatch,
                                                        capsys) -> None:  # fmt: skip
    import napari

    def wait_for_labels() -> None:  # instead of the blocking event loop
        widget = napari.current_viewer().window.dock_widgets["Segment"]
        qtbot.waitUntil(lambda: widget.status.text().startswith("done")
                        and widget.run_button.isEnabled(), timeout=120_000)  # fmt: skip

    monkeypatch.setattr(napari, "run", wait_for_labels)
    assert main(["view", str(scan), "--model", str(ckpt_3d)]) == 0
    viewer = napari.current_viewer()
    try:
        names = [layer.name for layer in viewer.layers]
        assert names[:2] == ["crop", "last labels"] and "Segment" in viewer.window.dock_widgets
    finally:
        viewer.close()
    assert main(["view", str(scan.parent / "missing.nii.gz")]) == 1
    assert capsys.readouterr().err.strip().endswith("missing.nii.gz: scan not found")


def test_the_samples_open_in_place(make_napari_viewer, data_env) -> None:
    """File > Open Sample > scseg: the T1 with the tissue labels of its superior part, in
    place on it (both in world mm), and the NRRD tumour volume with its label."""
    viewer = make_napari_viewer()
    layers = viewer.open_sample("scseg", "brain_tissue")
    image, labels = layers
    assert labels.features["class"].tolist() == ["background", "grey matter", "white matter"]
    # the label volume is the superior part of the same 1 mm grid: one translation apart
    np.testing.assert_allclose(_world(labels)[:3, :3], _world(image)[:3, :3])
    offset = np.linalg.solve(_world(image)[:3, :3], _world(labels)[:3, 3] - _world(image)[:3, 3])
    assert np.allclose(offset, np.round(offset)) and offset[2] > 0
    k = round(offset[2])
    brain = np.asarray(image.data)[:, :, k : k + labels.data.shape[2]]
    assert brain[np.asarray(labels.data) == 2].mean() > brain[np.asarray(labels.data) == 0].mean()
    tumour = viewer.open_sample("scseg", "tumour")
    assert [layer.name for layer in tumour] == ["brain1_image", "tumour (reference)"]
    np.testing.assert_allclose(_world(tumour[0]), _world(tumour[1]), atol=1e-5)


def test_the_widget_segments_with_an_ensemble_package(
    make_napari_viewer, qtbot, ckpt_3d, other_3d, scan, tmp_path
) -> None:
    """An ensemble of configurations (what scseg cross-validate may pack) segments in the
    widget as scseg predict --model does it; its members' attention is not shown."""
    from scseg.inference.package import write_ensemble_package

    package = write_ensemble_package({"a": [ckpt_3d], "b": [other_3d]}, tmp_path / "ab.scseg")
    assert main(["predict", "--quiet", "--model", str(package), "--input", str(scan),
                 "--output", str(tmp_path / "cli")]) == 0  # fmt: skip
    expected = np.asarray(nib.load(tmp_path / "cli" / "crop.nii.gz").dataobj)
    viewer, _, seen = _segment(make_napari_viewer, qtbot, scan, package)
    np.testing.assert_array_equal(np.asarray(viewer.layers["ab labels"].data), expected)
    assert seen[-1] == 100 and len(set(seen)) > 3
    assert not [layer for layer in viewer.layers if layer.name.startswith("sSE block")]
