"""Loading trained models from scseg checkpoints, without unpickling arbitrary objects."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from scseg.models import create_model
from scseg.models.slabs import SlabStream, pad_predict, whole

MODEL_KEYS = ("arch", "spatial_dims", "in_channels", "classes", "attention")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or not from scseg; the message names the file."""


@dataclass
class LoadedModel:
    """A network in eval mode with what inference needs to know about its training."""

    net: nn.Module
    spatial_dims: int
    in_channels: int
    classes: int
    hparams: dict
    data_info: dict = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return self.data_info.get("class_names") or [f"class_{i}" for i in range(self.classes)]

    @property
    def multilabel(self) -> bool:
        """Each output channel is a region with its own sigmoid (regions may overlap)."""
        return bool(self.hparams.get("multilabel", False))

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax over classes, or a sigmoid per region."""
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, 1)

    @property
    def atlas(self) -> dict[str, str] | None:
        """For a model that refines a registered atlas (:mod:`scseg.atlas.model`), the
        atlas's ``image`` and ``label`` files (set by training; ``--atlas`` replaces them)."""
        return self.data_info.get("label_prior") or None

    @property
    def slice_axis(self) -> int | None:
        """For a 2D model trained on slices of volumes, the axis it segments across."""
        axis = self.data_info.get("slice_axis")
        return None if axis is None or self.spatial_dims != 2 else int(axis)

    @property
    def mirror_axes(self) -> list[int] | None:
        """The image's axes mirrored in training (a volume's axes, after RAS, for a 2D
        model trained on slices too); ``None`` for checkpoints that do not record them."""
        axes = self.data_info.get("mirror_axes")
        return None if axes is None else [int(a) for a in axes]

    @property
    def input_dims(self) -> int:
        """3 if the model segments volumes (a 3D model, or a 2D one slice by slice), else 2."""
        return 3 if self.spatial_dims == 3 or self.slice_axis is not None else 2

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def autocast(self) -> torch.autocast:
        """Mixed precision for inference on a GPU (bf16 where supported, else fp16), as in
        training; full precision elsewhere (bf16 brings no speed on CPUs)."""
        cuda = self.device.type == "cuda"
        dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(self.device.type, dtype, enabled=cuda)

    def flips(self, ndim: int, tta: bool) -> list[tuple[int, ...]]:
        """The dims of an input with ``ndim`` dims (batch and channel first) to mirror for
        test-time augmentation: every combination of the axes mirrored in training
        (:attr:`mirror_axes`; the slice's own two for a 2D model over a volume), the
        unmirrored ``()`` first; only ``()`` without ``tta``."""
        axes = [a for a in range(2, ndim) if a - 2 != self.slice_axis or ndim == 4]
        if (trained := self.mirror_axes) is not None:
            axes = [a for a in axes if a - 2 in trained]
        masks = range(2 ** len(axes)) if tta else [0]
        return [tuple(a for i, a in enumerate(axes) if mask >> i & 1) for mask in masks]

    def probabilities(
        self,
        x: torch.Tensor,
        logits: Callable[[torch.Tensor], torch.Tensor] | None = None,
        tta: bool = False,
        slabs: Callable[[torch.Tensor, torch.Tensor | None], SlabStream] | None = None,
    ) -> torch.Tensor:
        """Softmax (regions: sigmoid) of the logits of ``x``, in float32 on the CPU,
        averaged over every mirror combination of the spatial axes when ``tta`` (nnU-Net's
        test-time mirroring), of the axes mirrored in training only (:attr:`mirror_axes`):
        a model that learnt left from right is never shown a mirrored image.

        The logits come from ``logits(x)``, or as a stream (:mod:`scseg.models.slabs`) from
        ``slabs(x, out)``, which accumulates into ``out`` (``(B, classes, *spatial)`` zeros)
        when given: each slab then turns into probabilities in place, so one volume of
        classes x voxels is all the memory this takes. Either runs in inference mode, with
        :meth:`autocast`, on ``x`` moved to the model's device.
        """
        if (logits is None) == (slabs is None):
            raise ValueError("give one of logits or slabs")
        x = x.to(self.device)
        flips = self.flips(x.ndim, tta)
        total = None
        with torch.inference_mode(), self.autocast():
            for dims in flips:
                xi = torch.flip(x, dims) if dims else x
                if slabs is not None and total is None:  # the first pass is unmirrored
                    total = torch.zeros((x.shape[0], self.classes, *x.shape[2:]), device=x.device)
                    for _, _, _, part in slabs(xi, total):
                        _activate_(part, self.multilabel)
                    continue
                stream = whole(logits(xi)) if slabs is None else slabs(xi, None)
                for axis, start, stop, part in stream:
                    probs = self.activate(part.float())
                    probs = torch.flip(probs, dims) if dims else probs
                    dim, size = axis + 2, x.shape[axis + 2]
                    if dim in dims:  # a slab of the mirrored volume
                        start, stop = size - stop, size - start
                    if total is None:
                        total = torch.zeros((x.shape[0], probs.shape[1], *x.shape[2:]),
                                            device=x.device)  # fmt: skip
                    index = [slice(None)] * x.ndim
                    index[dim] = slice(start, stop)
                    total[tuple(index)] += probs
            if len(flips) > 1:  # inference tensors change in place only in inference mode
                total.div_(len(flips))
        return total.cpu()


def _activate_(logits: torch.Tensor, multilabel: bool = False) -> None:
    """Softmax over channels (or a sigmoid per channel) in place, one plane at a time
    along the first spatial axis (the temporary is one plane)."""
    if multilabel:
        logits.sigmoid_()
        return
    for k in range(logits.shape[2]):
        plane = logits[:, :, k]
        plane.copy_(torch.softmax(plane, 1))


# the manifest that marks a model package (scseg.inference.package), here so that a
# package given as a checkpoint can be told apart without importing the package module
PACKAGE_MANIFEST = "scseg-package.json"


def read_checkpoint(path: str | Path) -> dict:
    """``torch.load(path, weights_only=True)`` with one-line errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if PACKAGE_MANIFEST in archive.namelist():
                raise CheckpointError(f"{path}: a model package, not a checkpoint: give it "
                                      "with --model")  # fmt: skip
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: refused to load objects beyond tensors ({first})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated?): {first}") from None


class Ensemble(nn.Module):
    """Several networks as one: the log of their mean softmax. Inference takes a softmax of
    what a network returns, so each window's probabilities are the mean of the members'
    (folds of one plan, as nnU-Net ensembles them; nnU-Net averages logits instead).

    forward: ``(B, C_in, *spatial) -> (B, classes, *spatial)`` log-probabilities.
    """

    def __init__(self, nets: list[nn.Module], multilabel: bool = False) -> None:
        super().__init__()
        self.members = nn.ModuleList(nets)
        self.multilabel = multilabel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for net in self.members:  # each padded to its own encoder's divisor, if any
            logits = pad_predict(net, x).float()
            probabilities = torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, 1)
            total = probabilities if total is None else total.add_(probabilities)
        mean = total.div_(len(self.members))
        if self.multilabel:  # regions: the logit of the mean sigmoid
            return torch.logit(mean, eps=1e-6)
        # tiny floor: log(0) would be -inf, and -inf - -inf is NaN in the window blending
        return mean.clamp_min_(1e-12).log_()


# What makes two checkpoints' inputs and outputs the same: they can be averaged.
SAME_DATA = (
    "spacing",
    "intensity",
    "ct_window",
    "normalization",
    "slice_axis",
    "class_names",
    "regions",
)


def load_models(paths, device: str | torch.device = "cpu") -> LoadedModel:
    """One checkpoint, or several (the folds of a plan) whose probabilities are averaged.

    Raises:
        CheckpointError: naming the checkpoint whose classes, channels, dimensions or
            preprocessing differ from the first one's.
    """
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    return ensemble(paths, [load_model(p, device) for p in paths], device)


def ensemble(sources: list, models: list[LoadedModel], device="cpu") -> LoadedModel:
    """``models`` (loaded from ``sources``, named in errors) as one averaged model."""
    first = models[0]
    if len(models) == 1:
        return first
    check_one_plan(sources, [(m.spatial_dims, m.in_channels, m.classes, m.data_info)
                             for m in models])  # fmt: skip
    net = Ensemble([m.net for m in models], first.multilabel).to(device).eval()
    return LoadedModel(net, first.spatial_dims, first.in_channels, first.classes,
                       first.hparams, first.data_info)  # fmt: skip


def check_one_plan(sources: list, settings: list[tuple[int, int, int, dict]]) -> None:
    """Raises :class:`CheckpointError` naming the first source whose ``(spatial_dims,
    in_channels, classes, data_info)`` differ from the first one's in what averaging
    needs alike."""
    first = settings[0]
    for source, (dims, channels, classes, info) in zip(sources[1:], settings[1:], strict=True):
        for what, a, b in (
            ("spatial_dims", first[0], dims),
            ("in_channels", first[1], channels),
            ("classes", first[2], classes),
            *[(k, first[3].get(k), info.get(k)) for k in SAME_DATA],
        ):
            if a != b:
                raise CheckpointError(f"{source}: {what} {b} differs from {sources[0]}'s {a}; "
                                      "only checkpoints of one plan can be averaged")  # fmt: skip


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuilds the network of an scseg training checkpoint and loads its weights.

    Raises:
        CheckpointError: if the file is missing, unreadable, or from another tool.
    """
    parts = checkpoint_parts(path)
    return build_model(path, parts.hparams, parts.architecture, parts.weights,
                       parts.data_info, device)  # fmt: skip


@dataclass
class CheckpointParts:
    """What an scseg checkpoint holds, as plain values: the module's ``hparams``, the
    network's resolved ``architecture`` and ``weights``, and ``extra`` (our own entry:
    data_info, scores, versions); ``raw``: the whole loaded checkpoint."""

    hparams: dict
    architecture: dict
    weights: dict[str, torch.Tensor]
    extra: dict
    raw: dict

    @property
    def data_info(self) -> dict:
        return dict(self.extra.get("data_info", {}))


def checkpoint_parts(path: str | Path) -> CheckpointParts:
    """Reads an scseg training checkpoint (``weights_only``) into its parts.

    Raises:
        CheckpointError: if the file is missing, unreadable, or from another tool.
    """
    checkpoint = read_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or not all(k in hparams for k in MODEL_KEYS) or not state:
        raise CheckpointError(f"{path}: not an scseg checkpoint (no scseg model settings)")
    extra = checkpoint.get("scseg", {})
    # The resolved options (defaults as they were at training); older checkpoints only
    # have what the config set.
    architecture = extra.get("architecture") or {
        "spatial_dims": hparams["spatial_dims"],
        "in_channels": hparams["in_channels"],
        "classes": hparams["classes"],
        "attention": hparams["attention"],
        **(hparams.get("model_options") or {}),
    }
    head = state.get("net.head.weight")
    if "head_kernel_size" not in architecture and head is not None and head.ndim > 2:
        # Saved before the option existed, when every head was 1x1.
        architecture = {**architecture, "head_kernel_size": int(head.shape[-1])}
    weights = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    return CheckpointParts(dict(hparams), dict(architecture), weights, dict(extra), checkpoint)


def build_model(
    source: str | Path,
    hparams: dict,
    architecture: dict,
    weights: dict[str, torch.Tensor],
    data_info: dict,
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """The network of ``architecture`` with ``weights`` loaded, in eval mode.

    Raises:
        CheckpointError: naming ``source`` if the weights do not fit the settings.
    """
    if architecture.get("encoder_weights") is not None:
        # The weights given are the trained ones: building with the pretrained ones
        # would download (or read) them only to overwrite them, and fail offline.
        architecture = {**architecture, "encoder_weights": None}
    try:
        net = create_model(hparams["arch"], **architecture)
        net.load_state_dict(weights)
    except (ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{source}: weights do not fit its model settings: {first}") from None
    return LoadedModel(
        net.to(device).eval(),
        hparams["spatial_dims"],
        hparams["in_channels"],
        hparams["classes"],
        hparams,
        data_info,
    )
