"""The model card of a package (:mod:`scseg.inference.package`) as Markdown, from its
machine-readable form (``card.json``) and the model's description (``model.json``)."""

from __future__ import annotations

import math


def render_card(card: dict, model: dict) -> str:
    """Markdown: the model, its input and preprocessing, classes, training data, the
    validation scores per class from the training run, and versions."""
    lines = [f"# {card['name']}", ""]
    if card.get("description"):
        lines += [card["description"], ""]
    folds = model["folds"]
    arch = folds[0]["architecture"]
    lines += [
        "## Model",
        "",
        f"- architecture: `{model['arch']}`, {model['spatial_dims']}D, attention "
        f"`{arch.get('attention', 'none')}`",
        f"- input channels: {model['in_channels']}; classes: {len(model['classes'])}",
        f"- folds: {len(folds)}"
        + (" (their probabilities are averaged)" if len(folds) > 1 else ""),
        "",
        "## Input and preprocessing",
        "",
        *[f"- {line}" for line in _preprocessing(model["preprocessing"])],
        "",
        "## Classes",
        "",
        "| index | name | colour |",
        "|---:|---|---|",
        *[f"| {c['index']} | {c['name']} | `{c['colour']}` |" for c in model["classes"]],
        "",
        "## Training data",
        "",
        f"- data module: `{card['training_data'].get('data_module') or 'not recorded'}`",
        *[f"- {k}: `{v}`" for k, v in card["training_data"]["settings"].items() if v is not None],
        "",
        "## Validation scores (from the training run)",
        "",
    ]
    for fold in card["validation"]:
        lines += _fold_lines(fold)
    versions = card["versions"]
    lines += [
        "## Versions",
        "",
        f"- trained with scseg {versions.get('scseg_trained') or 'unknown'}; packaged with "
        f"scseg {versions['scseg_package']}, torch {versions['torch']}, on {card['created']}",
        "",
    ]
    return "\n".join(lines)


def _preprocessing(info: dict) -> list[str]:
    lines = []
    if info.get("spacing"):
        spacing = " x ".join(f"{s:g}" for s in info["spacing"])
        lines.append(f"orientation {info.get('orientation')}, resampled to {spacing} mm")
    if info.get("intensity"):
        window = info.get("ct_window")
        shown = f" (window {window[0]:g} to {window[1]:g})" if info["intensity"] == "ct" else ""
        lines.append(f"intensity: {info['intensity']}{shown}")
    if info.get("normalization"):
        lines.append(f"normalisation: {info['normalization']}")
    if info.get("slice_axis") is not None:
        lines.append(f"2D network applied slice by slice across axis {info['slice_axis']}")
    if info.get("patch_size"):
        patch = " x ".join(str(s) for s in info["patch_size"])
        lines.append(f"training patch (and default sliding window): {patch}")
    return lines or ["as the training data module left it"]


def _fold_lines(fold: dict) -> list[str]:
    head = (
        f"Fold {fold['fold']} (`{fold['checkpoint']}`, epoch {fold['epoch']}, "
        f"step {fold['global_step']})"
    )
    rows = fold["per_class"]
    if not rows:
        return [f"{head}: no validation of the training run recorded in the checkpoint.", ""]
    dice = [r["dice"] for r in rows if not math.isnan(r["dice"])]
    mean = sum(dice) / len(dice) if dice else float("nan")
    when = f"validated at epoch {fold.get('scores_epoch')}, step {fold.get('scores_step')}"
    return [
        f"{head}: mean Dice {mean:.4f}, {when}",
        "",
        "| class | Dice | IoU | voxels |",
        "|---|---:|---:|---:|",
        *[f"| {r['class']} | {r['dice']:.4f} | {r['iou']:.4f} | {r['voxels']:,} |" for r in rows],
        "",
    ]
