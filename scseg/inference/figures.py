"""``scseg attention``: attention-map figures for one input and a trained checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from scseg.attention_maps import AttentionMaps, capture
from scseg.attention_report import report_html
from scseg.inference.checkpoint import LoadedModel
from scseg.inference.image import image_tensor
from scseg.inference.volume import InputError, is_volume, model_input
from scseg.inference.writing import atomic_write, refuse_existing
from scseg.io.volumes import case_name

MAX_VOXELS_FACTOR = 8  # volumes up to 8 training patches are mapped whole, larger ones cropped


def _centre_crop(x: torch.Tensor, size: list[int]) -> torch.Tensor:
    starts = [max(0, (s - c) // 2) for s, c in zip(x.shape[2:], size, strict=True)]
    return x[(..., *[slice(a, a + c) for a, c in zip(starts, size, strict=True)])]


def _captured(
    model: LoadedModel, path: Path
) -> tuple[torch.Tensor, AttentionMaps, torch.Tensor, list[float] | None]:
    """The input as the model sees it ``(1, C, *spatial)`` (3D: RAS at the training
    spacing, whole if it is at most 8 training patches, else its central region of twice
    the patch size), its captured attention (maps resized to it), the predicted classes
    and (3D) the voxel size it is shown at: the training spacing, or for a model trained
    with ``spacing: null`` the volume's own.
    """
    net = model.net
    spacing = None
    if model.spatial_dims == 3:
        if not is_volume(path):
            raise InputError(f"{path}: a 3D model needs a NIfTI or NRRD volume")
        _, data, x = model_input(model, path)
        spacing = [float(v) for v in data["image"].pixdim]
        x = x[None].float()
        patch = model.data_info.get("patch_size") or list(x.shape[2:])
        if x[0, 0].numel() > MAX_VOXELS_FACTOR * torch.tensor(patch).prod():
            x = _centre_crop(x, [2 * p for p in patch])
    else:
        x = image_tensor(model, path)
    sizes = x.shape[2:]
    divisor = net.size_divisor if net.encoder.requires_divisible_input else 1
    pads = [(-s) % divisor for s in sizes]
    padded = F.pad(x, [p for pad in reversed(pads) for p in (0, pad)]) if any(pads) else x
    maps = capture(net, padded, upsample=True)
    crop = (..., *[slice(0, s) for s in sizes])
    maps.sse = [m[crop] if m is not None else None for m in maps.sse]
    if not any(m is not None for m in maps.sse + maps.cse):
        raise InputError(f"{path}: the model has no attention to show (attention 'none')")
    logits = maps.output[crop]
    if not model.multilabel:
        return x, maps, logits.argmax(1), spacing
    # regions that overlap, shown as one label map: each voxel in its last region by the
    # model's region order (nested regions: the innermost), 0 where in none
    from scseg.data.labels import regions_to_label_map

    order = list(range(1, logits.shape[1] + 1))
    masks = (logits[0] > 0).cpu().numpy()
    return x, maps, torch.from_numpy(regions_to_label_map(masks, order)).long()[None], spacing


def attention_figures(
    model: LoadedModel,
    path: str | Path,
    out_dir: str | Path,
    overwrite: bool = False,
    html: bool = False,
    checkpoint: str | Path | None = None,
    radiological: bool = False,
) -> list[Path]:
    """Writes ``<stem>_sse.png`` (and ``<stem>_cse.png`` where the model has cSE), and with
    ``html`` ``<stem>_attention.html`` (:func:`scseg.attention_report.report_html`, one
    self-contained page; ``checkpoint`` is named in it), all from one capture.

    2D: the whole image (padded for the encoder, maps cropped back). 3D: the volume after
    the training preprocessing (RAS, training spacing), whole if it is at most 8 training
    patches, else its central region of twice the patch size; planes through its centre.
    Every output is checked before any is written. Volumes are drawn to scale with
    orientation letters, the patient's right on the screen's right unless
    ``radiological``.

    Raises:
        InputError: for an input the model cannot take; OutputExistsError without overwrite.
    """
    import matplotlib.pyplot as plt

    from scseg.attention_plots import plot_cse_weights, plot_sse_grid, plot_sse_planes

    path, out_dir = Path(path), Path(out_dir)
    stem = case_name(path)
    targets = {"sse": out_dir / f"{stem}_sse.png", "cse": out_dir / f"{stem}_cse.png"}
    page = out_dir / f"{stem}_attention.html"
    refuse_existing([*targets.values(), *([page] if html else [])], overwrite)
    x, maps, prediction, spacing = _captured(model, path)
    written = []
    if html:
        text = _report(model, path, x, maps, prediction, checkpoint, spacing, radiological)
        written.append(atomic_write(page, lambda t: Path(t).write_text(text, "utf-8"), True))
    figures = {}
    if any(m is not None for m in maps.sse):
        figures["sse"] = (
            plot_sse_planes(x, maps, spacing=spacing,
                            convention="radiological" if radiological else "neurological")
            if model.spatial_dims == 3
            else plot_sse_grid(x, maps, prediction=prediction)
        )  # fmt: skip
    if any(w is not None for w in maps.cse):
        figures["cse"] = plot_cse_weights(maps)
    for key, fig in figures.items():
        atomic_write(
            targets[key], lambda t, f=fig: f.savefig(t, dpi=110, bbox_inches="tight"), True
        )
        plt.close(fig)
        written.append(targets[key])
    return written


def _report(
    model: LoadedModel,
    path: Path,
    x: torch.Tensor,
    maps: AttentionMaps,
    prediction: torch.Tensor,
    checkpoint: str | Path | None,
    spacing: list[float] | None,
    radiological: bool,
) -> str:
    """The HTML report of one capture, with notes on what is shown."""
    volume = model.spatial_dims == 3
    notes = [f"input: {path.name}"]
    if checkpoint is not None:
        notes.insert(0, f"checkpoint: {Path(checkpoint).name}")
    if volume:
        trained = model.data_info.get("spacing")
        own = " x ".join(f"{v:.3g}" for v in spacing)
        where = f"RAS, resampled to {tuple(trained)} mm" if trained else f"RAS, its own {own} mm"
        side = "left (radiological)" if radiological else "right (neurological)"
        notes.append(f"shown as the model sees it: {where}, {tuple(x.shape[2:])} voxels; "
                     f"the patient's right on the screen's {side}")  # fmt: skip
    if model.multilabel:
        notes.append(f"{model.classes} regions that may overlap: each voxel is coloured by the "
                     "last region that holds it, in the model's order")  # fmt: skip
    sse = [m[0, 0].numpy() if m is not None else None for m in maps.sse]
    cse = [w[0].numpy() if w is not None else None for w in maps.cse]
    return report_html(
        x[0].mean(0).numpy(), prediction[0].numpy(), sse, cse,
        title=f"scseg attention: {case_name(path)}",
        class_names=_shown_names(model), spacing=spacing, notes=notes,
        radiological=radiological,
    )  # fmt: skip


def _shown_names(model: LoadedModel) -> list[str] | None:
    """The legend: the classes, or for a model of regions "none" and the regions."""
    names = model.data_info.get("class_names")
    return ["none", *model.class_names] if model.multilabel else names
