"""Regenerates what a reader sees without running anything:

- the notebooks in ``notebooks/``, executed in full and saved with their outputs (figures
  inline, the volume slider's state), so GitHub shows them;
- ``docs/attention_2d_sse.png``, the README's figure (from the 2D notebook);
- ``docs/attention_report_2d.png`` and ``docs/attention_report_3d.png``: screenshots, in
  headless Chromium, of ``scseg attention --html`` for a nuclei tile and the brain-tissue
  volume, from the 2D and 3D quickstart checkpoints (trained into ``runs/docs/`` unless
  given or already there).

    uv run python docs/make_figures.py     # about 25 min on two CPU cores
    uv run python docs/make_figures.py --checkpoint-2d A.ckpt --checkpoint-3d B.ckpt

The screenshots need Chromium and ChromeDriver (Debian: ``apt-get install chromium
chromium-driver``), as ``tests/test_attention_report.py`` does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
from tests.notebook_client import PollingNotebookClient  # noqa: E402  (nbclient#312)

NOTEBOOKS = ("attention_2d", "attention_3d", "attention_classes")


def run_notebook(name: str, figures: Path) -> None:
    """Executes ``notebooks/<name>.ipynb`` in place with its default settings."""
    path = REPO / "notebooks" / f"{name}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    os.environ["SCSEG_NB_FIGURES"] = str(figures)
    PollingNotebookClient(notebook, timeout=3600, resources={"metadata": {"path": str(figures)}},
                   store_widget_state=True).execute()  # fmt: skip
    nbformat.write(notebook, path)
    print(path, f"{path.stat().st_size / 1e6:.2f} MB")


def train(config: str, retrain: bool) -> Path:
    """The config's last checkpoint under ``runs/docs/``, trained unless it is there."""
    root = REPO / "runs" / "docs" / Path(config).stem
    last = root / "checkpoints" / "last.ckpt"
    if retrain or not last.exists():
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "scseg.cli", "fit", "--config", str(REPO / config),
                        "--trainer.default_root_dir", str(root)], check=True, cwd=REPO)  # fmt: skip
    return last


def screenshot(page: Path, target: Path) -> None:
    """The page in headless Chromium, the whole page height, as a PNG."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM") or shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                 "--hide-scrollbars"):  # fmt: skip
        options.add_argument(flag)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        browser.get(page.as_uri())
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 1400, "height": min(int(height), 2400), "deviceScaleFactor": 1,
            "mobile": False})  # fmt: skip
        browser.save_screenshot(str(target))
    finally:
        browser.quit()
    print(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-2d", type=Path, help="a quickstart_2d checkpoint")
    parser.add_argument("--checkpoint-3d", type=Path, help="a quickstart_3d checkpoint")
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--retrain", action="store_true",
                        help="train the quickstarts again even if runs/docs/ has them")  # fmt: skip
    args = parser.parse_args()
    from scseg.cli import main as scseg
    from scseg.data.samples import prepare_sample

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_notebooks:
            for name in NOTEBOOKS:
                run_notebook(name, tmp)
            shutil.copy(tmp / "attention_2d_sse.png", HERE / "attention_2d_sse.png")
        ckpt_2d = args.checkpoint_2d or train("configs/quickstart_2d.yaml", args.retrain)
        ckpt_3d = args.checkpoint_3d or train("configs/quickstart_3d.yaml", args.retrain)
        tile = sorted((prepare_sample("nuclei2d") / "images").glob("*.tif"))[-1]
        volume = prepare_sample("brain_tissue3d") / "imagesTr" / "icbm_superior.nii.gz"
        for dims, ckpt, source in (("2d", ckpt_2d, tile), ("3d", ckpt_3d, volume)):
            out = tmp / f"report_{dims}"
            code = scseg(["attention", "--checkpoint", str(ckpt), "--input", str(source),
                          "--output", str(out), "--html"])  # fmt: skip
            if code:
                raise SystemExit(f"scseg attention failed for {source}")
            page = next(out.glob("*_attention.html"))
            screenshot(page, HERE / f"attention_report_{dims}.png")


if __name__ == "__main__":
    main()
