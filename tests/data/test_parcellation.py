"""The whole-brain parcellation sample: atlases resampled onto real templates whatever
their storage orientation, label values remapped through the CSV, the split by template."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from scseg.data import samples

ATLAS_ORIENTATIONS = {  # as stored in the wheel
    "neuromorphometrics": ("L", "A", "S"),
    "desikan_killiany": ("L", "I", "A"),
    "aal": ("L", "A", "S"),
}


def _raw(data_env):
    return samples.fetch_sample("brain_parcellation3d", quiet=True)


@pytest.mark.parametrize("atlas", samples.ATLASES)
def test_atlas_lands_in_the_brain_on_both_templates(data_env, atlas) -> None:
    raw = _raw(data_env)
    image = nib.load(raw / f"atlas_{atlas}.nii.gz")
    assert nib.aff2axcodes(image.affine) == ATLAS_ORIENTATIONS[atlas]
    names = samples.read_atlas_names(raw / f"labels_{atlas}.csv")
    names.pop(0, None)
    values = sorted(names)
    for case, file in samples.PARCELLATION_CASES.items():
        template = nib.load(raw / file)
        brain = np.asarray(template.dataobj) > 0
        labels = samples.parcellation_labels(image, template, values)
        assert labels.shape == template.shape
        # Masking keeps nearly all of the atlas: it was in the brain before masking.
        unmasked = samples.parcellation_labels(image, nib.Nifti1Image(
            np.ones(template.shape, np.uint8), template.affine), values)  # fmt: skip
        inside = (unmasked[brain] > 0).sum() / (unmasked > 0).sum()
        assert inside > 0.94, (case, inside)
        assert not labels[~brain].any()
        # Sides: every Left_ structure lies left of the midline in world space (x < 0 in
        # RAS), every Right_ one right of it, on templates stored LAS and RAS alike.
        ijk = np.argwhere(labels > 0)
        x = (nib.affines.apply_affine(template.affine, ijk))[:, 0]
        classes = labels[tuple(ijk.T)]
        for k, value in enumerate(values, start=1):
            name = names[value].lower()
            side = np.median(x[classes == k]) if (classes == k).any() else 0.0
            if name.startswith(("left", "lh-", "ctx-lh")) or name.endswith("_l"):
                assert side < 0, (case, names[value], side)
            elif name.startswith(("right", "rh-", "ctx-rh")) or name.endswith("_r"):
                assert side > 0, (case, names[value], side)


@pytest.mark.parametrize("axcodes", [("R", "A", "S"), ("L", "I", "A"), ("L", "A", "S")])
def test_resampling_does_not_depend_on_storage_orientation(data_env, axcodes) -> None:
    raw = _raw(data_env)
    atlas = nib.load(raw / "atlas_neuromorphometrics.nii.gz")
    template = nib.load(raw / samples.PARCELLATION_CASES["icbm2009c_asym"])
    values = sorted(samples.read_atlas_names(raw / "labels_neuromorphometrics.csv"))
    reference = samples.parcellation_labels(atlas, template, values)
    current = nib.io_orientation(atlas.affine)
    wanted = nib.orientations.axcodes2ornt(axcodes)
    restored = atlas.as_reoriented(nib.orientations.ornt_transform(current, wanted))
    assert nib.aff2axcodes(restored.affine) == axcodes
    np.testing.assert_array_equal(samples.parcellation_labels(restored, template, values),
                                  reference)  # fmt: skip


def test_label_values_become_contiguous_classes() -> None:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    values = np.array([[[0, 4, 11], [2001, 7, 4]]], np.uint16)  # 7 is not in the table
    atlas = nib.Nifti1Image(values, affine)
    template = nib.Nifti1Image(np.ones(values.shape, np.int16), affine)
    labels = samples.parcellation_labels(atlas, template, [4, 11, 2001])
    np.testing.assert_array_equal(labels, [[[0, 1, 2], [3, 0, 1]]])
    assert labels.dtype == np.uint8


def test_prepared_dataset(data_env) -> None:
    root = samples.prepare_sample("brain_parcellation3d", atlas="desikan_killiany")
    assert root == samples.dataset_dir("brain_parcellation3d", atlas="desikan_killiany")
    meta = json.loads((root / "dataset.json").read_text())
    labels = meta["labels"]
    assert len(labels) == 113 and labels["0"] == "background"  # 112 structures + background
    assert "Unknown" not in labels.values()
    split = json.loads((root / "split.json").read_text())
    assert split == {"train": ["fsl_mni152"], "val": ["icbm2009c_asym"]}
    raw = _raw(data_env)
    for case, file in samples.PARCELLATION_CASES.items():
        image = nib.load(root / "imagesTr" / f"{case}.nii.gz")
        label = nib.load(root / "labelsTr" / f"{case}.nii.gz")
        template = nib.load(raw / file)
        np.testing.assert_array_equal(label.affine, template.affine)
        np.testing.assert_array_equal(image.affine, template.affine)
        assert label.shape == template.shape and label.get_data_dtype() == np.uint8
        assert np.asarray(label.dataobj).max() == 112


def test_atlas_option_is_checked() -> None:
    with pytest.raises(ValueError, match="neuromorphometrics, desikan_killiany, aal"):
        samples.dataset_dir("brain_parcellation3d", atlas="harvard_oxford")
    with pytest.raises(ValueError, match="no atlas option"):
        samples.dataset_dir("tumour3d", atlas="aal")


def test_data_command_takes_the_atlas(data_env, capsys) -> None:
    from scseg.cli import main

    assert main(["data", "brain_parcellation3d", "--atlas", "aal"]) == 0
    root = samples.dataset_dir("brain_parcellation3d", atlas="aal")
    assert f"brain_parcellation3d: {root}" in capsys.readouterr().out
    assert len(json.loads((root / "dataset.json").read_text())["labels"]) == 121
    assert main(["data", "oxford_pet", "--atlas", "aal"]) == 1
    assert "--atlas is an option of sample brain_parcellation3d" in capsys.readouterr().err
