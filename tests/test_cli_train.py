"""``scseg fit/validate/test`` from the real configs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from scseg.cli import main

from .conftest import REPO

CONFIGS = REPO / "configs"
QUICK_2D = str(CONFIGS / "quickstart_2d.yaml")


def _metrics(root: Path) -> list[dict]:
    (path,) = sorted(root.glob("logs/version_*/metrics.csv"))[-1:]
    with open(path) as f:
        return list(csv.DictReader(f))


def _last_val(rows: list[dict], key: str = "val/dice_mean") -> float:
    return [float(r[key]) for r in rows if r.get(key)][-1]


def test_quickstart_2d_fast_dev_run_with_each_attention(data_env, tmp_path) -> None:
    for attention in ("none", "cse", "sse", "scse"):
        root = tmp_path / attention
        code = main(
            ["fit", "--config", QUICK_2D, "--trainer.fast_dev_run", "true",
             "--trainer.default_root_dir", str(root), "--model.attention", attention,
             "--data.init_args.num_workers", "0"]
        )  # fmt: skip
        assert code == 0


def test_quickstart_3d_fast_dev_run(data_env, tmp_path) -> None:
    code = main(
        ["fit", "--config", str(CONFIGS / "quickstart_3d.yaml"), "--trainer.fast_dev_run", "true",
         "--trainer.default_root_dir", str(tmp_path), "--data.init_args.repeats", "1",
         "--data.init_args.samples_per_volume", "1", "--data.init_args.batch_size", "1"]
    )  # fmt: skip
    assert code == 0


@pytest.mark.slow
@pytest.mark.xdist_group("slow_configs")
def test_quickstart_2d_reaches_dice_on_held_out_region(data_env, tmp_path) -> None:
    """The real config, unchanged: trains on the left three quarters of the nuclei image and
    is validated on the right quarter."""
    assert main(["fit", "--config", QUICK_2D, "--trainer.default_root_dir", str(tmp_path)]) == 0
    dice = _last_val(_metrics(tmp_path), "val/dice/nucleus")
    assert dice > 0.75, f"foreground Dice {dice:.3f}"
    # The resolved config is saved with the run, and checkpoints load without unpickling.
    assert list(tmp_path.glob("logs/version_*/config.yaml"))
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["scseg"]["data_info"]["class_names"] == ["background", "nucleus"]
    # validate and test from the saved best checkpoint, in a fresh CLI
    (best,) = tmp_path.glob("checkpoints/best-*.ckpt")
    for command in ("validate", "test"):
        args = [command, "--config", QUICK_2D, "--trainer.default_root_dir", str(tmp_path)]
        assert main([*args, "--ckpt_path", str(best)]) == 0


def test_resume_from_last(data_env, tmp_path) -> None:
    common = ["--config", QUICK_2D, "--trainer.default_root_dir", str(tmp_path),
              "--data.init_args.repeats", "1", "--trainer.limit_val_batches", "1"]  # fmt: skip
    assert main(["fit", *common, "--trainer.max_epochs", "1"]) == 0
    first = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert main(["fit", *common, "--trainer.max_epochs", "2", "--ckpt_path", "last"]) == 0
    second = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["epoch"] == 0 and second["epoch"] == 1
    assert second["global_step"] == 2 * first["global_step"]  # continued, not restarted
    rows = _metrics(tmp_path)
    assert {r["epoch"] for r in rows} == {"1"}  # the resumed run logged only epoch 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--model.atention", "sse"], "atention"),
        (["--model.lr", "fast"], "lr"),
        (["--data.init_args.patch_sise", "[64, 64]"], "patch_sise"),
    ],
)
def test_bad_config_stops_with_clear_message(tmp_path, capsys, override, message) -> None:
    code = main(["fit", "--config", QUICK_2D, "--trainer.default_root_dir", str(tmp_path),
                 *override])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    # one line, not the ~80 lines of usage LightningCLI prints
    assert err.count("\n") == 1 and err.startswith("scseg fit: error: ")


def test_mismatched_model_and_data_is_a_clear_error(data_env, tmp_path, capsys) -> None:
    code = main(
        ["fit", "--config", QUICK_2D, "--trainer.default_root_dir", str(tmp_path),
         "--model.classes", "3", "--trainer.fast_dev_run", "true"]
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "model.classes=3 but data.classes=2" in err and "Traceback" not in err


def test_data_class_path_is_restricted(tmp_path, capsys) -> None:
    """Only subclasses of scseg's data module base can be named in a config."""
    code = main(["fit", "--config", QUICK_2D, "--trainer.default_root_dir", str(tmp_path),
                 "--data", "lightning.pytorch.demos.boring_classes.BoringDataModule"])  # fmt: skip
    assert code == 2
    assert "SegmentationDataModule" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--checkpoint", "c", "--input", "i", "--output", "o", "--overlap", "1.5"],
         "argument --overlap: must be in [0, 1), got 1.5"),
        (["predict", "--checkpoint", "c", "--input", "i", "--output", "o", "--sw-batch-size", "0"],
         "argument --sw-batch-size: must be at least 1, got 0"),
        (["predict", "--checkpoint", "c", "--input", "i", "--output", "o", "--roi-size", "0"],
         "argument --roi-size: must be at least 1, got 0"),
        (["export", "--checkpoint", "c", "--format", "onnx", "--output", "m", "--shape", "0"],
         "argument --shape: must be at least 1, got 0"),
    ],
)  # fmt: skip
def test_bad_option_values_name_the_option(args, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
