"""Peak memory of 3D training data against the number of cases: preprocessed volumes kept
in memory (``cache: memory``) or written once to disk (``cache: disk``, MONAI's
PersistentDataset).

Cases: the eight blocks of the real ICBM T1 that ``data_scripts/own_scans.py`` cuts (1 mm,
about 197 x 116 x 47 each), repeated with a little noise so that each file is its own, up
to 160. Each run, in a fresh process: set up the data module (1 mm, z-score), draw one
epoch of training patches (every case loaded and cached) and read every validation
volume; peak RSS of the process, the time, and what the disk cache holds.

    uv run python benchmarks/data_cache_memory.py [--cases 10 40 160]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "data_scripts"))

from common import in_fresh_process, markdown_table, write  # noqa: E402


def build(folder: Path, count: int) -> None:
    """``count`` cases in imagesTr/labelsTr from the eight real blocks, each with its own
    noise (so no two files are equal)."""
    import nibabel as nib
    import numpy as np
    from own_scans import prepare

    source = prepare(folder / "source", quiet=True)
    blocks = sorted(p.name for p in (source / "imagesTr").iterdir())
    rng = np.random.default_rng(0)
    data = folder / "cases"
    for sub in ("imagesTr", "labelsTr"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = blocks[i % len(blocks)]
        image = nib.load(source / "imagesTr" / name)
        noisy = np.asarray(image.dataobj, np.float32) + rng.normal(0, 2, image.shape)
        nib.save(
            nib.Nifti1Image(noisy.astype(np.float32), image.affine),
            data / "imagesTr" / f"case{i:03d}.nii.gz",
        )
        shutil.copy(source / "labelsTr" / name, data / "labelsTr" / f"case{i:03d}.nii.gz")


def _worker(data: str, cases: int, cache: str, cache_dir: str, queue) -> None:
    import torch

    from scseg.data import MSD3DDataModule

    torch.manual_seed(0)
    names = [f"case{i:03d}" for i in range(cases)]
    n_val = max(1, cases // 5)
    split = Path(cache_dir).parent / f"split_{cases}.json"
    split.write_text(json.dumps({"train": names[n_val:], "val": names[:n_val]}))
    dm = MSD3DDataModule(
        data,
        split_file=str(split),
        patch_size=(64, 64, 32),
        spacing=(1.0, 1.0, 1.0),
        intensity="zscore",
        samples_per_volume=2,
        batch_size=2,
        cache=cache,
        cache_dir=cache_dir,
        validate=False,
    )
    start = time.perf_counter()
    dm.setup("fit")
    batches = sum(1 for _ in dm.train_dataloader())
    for i in range(len(dm.val_set)):
        dm.val_set[i]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    on_disk = sum(p.stat().st_size for p in Path(cache_dir).rglob("*.pt")) / 2**20
    queue.put(
        {
            "cases": cases,
            "cache": cache,
            "peak_rss_mib": round(peak),
            "seconds": round(seconds, 1),
            "disk_mib": round(on_disk),
            "batches": batches,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[10, 40, 160])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder, max(args.cases))
        for cases in args.cases:
            for cache in ("memory", "disk"):
                cache_dir = folder / f"cache_{cases}_{cache}"
                row = in_fresh_process(_worker, str(folder / "cases"), cases, cache, str(cache_dir))
                print(row, flush=True)
                rows.append(row)
    table = markdown_table(
        ["cases", "cache", "peak RSS (MiB)", "seconds", "on disk (MiB)"],
        [[r["cases"], r["cache"], r["peak_rss_mib"], r["seconds"], r["disk_mib"]] for r in rows],
    )
    meta = {
        "volume": "197 x 116 x 47 at 1 mm (blocks of the ICBM 2009a T1)",
        "work": "setup + one epoch of training patches + every validation volume",
    }
    for path in write("data_cache_memory", rows, table, meta):
        print(path)
    print(table)


if __name__ == "__main__":
    main()
