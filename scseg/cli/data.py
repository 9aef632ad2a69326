"""``scseg data NAME``: fetch and prepare a sample, or run a ``data_scripts/`` script."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scseg.cli.common import non_negative_int


def add_parser(sub) -> None:
    from scseg.data.samples import ATLASES, sample_names

    data = sub.add_parser(
        "data",
        help="fetch and prepare a dataset: a sample "
        f"({', '.join(sample_names())}) or a data_scripts/ script (msd, oxford_pet, ...)",
    )
    data.add_argument("name")
    data.add_argument("--out", type=Path, default=None, help="data folder")
    data.add_argument(
        "--atlas",
        choices=ATLASES,
        help=f"brain_parcellation3d's parcellation (default {ATLASES[0]})",
    )
    data.add_argument(
        "--native", type=non_negative_int, default=0, help="brain_parcellation3d: also N "
        "subjects moved out of MNI space (rotation, scaling, shift, elastic; recorded) and "
        "split_native.json validating on them",
    )  # fmt: skip
    data.set_defaults(run=run, takes_rest=True)


SCRIPTS = Path(__file__).resolve().parents[2] / "data_scripts"


def run(args: argparse.Namespace, rest: list[str]) -> int:
    from scseg.data.samples import prepare_sample, sample_names

    if args.name in sample_names():
        if rest:
            raise ValueError(f"unexpected arguments for sample {args.name}: {' '.join(rest)}")
        folder = prepare_sample(args.name, args.out, atlas=args.atlas, native=args.native)
        print(f"{args.name}: {folder}")
        return 0
    if args.atlas or args.native:
        option = "--atlas" if args.atlas else "--native"
        raise ValueError(f"{option} is an option of sample brain_parcellation3d, not {args.name}")
    script = SCRIPTS / f"{args.name}.py"
    if args.name.startswith("_") or not script.is_file():
        known = sorted(p.stem for p in SCRIPTS.glob("[!_]*.py")) if SCRIPTS.is_dir() else []
        raise ValueError(
            f"unknown dataset {args.name!r}; samples: {', '.join(sample_names())}; "
            f"scripts in {SCRIPTS}: {', '.join(known) or 'none (not a source checkout)'}"
        )
    import runpy

    sys.argv = [str(script), *(["--out", str(args.out)] if args.out else []), *rest]
    sys.path.insert(0, str(SCRIPTS))
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as done:
        return int(done.code or 0)
    finally:
        sys.path.remove(str(SCRIPTS))
    return 0
