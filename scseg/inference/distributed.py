"""Prediction spread over processes and machines: each process takes a disjoint share.

Lightning Fabric starts the processes (``--devices N``: N local processes, one per GPU or
CPU share) or joins those a launcher started (``torchrun``, ``srun``: Fabric reads their
environment). Process ``r`` of ``W`` predicts inputs ``r, r + W, r + 2W, ...`` of the
sorted list, so shares are disjoint and each input is predicted exactly as one process
would; a rerun keeps finished outputs, so a crashed run is resumed by running it again.
A process that fails (loading the model, or any error while predicting its share) says
so to the others through the same collective calls they are waiting in, so no process
waits for it, and process 0 reports every failed process and its error.
Every process needs the same view of the input and output folders (a shared file
system across machines).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from scseg.inference.runner import PredictSummary, Source


def launch_layout(
    devices: int | None, num_nodes: int | None, env: Mapping[str, str] | None = None
) -> tuple[int, int]:
    """Processes per machine and machines: as given, else from a launcher's environment
    (torchrun: ``LOCAL_WORLD_SIZE``/``WORLD_SIZE``; SLURM: ``SLURM_NTASKS_PER_NODE`` or
    ``SLURM_NTASKS``/``SLURM_NNODES``), else one process.

    Raises:
        ValueError: for a count below 1 or an environment value that is not a number.
    """
    env = os.environ if env is None else env

    def number(name: str) -> int | None:
        value = env.get(name)
        if value in (None, ""):
            return None
        try:  # SLURM writes e.g. "2(x3)" for 2 tasks on each of 3 nodes
            return int(str(value).split("(")[0])
        except ValueError:
            raise ValueError(f"environment variable {name}={value!r} is not a number") from None

    world, local = number("WORLD_SIZE"), number("LOCAL_WORLD_SIZE")
    tasks, nodes = number("SLURM_NTASKS"), number("SLURM_NNODES")
    if devices is None:
        per_node = number("SLURM_NTASKS_PER_NODE")
        if local:
            devices = local
        elif per_node:
            devices = per_node
        elif tasks and nodes:
            devices = max(1, tasks // nodes)
        else:
            devices = 1
    if num_nodes is None:
        num_nodes = max(1, world // local) if world and local else nodes or 1
    if devices < 1 or num_nodes < 1:
        raise ValueError(f"devices and num_nodes must be at least 1, got {devices}, {num_nodes}")
    return devices, num_nodes


def share(inputs: Sequence[Source], rank: int, world_size: int) -> list[Source]:
    """This process's inputs: every ``world_size``-th, starting at ``rank``."""
    return list(inputs[rank::world_size])


Prepare = Callable[
    [str, bool, bool], tuple[Sequence[Source] | None, Callable[[list[Source]], PredictSummary]]
]


def predict_spread(
    run: Prepare,
    accelerator: str,
    devices: int,
    num_nodes: int,
    quiet: bool = False,
) -> PredictSummary | None:
    """Starts (or joins) the processes and predicts this one's share.

    Process 0 alone lists the inputs, before any process writes, and sends the list to the
    others: each listing the folder itself, a slower process could see outputs a faster
    one had just written there (a DICOM-SEG in the input tree) as new inputs, and the
    shares would no longer be disjoint and complete.

    Args:
        run: called in every process with its device, whether to stay quiet and whether
            to list the inputs (process 0); loads the model and returns the inputs, listed
            and checked (``None`` where not listed), with a function that predicts a list
            of them.
        accelerator: ``"cpu"`` or ``"cuda"`` (``"gpu"``).
        devices, num_nodes: the layout (:func:`launch_layout`).
        quiet: no progress bar at all (otherwise process 0 shows its own).

    Returns:
        in process 0, the summary of every process's share; ``None`` elsewhere.
    """
    import torch.distributed as dist
    from lightning.fabric import Fabric

    fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                    strategy="ddp")  # fmt: skip
    fabric.launch()
    rank, world = fabric.global_rank, fabric.world_size
    inputs, predict = None, None
    try:
        inputs, predict = run(str(fabric.device), quiet or rank != 0, rank == 0)
    except Exception as err:  # every process learns of it below: none waits forever
        failure = err
    else:
        failure = None
    _raise_any(_gathered(failure, world), "could not prepare the prediction")
    sent = [inputs]
    dist.broadcast_object_list(sent, src=0)
    inputs = sent[0]
    try:
        mine: PredictSummary | Exception = predict(share(inputs, rank, world))
    except Exception as err:  # gathered as the result, so the others do not wait
        mine = err
    gathered: list[PredictSummary | Exception | None] = [None] * world
    dist.all_gather_object(gathered, _picklable(mine))
    _raise_any(
        [g if isinstance(g, Exception) else None for g in gathered],
        "stopped while predicting (outputs written are kept: run again to resume)",
    )
    if rank != 0:
        return None
    total = PredictSummary()
    for part in gathered:
        total.merge(part)
    position = {source: i for i, source in enumerate(inputs)}  # report in input order
    total.done.sort(key=position.__getitem__)
    total.kept.sort(key=position.__getitem__)
    total.failures.sort(key=lambda failure: position[failure[0]])
    return total


class SpreadError(RuntimeError):
    """One or more processes failed; the message names each and its error."""


def _picklable(value):
    """``value``, or for an exception one that pickles (its type name and message)."""
    if isinstance(value, Exception):
        return SpreadError(f"{type(value).__name__}: {value}" if not isinstance(
            value, (ValueError, OSError)) else str(value))  # fmt: skip
    return value


def _gathered(failure: Exception | None, world: int) -> list[Exception | None]:
    """Every process's failure (``None`` where it succeeded), in rank order."""
    import torch.distributed as dist

    gathered: list = [None] * world
    dist.all_gather_object(gathered, _picklable(failure))
    return gathered


def _raise_any(failures: Sequence[Exception | None], what: str) -> None:
    """Raises in every process when any failed: a :class:`SpreadError` that names each
    failed process and its error, so process 0 (which reports) shows them all."""
    failed = [(r, err) for r, err in enumerate(failures) if err is not None]
    if not failed:
        return
    world = len(failures)
    if len(failed) == 1:
        r, err = failed[0]
        raise SpreadError(f"process {r} of {world} {what}: {err}")
    lines = "; ".join(f"process {r}: {err}" for r, err in failed)
    raise SpreadError(f"{len(failed)} of {world} processes {what}: {lines}")


def is_launched(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process is one of several that a launcher started: torchrun
    (``WORLD_SIZE``) or srun (``SLURM_STEP_NUM_TASKS``, set for the tasks of a step, not
    for the batch script itself)."""
    env = os.environ if env is None else env
    counts = (env.get("WORLD_SIZE"), env.get("SLURM_STEP_NUM_TASKS"))
    return any(str(c).isdigit() and int(c) > 1 for c in counts)
