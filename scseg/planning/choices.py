"""The settings of a planned config, layout by layout (3D volumes, 2D slices of volumes,
2D image folders); the rules are in :mod:`scseg.planning.rules`."""

from __future__ import annotations

import math

import numpy as np

from scseg.planning.fingerprint import Fingerprint
from scseg.planning.rules import (
    ANISOTROPY,
    MAX_DATASET_COVERED,
    STEPS_PER_EPOCH,
    Plan,
    fit_patch,
    target_spacing,
)

DATA = "data.init_args"  # where the data module's settings go
SIDES = ("left", "right", "_l_", "_r_", "lh_", "rh_")


def _common(p: Plan, fp: Fingerprint, epochs: int, cpu: bool) -> None:
    p.set("seed_everything", 0, "the split and the training are seeded")
    p.set(
        "trainer.max_epochs",
        epochs,
        f"{STEPS_PER_EPOCH} steps each (nnU-Net: 1000 epochs of 250); raise it for a full "
        "training, lower it for a first look",
    )
    p.set("trainer.log_every_n_steps", 10)
    p.set("model.classes", fp.classes)
    p.set("model.in_channels", fp.channels)
    p.set(
        "model.attention",
        "scse",
        "scSE after every decoder block (--model.attention cse/sse/none to compare)",
    )
    scheme = fp.scheme
    if scheme is not None and scheme.ignore is not None:
        share = fp.annotated_share()
        p.set("model.ignore_index", scheme.ignore,
              f"dataset.json's ignore label: {100 * share:.1f} % of voxels are annotated; the "
              "rest count for nothing in loss and scores")  # fmt: skip
    if scheme is not None and scheme.multilabel:
        p.set("model.multilabel", True,
              f"{scheme.channels} regions that may overlap, from dataset.json: a sigmoid "
              "per region, Dice + binary cross-entropy")  # fmt: skip
    p.set("model.loss", "dicece", "Dice + cross-entropy, as nnU-Net")
    p.set("model.lr", 0.003, "AdamW with a cosine schedule (nnU-Net: SGD 0.01, poly)")
    p.set("model.scheduler", "cosine")
    p.set("data.init_args.classes", fp.classes)
    p.set("data.init_args.class_names", fp.class_names())
    p.set("data.init_args.in_channels", fp.channels)
    # scseg fit's precision (scseg.training.cli.default_precision): bf16 autocast on a
    # GPU, or on a CPU with bf16 matrix units (AMX); float32 on other CPUs
    p.summary.append(("device", "CPU, bf16 if AMX" if cpu else "GPU (mixed precision)"))


def nnunet_schedule(p: Plan) -> None:
    """nnU-Net's optimisation in place of ours: SGD with Nesterov momentum 0.99, learning
    rate 0.01 decayed by the poly rule (exponent 0.9), weight decay 3e-5."""
    why = "nnU-Net's schedule (scseg plan --schedule nnunet)"
    p.set("model.optimizer", "sgd", f"{why}: SGD, Nesterov momentum 0.99")
    p.set("model.lr", 0.01, why)
    p.set("model.weight_decay", 3e-5, why)
    p.set("model.scheduler", "poly", f"{why}: lr x (1 - epoch / epochs)^0.9")
    p.summary.append(("optimisation", "SGD 0.01, Nesterov 0.99, poly (nnU-Net)"))


def _sides(names: list[str]) -> bool:
    return any(any(s in f"_{n.lower()}_" for s in SIDES) for n in names)


def _dataset_share(fp: Fingerprint, spacing: np.ndarray) -> np.ndarray:
    """Each case's voxels at ``spacing``."""
    return np.array([np.prod(np.array(c.shape) * np.array(c.spacing) / spacing) for c in fp.cases])


def _coarsest_axis(target: np.ndarray) -> int | None:
    """The axis of the largest spacing; ``None`` where all are within 1 % (isotropic)."""
    return int(np.argmax(target)) if target.max() > target.min() * 1.01 else None


def _spatial_augmentation(p: Plan, target: np.ndarray, patch: list[int], sided: bool) -> None:
    """nnU-Net's rotation and scaling (``configure_rotation_dummyDA_mirroring_and_inital_
    patch_size``): up to 30 degrees about every axis, or, where the patch is over 3x
    shorter along the coarsest axis, up to 180 degrees about that axis only; a zoom of
    0.7-1.4; each with probability 0.2. Sided labels keep turns within 30 degrees: a
    half turn would swap left and right, as mirroring does."""
    coarse = _coarsest_axis(target)
    flat = coarse is not None and max(patch) > ANISOTROPY * patch[coarse]
    # 4 decimals, rounded down: pi rounded to 3.1416 lies above the data module's [0, pi]
    angle = math.floor((math.pi / 6 if sided or not flat else math.pi) * 1e4) / 1e4
    rotation = [angle if (a == coarse or not flat) else 0.0 for a in range(3)]
    p.set(
        f"{DATA}.rotation",
        rotation,
        (f"turns of up to {math.degrees(angle):.0f} degrees about axis {coarse} only: the "
         f"patch is over {ANISOTROPY:g}x shorter along it (nnU-Net)" if flat
         else "turns of up to 30 degrees about every axis (nnU-Net)")
        + ("; no more, since class names name sides" if sided and flat else ""),
    )  # fmt: skip
    p.set(f"{DATA}.zoom", [0.7, 1.4], "zoomed by 0.7-1.4 (nnU-Net's scaling)")
    p.set(f"{DATA}.spatial_prob", 0.2, "each turn and zoom with probability 0.2 (nnU-Net)")


def _spacing_and_intensity(
    p: Plan, fp: Fingerprint, spacing: list[float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The target spacing (nnU-Net's rule unless given) and the intensity normalisation;
    returns the spacing and the median case's shape at it."""
    if spacing is None:
        target, why = target_spacing(fp)
    else:
        target, why = np.asarray(spacing, float), "given with --spacing"
    target = np.round(target, 4)
    median_shape = np.median(fp.shapes * fp.spacings / target, 0)
    modalities = fp.modalities()
    ct = all(m.upper() == "CT" for m in modalities)
    p.set("data.init_args.spacing", [float(s) for s in target], why)
    if ct:
        stats = fp.intensity_stats(0)
        window = [round(stats["p00_5"], 1), round(stats["p99_5"], 1)]
        source = (
            "dataset.json"
            if fp.meta.get("channel_names") or fp.meta.get("modality")
            else "intensities below -500 (HU)"
        )
        p.set(
            "data.init_args.intensity",
            "ct",
            f"CT (from {source}): clip to the foreground's "
            "0.5-99.5 percentiles (nnU-Net), then scale to [0, 1]",
        )
        p.set("data.init_args.ct_window", window)
    else:
        p.set(
            "data.init_args.intensity",
            "zscore",
            f"{'/'.join(dict.fromkeys(modalities))}: z-score over non-zero voxels per image",
        )
    return target, median_shape


def _architecture(
    p: Plan,
    target: np.ndarray,
    median_shape: np.ndarray,
    dims: int,
    memory_gib: float,
    cpu: bool,
    sided: bool,
    classes: int,
) -> tuple[list[int], list[int], int, list[int]]:
    """The patch, the network's widths, the batch and the mirrored axes: a 3D U-Net, or
    SMP's 2D U-Net on slices across the coarsest axis."""
    base = 16 if cpu else 32
    if dims == 3:
        patch, widths, batch, pools = fit_patch(target, median_shape, 3, memory_gib, cpu, base,
                                                classes)  # fmt: skip
        p.set("model.arch", "unet")
        p.set("model.spatial_dims", 3)
        if not pools.uniform:
            p.set("model.model_options.strides", [list(s) for s in pools.strides],
                  "per stage and axis: an axis is pooled while its feature map keeps 8 voxels "
                  "and its spacing is under twice the finest (nnU-Net)")  # fmt: skip
            p.set("model.model_options.kernel_sizes", [list(k) for k in pools.kernels],
                  "1 along an axis while its spacing is over twice the finest "
                  "(nnU-Net)")  # fmt: skip
        p.set("data.class_path", "scseg.data.MSD3DDataModule")
        flips = [1, 2] if sided else [0, 1, 2]
    else:
        coarse = _coarsest_axis(target)
        axis = _slice_axis(target)
        plane = [a for a in range(3) if a != axis]
        patch, widths, batch, _ = fit_patch(
            target[plane], median_shape[plane], 2, memory_gib, cpu, base, classes
        )
        patch = [max(64, int(s) // 32 * 32) for s in patch]  # SMP encoders: divisible by 32
        p.set("model.arch", "smp_unet")
        p.set("model.spatial_dims", 2)
        p.set("data.class_path", "scseg.data.MSDSlicesDataModule")
        p.set(
            f"{DATA}.slice_axis",
            axis,
            "slices across the coarsest axis (nnU-Net's 2d)"
            if coarse is not None
            else "axial slices",
        )
        flips = [] if sided else [0, 1]
    return patch, widths, batch, flips


def _network(
    p: Plan,
    widths: list[int],
    batch: int,
    per_volume: int,
    dims: int,
    cpu: bool,
    n_train: int,
    median_shape: np.ndarray,
    target: np.ndarray,
) -> int:
    """Stages, widths and deep supervision (3D) or the SMP encoder (2D); returns how
    often each training case is visited per epoch."""
    base = 16 if cpu else 32
    if dims == 3:
        stages = len(widths)
        p.set(
            "model.model_options.channels",
            widths,
            f"{stages} stages: each axis halved down to 4-7 voxels (nnU-Net; at most 6); "
            f"widths from {base}, doubling, at most 320",
        )
        p.set(
            "model.model_options.deep_supervision",
            max(0, stages - 2),
            "auxiliary heads on every decoder block but the coarsest (nnU-Net)",
        )
        p.set(f"{DATA}.samples_per_volume", per_volume)
        repeats = math.ceil(STEPS_PER_EPOCH * batch / max(1, n_train) / per_volume)
    else:
        p.set("model.model_options.encoder_name", "resnet18" if cpu else "resnet34")
        p.set(
            "model.model_options.encoder_weights",
            None,
            "offline; 'imagenet' to start from pretrained weights",
        )
        p.set("model.model_options.deep_supervision", 2)
        repeats = math.ceil(
            STEPS_PER_EPOCH * batch / max(1, n_train) / max(1, median_shape[_slice_axis(target)])
        )
    return repeats


def _slice_axis(target: np.ndarray) -> int:
    """The axis 2D slices are taken across: the coarsest, else the axial one."""
    coarse = _coarsest_axis(target)
    return 2 if coarse is None else coarse


def _summary(
    p: Plan,
    target: np.ndarray,
    median_shape: np.ndarray,
    patch: list[int],
    batch: int,
    widths: list[int],
    dims: int,
    cache_gib: float,
    disk: bool,
) -> None:
    p.summary += [
        ("target spacing (mm)", " x ".join(f"{s:g}" for s in target)),
        ("median shape there", " x ".join(str(round(s)) for s in median_shape)),
        ("normalisation", p.values["data.init_args.intensity"]),
        ("patch x batch", f"{' x '.join(map(str, patch))} x {batch}"),
        (
            "network",
            f"{p.values['model.arch']}, widths {widths}"
            if dims == 3
            else f"smp_unet {p.values['model.model_options.encoder_name']}",
        ),
        (
            "preprocessed data",
            f"{cache_gib:.2f} GiB, cache: {'disk' if disk else 'memory'}"
            if dims == 3
            else f"{cache_gib:.2f} GiB in memory",
        ),
    ]


def plan_volumes(
    fp: Fingerprint,
    memory_gib: float,
    ram_gib: float,
    cpu: bool,
    dims: int,
    epochs: int,
    spacing: list[float] | None,
    n_train: int,
) -> Plan:
    p = Plan()
    _common(p, fp, epochs, cpu)
    target, median_shape = _spacing_and_intensity(p, fp, spacing)
    names = fp.class_names()
    sided = _sides(names)
    voxels = _dataset_share(fp, target)
    cache_gib = float(voxels.sum()) * (fp.channels + 1) * 4 / 2**30
    disk = cache_gib > ram_gib / 2
    patch, widths, batch, flips = _architecture(p, target, median_shape, dims, memory_gib, cpu,
                                                sided, fp.classes)  # fmt: skip
    covered = max(2, int(MAX_DATASET_COVERED * voxels.sum() / np.prod(patch)))
    batch = min(batch, covered)
    p.set(
        f"{DATA}.patch_size",
        patch,
        f"as large as the median case ({' x '.join(str(round(s)) for s in median_shape)} at "
        f"this spacing, rounded up to what the poolings divide) while two fit "
        f"{memory_gib:g} GiB (nnU-Net's rule)"
        + ("" if dims == 3 else "; then down to a multiple of 32 for SMP's encoders"),
    )
    per_volume = 2 if dims == 3 and batch % 2 == 0 else 1
    p.set(
        f"{DATA}.batch_size",
        batch // per_volume,
        f"{batch} patches per step ({batch // per_volume} volume(s) x samples_per_volume): "
        "what the memory allows beyond 2, and at most 5 % of the dataset's voxels (nnU-Net)",
    )
    repeats = _network(p, widths, batch, per_volume, dims, cpu, n_train, median_shape, target)
    p.set(
        f"{DATA}.foreground_ratio",
        0.33,
        "a third of the patches centred on foreground (nnU-Net's oversampling), the rest on "
        "background (nnU-Net centres them anywhere: rest_centres: anywhere)",
    )
    p.set(f"{DATA}.repeats", max(1, repeats), f"about {STEPS_PER_EPOCH} steps per epoch")
    p.set(
        f"{DATA}.flip_axes",
        flips,
        "mirroring; not left-right, since class names name sides"
        if sided
        else "mirroring along every axis (nnU-Net)",
    )
    if dims == 3:
        _spatial_augmentation(p, target, patch, sided)
    else:
        p.set(
            f"{DATA}.slice_sampling",
            "class",
            "a case, then a class in it, then a voxel of it (nnU-Net's oversampling); against "
            "'case' (any foreground voxel) +0.6 Dice points on the 2D parcellation, +0.5 on "
            "the tissue blocks, 3 seeds each; 'slice': any slice with foreground",
        )
    p.set(
        f"{DATA}.intensity_augmentation",
        "nnunet",
        "nnU-Net's noise, blur, brightness, contrast, low resolution and gamma; on the 3D "
        "quickstart 0.904 against 0.895 for 'light' (scale and shift), same steps, one seed",
    )
    p.set("model.sw_overlap", 0.5, "validation windows overlap by half (nnU-Net's step 0.5)")
    p.set("model.sw_batch_size", max(1, min(batch, 4)))
    if dims == 3:
        p.set(
            f"{DATA}.cache",
            "disk" if disk else "memory",
            f"the preprocessed cases take {cache_gib:.2f} GiB, "
            f"{'over' if disk else 'under'} half of --ram {ram_gib:g} GiB"
            + (": each is written once to disk and read when used" if disk else ""),
        )
    _summary(p, target, median_shape, patch, batch, widths, dims, cache_gib, disk)
    return p


def plan_folder2d(fp: Fingerprint, memory_gib: float, cpu: bool, epochs: int, n_train: int) -> Plan:
    p = Plan()
    _common(p, fp, epochs, cpu)
    median_shape = np.median(fp.shapes, 0)
    patch, _, batch, _ = fit_patch((1.0, 1.0), median_shape, 2, memory_gib, cpu, 16 if cpu else 32,
                                fp.classes)  # fmt: skip
    patch = [max(64, int(s) // 32 * 32) for s in patch]
    pixels = float(fp.shapes.prod(1).sum())
    batch = min(batch, max(2, int(MAX_DATASET_COVERED * pixels / np.prod(patch))))
    rgb = fp.channels == 3
    p.set("model.arch", "smp_unet")
    p.set("model.spatial_dims", 2)
    p.set("model.model_options.encoder_name", "resnet18" if cpu else "resnet34")
    p.set(
        "model.model_options.encoder_weights",
        None,
        "offline; 'imagenet' to start from pretrained weights (RGB)",
    )
    p.set("data.class_path", "scseg.data.Folder2DDataModule")
    p.set(
        "data.init_args.patch_size",
        patch,
        f"as large as the median image ({' x '.join(str(round(s)) for s in median_shape)}) "
        f"while two fit {memory_gib:g} GiB, divisible by 32 (SMP encoders)",
    )
    p.set(
        "data.init_args.batch_size",
        batch,
        "what the memory allows beyond 2, and at most "
        "5 % of the dataset's pixels per batch (nnU-Net)",
    )
    p.set(
        "data.init_args.normalization",
        "percentile",
        "per image: 1-99.8 percentiles to [0, 1], then z-score",
    )
    p.set(
        "data.init_args.augment",
        "natural" if rgb else "microscopy",
        "RGB: scale, rotation, horizontal flip, colour"
        if rgb
        else "grey: flips, 90-degree rotations, brightness",
    )
    per_epoch = math.ceil(STEPS_PER_EPOCH * batch / max(1, n_train))
    p.set("data.init_args.repeats", per_epoch, f"about {STEPS_PER_EPOCH} steps per epoch")
    p.summary += [
        ("median size (px)", " x ".join(str(round(s)) for s in median_shape)),
        ("normalisation", "percentile"),
        ("patch x batch", f"{' x '.join(map(str, patch))} x {batch}"),
        ("network", f"smp_unet {p.values['model.model_options.encoder_name']}"),
    ]
    return p


def plan(
    fp: Fingerprint,
    memory_gib: float,
    ram_gib: float,
    cpu: bool,
    dims: int | None = None,
    epochs: int = 100,
    spacing: list[float] | None = None,
    n_train: int = 1,
) -> Plan:
    """Settings for a training of ``fp`` in ``dims`` (default: the data's own) with
    ``n_train`` training cases."""
    dims = dims or fp.spatial_dims
    if fp.layout == "folder2d":
        if dims != 2:
            raise ValueError(f"{fp.root}: 2D images cannot be trained in 3D (--dims 2)")
        return plan_folder2d(fp, memory_gib, cpu, epochs, n_train)
    return plan_volumes(fp, memory_gib, ram_gib, cpu, dims, epochs, spacing, n_train)
