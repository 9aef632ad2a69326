"""DICOM series in: real series shipped with pydicom, series written from the real samples
in several geometries, and every kind of bad series."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from scseg.io.dicom import SeriesError, find_series, read_series

from ..conftest import SHARED_SAMPLES
from ..dicom_series import keep_locale, rotation, write_series

PYDICOM_SERIES = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests"


def sample_crop(start: tuple[int, int, int] = (74, 90, 100)) -> tuple[np.ndarray, np.ndarray]:
    """A 47 x 55 x 23 crop of the real ICBM T1 template (int16) and its RAS affine.

    Odd sizes: resampled from 1 to 2 mm, an even axis spans a whole number and a half of
    output voxels, which MONAI rounds (``np.round``) to one side or the other on a last-bit
    difference, and NIfTI (float32) and DICOM (decimal strings) store an oblique affine to
    different last bits; the two paths would then resample to different grids."""
    source = SHARED_SAMPLES / "brain_tissue3d" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    if not source.is_file():  # the sample as a user fetches it
        from scseg.data.samples import fetch_sample

        source = fetch_sample("brain_tissue3d", quiet=True) / source.name
    image = nib.load(source)
    x, y, z = start
    data = np.asarray(image.dataobj[x : x + 47, y : y + 55, z : z + 23]).astype(np.int16)
    affine = image.affine.copy()
    affine[:3, 3] = image.affine[:3, :3] @ np.asarray(start) + image.affine[:3, 3]
    return data, affine


def geometries(data: np.ndarray, affine: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The crop as stored (RAS axes), reordered to LPS axes, and oblique (rotated 20 and
    -15 degrees about two axes)."""
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:2, 3] = np.array(data.shape[:2]) - 1
    return {
        "ras": (data, affine),
        "lps": (np.ascontiguousarray(data[::-1, ::-1]), affine @ flip),
        "oblique": (data, rotation(20, 0) @ rotation(-15, 2) @ affine),
    }


def canonical(array: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    return nib.as_closest_canonical(nib.Nifti1Image(array, affine))


def same_volume(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> None:
    """Equal voxels at equal world positions, whatever the axis order of each."""
    x, y = canonical(*a), canonical(*b)
    np.testing.assert_allclose(x.affine, y.affine, atol=1e-4)  # DS strings: 16 characters
    np.testing.assert_array_equal(np.asarray(x.dataobj), np.asarray(y.dataobj))


@pytest.mark.parametrize("geometry", ["ras", "lps", "oblique"])
def test_series_written_from_a_sample_reads_back_in_place(geometry, tmp_path) -> None:
    data, affine = geometries(*sample_crop())[geometry]
    shuffled = np.random.default_rng(0).permutation(data.shape[2])  # files out of order
    write_series(data, affine, tmp_path / "scan", order=shuffled)
    [series] = find_series(tmp_path / "scan")
    assert series.name == "scan" and len(series.files) == data.shape[2]
    volume = read_series(series)
    assert volume.array.dtype == np.float32
    same_volume((volume.array, volume.affine), (data, affine))
    # the datasets come in slice order: dataset k lies at slice k of the affine
    for k, ds in enumerate(volume.datasets):
        lps = np.diag([-1.0, -1.0, 1.0]) @ (volume.affine @ [0, 0, k, 1])[:3]
        np.testing.assert_allclose(np.asarray(ds.ImagePositionPatient, float), lps, atol=1e-4)
        assert "PixelData" not in ds


def test_real_pydicom_series_matches_simpleitk(tmp_path) -> None:
    """pydicom's own CT series (5 slices of 16 x 16, stored in reverse): read as GDCM's
    sorter and ITK's reader read it, in HU."""
    import SimpleITK as sitk

    folder = PYDICOM_SERIES / "98892001" / "CT5N"
    [series] = find_series(folder)
    volume = read_series(series)
    reader = sitk.ImageSeriesReader()
    with keep_locale():
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
        image = reader.Execute()
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0).astype(np.float32)
    lps = np.eye(4)
    lps[:3, :3] = np.reshape(image.GetDirection(), (3, 3)) * image.GetSpacing()
    lps[:3, 3] = image.GetOrigin()
    same_volume((volume.array, volume.affine), (array, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps))
    assert volume.array.min() < -500  # the rescale to HU was applied


def test_folder_of_series_names_each(tmp_path) -> None:
    data, affine = sample_crop()
    write_series(data, affine, tmp_path / "study" / "patient1" / "t1")
    write_series(data, affine, tmp_path / "study" / "patient2", series_number=3)
    write_series(data[..., :10], affine, tmp_path / "study" / "patient2", series_number=4,
                 prefix="B")  # fmt: skip
    (tmp_path / "study" / "notes.txt").write_text("not DICOM")
    found = find_series(tmp_path / "study")
    assert [s.name for s in found] == ["patient1_t1", "patient2_s3", "patient2_s4"]
    assert [len(s.files) for s in found] == [23, 23, 10]
    assert str(found[1]).startswith(f"{tmp_path / 'study' / 'patient2'} (series 3, ")


def _bad_series(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Series folders that are not volumes, with the message each must give."""
    data, affine = sample_crop()
    made = {}
    missing = write_series(data, affine, tmp_path / "missing")
    (missing / "IM0010.dcm").unlink()
    made["missing"] = (missing, "slices not evenly spaced along their normal (spacings 1, 2 mm)")
    mixed = write_series(data, affine, tmp_path / "mixed", series_uid="1.2.3.4.5")
    other = write_series(data[:40, :40], affine, tmp_path / "other", series_uid="1.2.3.4.5")
    shutil.move(other / "IM0003.dcm", mixed / "IM9999.dcm")
    made["mixed"] = (mixed, "slices of different sizes (40x40, 55x47 rows x columns)")
    report = tmp_path / "report"
    report.mkdir()
    shutil.copy(PYDICOM_SERIES.parent / "reportsi.dcm", report)
    made["report"] = (report, "1 of 1 file(s) hold no image (Basic Text SR Storage)")
    one = write_series(data[..., :1], affine, tmp_path / "one")
    made["one"] = (one, "one slice; a volume needs at least two")
    damaged = write_series(data[..., :3], affine, tmp_path / "damaged")
    header = damaged / "IM0001.dcm"
    header.write_bytes(header.read_bytes()[:300])  # cut inside the header
    made["damaged"] = (header, "no SeriesInstanceUID in the header: a damaged or truncated")
    truncated = write_series(data[..., :3], affine, tmp_path / "truncated")
    pixels = truncated / "IM0001.dcm"
    pixels.write_bytes(pixels.read_bytes()[:-1000])  # cut inside the pixel data
    made["truncated"] = (truncated, "cannot read the series' pixel data (")
    return made


def test_bad_series_are_named_with_their_problem(tmp_path) -> None:
    for name, (where, message) in _bad_series(tmp_path).items():
        found = find_series(where if where.is_dir() else where.parent)
        [series] = [s for s in found if where in (s.folder, *s.files[:1])]
        with pytest.raises(SeriesError) as err:
            read_series(series)
        text = str(err.value)
        assert text.startswith(f"{where}: "), (name, text)
        assert message in text, (name, text)
        assert "\n" not in text


@pytest.mark.parametrize(
    "folder, message",
    [
        ("98892003/MR700", "slices in 7 different orientations (a localiser or radial series"),
        ("77654033/CT2", "slices not evenly spaced along their normal (spacings 1.25, 202.5 mm)"),
        ("77654033/CR1", "no patient position/orientation in 1 file(s), e.g. 6154"),
        ("TINY_ALPHA/PT000000/ST000000/SE000000", "50 of 50 file(s) hold no image"),
    ],
)
def test_real_series_that_are_not_volumes(folder, message) -> None:
    """pydicom's test series: a radial MR, a CT with a gap, a radiograph, pixel-less CT."""
    [series] = find_series(PYDICOM_SERIES / folder)
    with pytest.raises(SeriesError, match="^" + str(PYDICOM_SERIES / folder)) as err:
        read_series(series)
    assert message in str(err.value)


def test_dicomdir_index_files_are_not_series() -> None:
    found = find_series(PYDICOM_SERIES / "TINY_ALPHA")
    assert [s.name for s in found] == ["PT000000_ST000000_SE000000"]


def _edit_files(folder: Path, edit) -> None:
    """Rewrites every file of a series, ``edit(dataset, index)`` changing it in place."""
    for i, path in enumerate(sorted(folder.iterdir())):
        ds = pydicom.dcmread(path)
        edit(ds, i)
        ds.save_as(path)


def test_defect6_a_series_without_frame_of_reference_is_read_with_a_warning(tmp_path) -> None:
    """Review defect 6: a series whose Frame of Reference UID an anonymiser dropped was
    refused ("Dataset should exist in the patient coordinate_system"), though its pixels
    and positions are fine; ITK and dcm2niix read it."""
    data, affine = geometries(*sample_crop())["oblique"]
    folder = write_series(data, affine, tmp_path / "anonymised")
    _edit_files(folder, lambda ds, _: delattr(ds, "FrameOfReferenceUID"))
    [series] = find_series(folder)
    with pytest.warns(UserWarning, match=r"no Frame of Reference UID \(0020,0052\)") as caught:
        volume = read_series(series)
    assert str(caught[0].message).startswith(f"{folder}: ")
    same_volume((volume.array, volume.affine), (data, affine))
    uids = {ds.FrameOfReferenceUID for ds in volume.datasets}
    assert len(uids) == 1 and uids == {
        ds.FrameOfReferenceUID for ds in read_series(series).datasets
    }


def test_defect8_gantry_tilt_is_named(tmp_path) -> None:
    """Review defect 8: a gantry-tilted CT (slices evenly spaced along the normal, each
    shifted along the rows) was reported as unevenly spaced, "missing slice?"."""
    data, affine = sample_crop()
    folder = write_series(data, affine, tmp_path / "tilted", modality="CT")

    def tilt(ds, i):  # 12 degrees: each slice 1 mm up shifts tan(12) mm along y (LPS)
        ipp = np.asarray(ds.ImagePositionPatient, float)
        k = int(ds.InstanceNumber) - 1
        ds.ImagePositionPatient = [
            f"{v:.6f}" for v in ipp + np.array([0, k * np.tan(np.radians(12)), 0])
        ]

    _edit_files(folder, tilt)
    [series] = find_series(folder)
    with pytest.raises(SeriesError) as err:
        read_series(series)
    text = str(err.value)
    assert text.startswith(f"{folder}: gantry tilt of 12.0 degrees"), text
    assert "dcm2niix" in text and "missing" not in text
    # a missing slice is still a missing slice, not a tilt
    (folder / "IM0010.dcm").unlink()
    with pytest.raises(SeriesError, match="not evenly spaced"):
        read_series(find_series(folder)[0])
