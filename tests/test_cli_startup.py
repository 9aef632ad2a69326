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
        "scseg predict: error: the following arguments are required: --input, --output "
        "(see scseg predict --help)"
    ]
    error = subprocess.run([*run, "predict", "--input", "a", "--output", "b"],
                           capture_output=True, text=True)  # fmt: skip
    assert error.returncode == 2
    assert error.stderr.strip().splitlines() == [
        "scseg predict: error: one of the arguments --checkpoint --model is required "
        "(see scseg predict --help)"
    ]


def test_an_error_is_one_line_after_the_heavy_imports(tmp_path) -> None:
    """scseg evaluate imports torch, MONAI and SMP before it finds the truth folder empty;
    nothing they warn about (timm's deprecated torch.jit.interface) comes before the error."""
    (tmp_path / "pred").mkdir()
    (tmp_path / "truth").mkdir()
    run = [sys.executable, "-m", "scseg.cli", "evaluate", "--prediction", str(tmp_path / "pred"),
           "--truth", str(tmp_path / "truth"), "--out", str(tmp_path / "s.csv")]  # fmt: skip
    out = subprocess.run(run, capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"scseg: error: {tmp_path / 'truth'}: holds no label maps (NIfTI/NRRD volumes or PNG masks)"
    ]
