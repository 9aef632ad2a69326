"""``scseg attention --html``: one self-contained page, checked in a real headless browser
(Chromium driven by Selenium through ChromeDriver): it loads with no console error, every
canvas shows a non-blank image, and moving the slice slider changes the shown slice.

The browser: Debian's ``chromium`` and ``chromium-driver`` packages (``.ci/run`` installs
them with apt-get where it runs as root); elsewhere set ``CHROMIUM`` and ``CHROMEDRIVER``
to the two programs. Without them the browser tests skip and say so.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil

import numpy as np
import pytest

from scseg.attention_report import report_html
from scseg.cli import main


def _browser_paths() -> tuple[str | None, str | None]:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return chromium, driver


@pytest.fixture(scope="module")
def browser():
    chromium, driver = _browser_paths()
    if not (chromium and driver):
        pytest.skip("no Chromium/ChromeDriver: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1200"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


def _payload(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="scseg-data">(.*?)</script>', page, re.S)
    assert found, "the page embeds its data"
    return json.loads(found.group(1))


def test_page_is_self_contained_and_carries_the_arrays() -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(12, 10, 8)).astype(np.float32)
    prediction = (image > 0).astype(np.int64) * 2
    gate = rng.uniform(size=image.shape)
    page = report_html(image, prediction, [gate, None], [rng.uniform(size=6), None],
                       title="t <b>", class_names=["bg", "a", "b"], spacing=(1, 1, 3))  # fmt: skip
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "no network resource"
    assert "t &lt;b&gt;" in page and "2: b" in page
    data = _payload(page)
    assert data["shape"] == [12, 10, 8] and data["spacing"] == [1.0, 1.0, 3.0]
    assert [p["name"] for p in data["planes"]] == ["axial", "coronal", "sagittal"]
    decoded = np.frombuffer(base64.b64decode(data["prediction"]), np.uint8).reshape(12, 10, 8)
    np.testing.assert_array_equal(decoded, prediction)
    sse = np.frombuffer(base64.b64decode(data["blocks"][0]["data"]), np.uint8).reshape(12, 10, 8)
    np.testing.assert_array_equal(sse, np.round(gate * 255))
    assert len(data["blocks"]) == 1 and page.count('<figure class="cse">') == 1
    with pytest.raises(ValueError, match="sSE map 0 has shape"):
        report_html(image, prediction, [gate[:3]], [], title="x")


def _canvas_state(browser) -> list[dict]:
    return browser.execute_script(
        """return Array.from(document.querySelectorAll('canvas')).map(c => {
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let sum = 0, sq = 0, n = d.length / 4;
             for (let i = 0; i < d.length; i += 4) { sum += d[i]; sq += d[i] * d[i]; }
             const mean = sum / n;
             return {layer: c.dataset.layer, width: c.width, height: c.height,
                     std: Math.sqrt(sq / n - mean * mean), url: c.toDataURL()}; });"""
    )


def _drawn_canvases(browser, least: int = 3) -> list[dict]:
    """:func:`_canvas_state` once the page has drawn at least ``least`` canvases, each with
    some contrast (up to 30 s: under load the page's script can still be running when
    ``browser.get`` returns); what it last saw otherwise, for the caller's assertion."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    seen: list[dict] = []

    def ready(b) -> bool:
        seen[:] = _canvas_state(b)
        return len(seen) >= least and all(c["std"] > 1 for c in seen)

    with contextlib.suppress(TimeoutException):
        WebDriverWait(browser, 30, poll_frequency=0.25).until(ready)
    return seen


def _severe(browser) -> list[dict]:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_html_report_in_a_browser(browser, ckpt_2d, ckpt_3d, data_env, tmp_path, capsys) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    tile = sorted((data_env / "datasets" / "nuclei2d" / "images").glob("*.tif"))[0]
    volume = data_env / "datasets" / "brain_tissue3d" / "imagesTr" / "icbm_superior.nii.gz"
    for ckpt, source in ((ckpt_2d, tile), (ckpt_3d, volume)):
        args = ["attention", "--checkpoint", str(ckpt), "--input", str(source), "--output",
                str(tmp_path), "--html"]  # fmt: skip
        assert main(args) == 0
    printed = capsys.readouterr().out
    page_2d = tmp_path / f"{tile.stem}_attention.html"
    page_3d = tmp_path / "icbm_superior_attention.html"
    assert str(page_2d) in printed and str(page_3d) in printed
    assert main(args) == 1, "an existing report is not replaced unasked"
    assert "exists; pass --overwrite" in capsys.readouterr().err

    # 2D: image, prediction and one canvas per sSE block, all drawn; no slider to move
    browser.get(page_2d.as_uri())
    canvases = _drawn_canvases(browser)
    assert [c["layer"] for c in canvases][:2] == ["image", "prediction"]
    assert len(canvases) >= 3 and all(c["std"] > 1 for c in canvases), canvases
    assert not browser.find_element(By.ID, "slice").is_displayed()
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.cse")) >= 1
    assert _severe(browser) == []

    # 3D: three planes; keys on the slider move the slice and redraw every canvas
    browser.get(page_3d.as_uri())
    before = _drawn_canvases(browser)
    assert len(before) >= 3 and all(c["std"] > 1 for c in before), before
    slider = browser.find_element(By.ID, "slice")
    start = int(slider.get_attribute("value"))
    for _ in range(6):
        slider.send_keys(Keys.ARROW_RIGHT)
    assert int(slider.get_attribute("value")) == start + 6
    assert browser.find_element(By.ID, "slice-value").text.startswith(str(start + 6))
    after = _canvas_state(browser)
    assert all(a["url"] != b["url"] for a, b in zip(after, before, strict=True))
    Select(browser.find_element(By.ID, "plane")).select_by_visible_text("sagittal")
    sagittal = _canvas_state(browser)
    shape = _payload(page_3d.read_text())["shape"]
    assert (sagittal[0]["width"], sagittal[0]["height"]) == (shape[1], shape[2])
    assert all(c["std"] > 1 for c in sagittal)
    assert _severe(browser) == []


def _letters(browser) -> dict[str, str]:
    """The orientation letters around the first canvas, by edge."""
    return browser.execute_script(
        """const view = document.querySelector('.view'), out = {};
           for (const edge of ['left', 'right', 'top', 'bottom'])
             out[edge] = view.querySelector('.letter.' + edge).textContent;
           return out;"""
    )


def _css_ratio(browser) -> float:
    return browser.execute_script(
        "const c = document.querySelector('canvas');"
        "return parseFloat(c.style.height) / parseFloat(c.style.width);"
    )


def _pixels(browser) -> np.ndarray:
    data = browser.execute_script(
        """const c = document.querySelector('canvas');
           return [c.width, c.height,
                   Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];"""
    )
    return np.asarray(data[2], np.uint8).reshape(data[1], data[0], 4)


def test_defect7_report_orientation_letters_convention_and_own_spacing(
    browser, ckpt_3d, data_env, tmp_path
) -> None:
    """Review defect 7 in the page: each plane carries its orientation letters, the
    radiological convention mirrors across the patient, and a model trained with
    ``spacing: null`` shows the volume at its own voxel size (it was drawn with cubic
    voxels)."""
    import nibabel as nib
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from scseg.inference import load_model
    from scseg.inference.figures import attention_figures

    source = data_env / "datasets" / "brain_tissue3d" / "imagesTr" / "icbm_superior.nii.gz"
    image = nib.load(source)
    thick = np.asarray(image.dataobj)[40:88, 50:98, ::3]  # 1 x 1 x 3 mm slices
    path = tmp_path / "thick.nii.gz"
    nib.save(nib.Nifti1Image(thick, image.affine @ np.diag([1.0, 1.0, 3.0, 1.0])), path)
    model = load_model(ckpt_3d)
    model.data_info["spacing"] = None  # as trained with spacing: null
    pages = {}
    for radiological in (False, True):
        out = tmp_path / ("radiological" if radiological else "neurological")
        attention_figures(model, path, out, html=True, radiological=radiological)
        pages[radiological] = out / "thick_attention.html"
    data = _payload(pages[False].read_text())
    spacing = data["spacing"]
    assert spacing == pytest.approx([1.0, 1.0, 3.0])  # the volume's own, not cubic
    shown = {}
    for radiological, page in pages.items():
        browser.get(page.as_uri())
        side = ("R", "L") if radiological else ("L", "R")
        assert _letters(browser) == {"left": side[0], "right": side[1], "top": "A", "bottom": "P"}
        shown[radiological] = _pixels(browser)
        Select(browser.find_element(By.ID, "plane")).select_by_visible_text("coronal")
        assert _letters(browser)["top"] == "S" and _letters(browser)["left"] == side[0]
        rows, cols = data["shape"][2], data["shape"][0]
        assert _css_ratio(browser) == pytest.approx(
            rows * spacing[2] / (cols * spacing[0]), rel=0.02
        )
        Select(browser.find_element(By.ID, "plane")).select_by_visible_text("sagittal")
        assert _letters(browser) == {"left": "P", "right": "A", "top": "S", "bottom": "I"}
        assert _severe(browser) == []
    np.testing.assert_array_equal(shown[True], shown[False][:, ::-1])  # mirrored across
