"""``scseg predict --devices N``: disjoint shares, outputs equal to one process, a rerun
that resumes, one summary; and the process layout read from torchrun/SLURM variables."""

from __future__ import annotations

import os
import subprocess
import sys

import highdicom as hd
import nibabel as nib
import numpy as np
import pytest
import torch

from scseg.cli import main
from scseg.inference.distributed import is_launched, launch_layout, share

from ..conftest import REPO
from ..data.test_dicom import sample_crop
from ..dicom_series import write_series


def _scseg(*args, timeout: int = 600) -> subprocess.CompletedProcess:
    """The CLI in a process of its own, as a user starts it."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "LOCAL_RANK", "RANK")}
    env["OMP_NUM_THREADS"] = "1"  # each of the 2 processes one core, as the 1-process run
    return subprocess.run([sys.executable, "-m", "scseg.cli", *[str(a) for a in args]],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def _outputs(folder) -> dict[str, object]:
    """Every output's content that must not depend on the process count."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".nii.gz"):
            image = nib.load(path)
            found[path.name] = (image.affine, np.asarray(image.dataobj))
        elif path.suffix == ".dcm":  # new UIDs every run; the frames and segments must agree
            seg = hd.seg.segread(path)
            found[path.name] = (seg.get_volume(combine_segments=True).array,
                                [s.SegmentLabel for s in seg.SegmentSequence])  # fmt: skip
        else:
            found[path.name] = path.read_bytes()
    return found


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        for x, y in zip(*(v if isinstance(v, tuple) else (v,) for v in (a[name], b[name])),
                        strict=True):  # fmt: skip
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y, err_msg=name)
            else:
                assert x == y, name


@pytest.fixture
def one_thread():
    """One process predicts here with the thread count each of the two spawned ones gets:
    on the CPU the thread count decides the order of the convolutions' sums, so the last
    bits of the probabilities (and, once in a few million voxels, a near-tie label)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.xdist_group("slow_same_result")
def test_two_processes_predict_what_one_does(ckpt_3d, tmp_path, one_thread) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for z in (40, 70, 100):  # three crops of the real T1 template, and one as a series
        nib.save(nib.Nifti1Image(*sample_crop((74, 90, z))), inputs / f"crop{z}.nii.gz")
    write_series(*sample_crop((70, 80, 60)), inputs / "series")
    args = ("predict", "--quiet", "--checkpoint", ckpt_3d, "--input", inputs)
    assert main([*map(str, args), "--output", str(tmp_path / "one")]) == 0
    one = _outputs(tmp_path / "one")
    assert len(one) == 8

    two = tmp_path / "two"
    done = _scseg(*args, "--output", two, "--devices", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("input(s) predicted") == 1  # process 0 reports for both
    assert f"4 of 4 input(s) predicted into {two}" in done.stdout
    _assert_same(_outputs(two), one)

    # a crash that lost two cases' outputs, and a bad input added: the rerun redoes the
    # two, keeps the others, reports the bad one once and counts every input once
    for lost in ("crop40", "series"):
        for path in two.glob(f"{lost}.*"):
            path.unlink()
    (inputs / "bad.nii.gz").write_bytes(b"not a volume")
    done = _scseg(*args, "--output", two, "--devices", "2")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "2 of 5 input(s) predicted" in done.stdout
    assert "2 kept (outputs already there)" in done.stdout
    failed = [ln.strip() for ln in done.stderr.splitlines() if ln.startswith(f"  {inputs}")]
    assert len(failed) == 1
    assert failed[0].startswith(f"{inputs / 'bad.nii.gz'}: cannot read volume header (")
    assert "scseg: error: 1 input(s) failed:" in done.stderr and "Traceback" not in done.stderr
    _assert_same(_outputs(two), one)


def test_shares_are_disjoint_and_cover_every_input() -> None:
    inputs = [f"case{i}" for i in range(11)]
    shares = [share(inputs, rank, 3) for rank in range(3)]
    assert sorted(name for part in shares for name in part) == sorted(inputs)
    assert [len(s) for s in shares] == [4, 4, 3]


@pytest.mark.parametrize(
    "env, given, expected",
    [
        ({}, (None, None), (1, 1)),
        ({}, (4, 2), (4, 2)),
        ({"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}, (None, None), (4, 2)),  # torchrun
        ({"SLURM_NTASKS": "6", "SLURM_NNODES": "3"}, (None, None), (2, 3)),
        ({"SLURM_NTASKS_PER_NODE": "2(x3)", "SLURM_NNODES": "3"}, (None, None), (2, 3)),
        ({"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}, (2, None), (2, 2)),  # given wins
    ],
)
def test_launch_layout(env, given, expected) -> None:
    assert launch_layout(*given, env=env) == expected


def test_launch_layout_bad_environment() -> None:
    with pytest.raises(ValueError, match="environment variable LOCAL_WORLD_SIZE='four'"):
        launch_layout(None, None, env={"LOCAL_WORLD_SIZE": "four"})


def test_is_launched() -> None:
    assert not is_launched({})
    assert not is_launched({"SLURM_NTASKS": "4"})  # an sbatch script, before srun
    assert is_launched({"SLURM_STEP_NUM_TASKS": "4"})
    assert is_launched({"WORLD_SIZE": "2"})


def test_several_processes_need_a_device_kind(ckpt_3d, tmp_path, capsys) -> None:
    args = ["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--devices", "2"]
    code = main(["predict", "--checkpoint", str(ckpt_3d), *args, "--device", "cuda:1"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err == ("scseg: error: --device cuda:1: with several processes give cpu or cuda "
                   "(each process takes its own GPU)")  # fmt: skip


@pytest.mark.slow
@pytest.mark.xdist_group("slow_same_result")
def test_defect5_outputs_in_the_input_tree_are_not_inputs(ckpt_3d, tmp_path) -> None:
    """Review defect 5: with the output folder inside the input tree and DICOM-SEG out,
    each process listed the inputs itself, and a slower one could take a SEG that a faster
    one had just written for a new series. Process 0 now lists once for all, and
    find_series skips Segmentation objects: a rerun finds the same two inputs."""
    from scseg.io.dicom import find_series

    inputs = tmp_path / "study"
    write_series(*sample_crop((74, 90, 40)), inputs / "a")
    write_series(*sample_crop((74, 90, 100)), inputs / "b")
    out = inputs / "segmentations"
    args = ("predict", "--quiet", "--checkpoint", ckpt_3d, "--input", inputs, "--output", out,
            "--format", "dicom-seg", "--devices", "2")  # fmt: skip
    done = _scseg(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"2 of 2 input(s) predicted into {out}" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["a_seg.dcm", "b_seg.dcm"]
    assert [s.name for s in find_series(inputs)] == ["a", "b"]  # the SEGs are not series
    done = _scseg(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "0 of 2 input(s) predicted" in done.stdout and "2 kept" in done.stdout


FAILING_PROCESS = """
import os, sys
import scseg.cli.predict as cli_predict

real = cli_predict._prepare_prediction
STAGE = os.environ["FAIL_STAGE"]


def failing(args, device, quiet, listing):
    if os.environ.get("LOCAL_RANK") == "1" and STAGE == "load":
        raise ValueError(f"{args.checkpoint[0]}: cannot read it on this machine (injected)")
    inputs, predict = real(args, device, quiet, listing)

    def predict_or_fail(part):
        if os.environ.get("LOCAL_RANK") == "1":
            raise MemoryError("out of memory (injected)")
        return predict(part)

    return inputs, predict_or_fail


cli_predict._prepare_prediction = failing
from scseg.cli import main

sys.exit(main())
"""


@pytest.mark.parametrize("stage", ["load", "predict"])
def test_one_failing_process_is_reported_and_none_hangs(stage, ckpt_3d, tmp_path) -> None:
    """Process 1 failing at load once left process 0 predicting alone, then dying in
    gloo (exit 134) with no summary; process 1's cause was never shown."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for z in (40, 70):
        nib.save(nib.Nifti1Image(*sample_crop((40, 40, z))), inputs / f"crop{z}.nii.gz")
    script = tmp_path / "failing.py"
    script.write_text(FAILING_PROCESS)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "LOCAL_RANK", "RANK")}
    env.update(OMP_NUM_THREADS="1", FAIL_STAGE=stage, PYTHONPATH=str(REPO))
    args = ["predict", "--quiet", "--checkpoint", str(ckpt_3d), "--input", str(inputs),
            "--output", str(tmp_path / "out"), "--devices", "2"]  # fmt: skip
    done = subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("scseg: error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    if stage == "load":
        assert errors[0] == (f"scseg: error: process 1 of 2 could not prepare the prediction: "
                             f"{ckpt_3d}: cannot read it on this machine (injected)")  # fmt: skip
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    else:
        assert errors[0].startswith("scseg: error: process 1 of 2 stopped while predicting")
        assert "MemoryError: out of memory (injected)" in errors[0]
