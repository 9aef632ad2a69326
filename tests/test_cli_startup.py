"""The command line answers help and usage errors without importing the heavy libraries."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_cli_and_building_its_parser_imports_no_torch() -> None:
    code = (
        "import sys, scseg, scseg.cli; scseg.cli.build_parser(); "
        "heavy = ('torch', 'monai', 'lightning', 'albumentations', 'nibabel', 'torchvision'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_and_usage_errors_print_without_a_model() -> None:
    run = [sys.executable, "-m", "scseg.cli"]
    help_out = subprocess.run([*run, "predict", "--help"], capture_output=True, text=True)
    assert help_out.returncode == 0 and "--sw-batch-size" in help_out.stdout
    error = subprocess.run([*run, "predict"], capture_output=True, text=True)
    assert error.returncode == 2
    assert error.stderr.strip().splitlines() == [
        "scseg predict: error: the following arguments are required: --checkpoint, --input, "
        "--output (see scseg predict --help)"
    ]
