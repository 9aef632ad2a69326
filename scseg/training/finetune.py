"""Starting a network from a trained one (``model.init_from``): a checkpoint or a package.

Every tensor whose name and shape match is loaded. Where the new task differs:

* other classes: the segmentation heads (main and deep-supervision) keep their fresh
  initialisation, except for the classes both models name alike: once the data's class
  names are known (:func:`match_heads`, at setup), each head row goes to the class of
  the same name, so a reordered or extended class list keeps what was learnt per class;
* other input channels: the first convolution gets the mean of the old filters over their
  input channels, repeated for each new channel and scaled by ``old / new`` so the summed
  response keeps its size (timm's ``adapt_input_conv`` for pretrained encoders does the
  same for 3 -> N channels; for 1 channel it is the sum of the old filters);
* anything else whose shape differs is left as initialised, and reported.

Mixing dimensions (a 3D model to start a 2D one) or architectures is refused in one line.
A 2D model trained slice by slice and one trained on images are the same network: either
may start the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

# the share of the new network's weights (heads apart) that must come from the source
MIN_TAKEN = 0.5
# the per-class output layers: the main head and the deep-supervision heads
HEAD_PREFIXES = ("head.", "aux_heads.")


@dataclass
class InitReport:
    """What ``init_from`` did to each tensor of the new network, by name."""

    source: Path
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # the source's class names, and per head tensor its (source, fresh) values, until
    # match_heads has put each row where its class name says
    source_names: list[str] | None = None
    heads: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    @property
    def taken(self) -> list[str]:
        """Names whose values came from the source (loaded as they were, or adapted)."""
        return self.loaded + self.adapted

    def rows(self, state: dict[str, torch.Tensor]) -> list[tuple[str, int, int, str]]:
        """``(what, tensors, parameters, examples)`` rows for the printed table."""

        def row(what: str, names: list[str]) -> tuple[str, int, int, str]:
            count = sum(state[n].numel() for n in names)
            shown = names[0] + (f" (+{len(names) - 1})" if len(names) > 1 else "") if names else ""
            return what, len(names), count, shown

        skipped = [n for n, _ in self.skipped]
        return [
            row("loaded", self.loaded),
            row("adapted (input channels)", self.adapted),
            row("re-initialised (classes)", self.reinitialised),
            row("not loaded", skipped),
        ]


def open_source(path: str | Path):
    """The :class:`~scseg.inference.checkpoint.LoadedModel` of a checkpoint or package."""
    from scseg.inference.checkpoint import load_model
    from scseg.inference.package import is_package, read_package

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: model.init_from not found")
    return read_package(path) if is_package(path) else load_model(path)


def init_from(
    net: nn.Module, path: str | Path, arch: str, spatial_dims: int, in_channels: int, classes: int
) -> InitReport:
    """Loads into ``net`` what fits of the model at ``path`` (see the module's rules).

    Raises:
        ValueError: the source has other dimensions or another architecture, or no tensor
            of it fits; the message names the file.
    """
    path = Path(path)
    source = open_source(path)
    prefix = f"model.init_from {path}"
    if source.spatial_dims != spatial_dims:
        raise ValueError(
            f"{prefix}: a {source.spatial_dims}D model cannot start a "
            f"{spatial_dims}D one (weights are never mixed across dimensions)"
        )
    if source.hparams["arch"] != arch:
        raise ValueError(
            f"{prefix}: a {source.hparams['arch']!r} model cannot start an {arch!r} one"
        )
    report = InitReport(path)
    source_net = source.net
    members = getattr(source_net, "members", None)
    if members is not None:  # a package of several folds: the first one
        source_net = members[0]
        report.notes.append(f"{len(members)} folds in {path.name}: started from fold 0")
    theirs = source_net.state_dict()
    mine = net.state_dict()
    update: dict[str, torch.Tensor] = {}
    if source.data_info.get("class_names"):
        report.source_names = list(source.data_info["class_names"])
    for name, tensor in mine.items():
        old = theirs.get(name)
        if (
            name.startswith(HEAD_PREFIXES)
            and old is not None
            and old.shape[1:] == tensor.shape[1:]
            and (old.shape[0], tensor.shape[0]) == (source.classes, classes)
        ):
            report.heads[name] = (old.clone(), tensor.clone())
        if old is None:
            report.skipped.append((name, "not in the source"))
        elif old.shape == tensor.shape:
            update[name] = old
            report.loaded.append(name)
        elif _is_first_conv(old, tensor, source.in_channels, in_channels, spatial_dims):
            update[name] = adapt_input_channels(old, in_channels)
            report.adapted.append(name)
        elif _is_head(old, tensor, source.classes, classes):
            report.reinitialised.append(name)
        else:
            report.skipped.append((name, f"shape {tuple(old.shape)} -> {tuple(tensor.shape)}"))
    # Past the heads, most of the network should come from the source: a few matching
    # biases are no start at all, and more likely the wrong file.
    body = sum(v.numel() for k, v in mine.items() if k not in report.reinitialised)
    taken = sum(mine[k].numel() for k in report.taken)
    if taken < MIN_TAKEN * body:
        raise ValueError(
            f"{prefix}: only {taken / max(body, 1):.0%} of this model's weights "
            "fit it (other widths or depth?)"
        )
    net.load_state_dict(update, strict=False)
    return report


def match_heads(net: nn.Module, report: InitReport, names: list[str] | None) -> None:
    """Puts each head row of the source where the new data's class of the same name is
    (fresh rows for classes the source does not name), once the names are known. Without
    names on either side, heads stay as :func:`init_from` left them (loaded where the
    class counts match). Runs once: the stored values are dropped after.
    """
    heads, report.heads = report.heads, {}
    source = report.source_names
    if not heads or not source or not names or list(source) == list(names):
        return
    where = {name: j for j, name in enumerate(source)}
    state = {}
    for key, (old, fresh) in heads.items():
        new = fresh.clone()
        for i, name in enumerate(names):
            if name in where:
                new[i] = old[where[name]]
        state[key] = new
    net.load_state_dict(state, strict=False)
    kept = [name for name in names if name in where]
    moved = sum(1 for i, name in enumerate(names) if name in where and where[name] != i)
    report.notes.append(
        f"class names differ from the source's: head rows matched by name ({len(kept)} of "
        f"{len(names)} classes from the source, {moved} moved; the others fresh)"
    )
    for key in heads:
        if key in report.loaded:
            report.loaded.remove(key)
        if key not in report.reinitialised:
            report.reinitialised.append(key)


def adapt_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A first convolution's ``(out, in, *k)`` weight for ``channels`` inputs: the mean over
    the old inputs, repeated, times ``in / channels``."""
    mean = weight.mean(1, keepdim=True)
    return mean.repeat(1, channels, *[1] * (weight.ndim - 2)) * (weight.shape[1] / channels)


def _is_first_conv(old: torch.Tensor, new: torch.Tensor, c_old: int, c_new: int, dims: int) -> bool:
    return (
        new.ndim == dims + 2
        and old.ndim == new.ndim
        and old.shape[0] == new.shape[0]
        and old.shape[2:] == new.shape[2:]
        and (old.shape[1], new.shape[1]) == (c_old, c_new)
    )


def _is_head(old: torch.Tensor, new: torch.Tensor, k_old: int, k_new: int) -> bool:
    return (
        k_old != k_new
        and old.ndim == new.ndim
        and (old.shape[0], new.shape[0]) == (k_old, k_new)
        and old.shape[1:] == new.shape[1:]
    )


def print_report(report: InitReport, state: dict[str, torch.Tensor]) -> None:
    """The short table of what was and was not loaded."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"model.init_from {report.source}", title_justify="left")
    for column in ("", "tensors", "parameters", "for example"):
        table.add_column(column, justify="right" if column in ("tensors", "parameters") else "left")
    for what, tensors, parameters, shown in report.rows(state):
        table.add_row(what, str(tensors), f"{parameters:,}", shown)
    console = Console()
    console.print(table)
    for note in report.notes:
        console.print(note)
