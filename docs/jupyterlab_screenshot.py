"""Screenshot of JupyterLab as the README's notebook command opens it, scrolled to a
notebook's first inline figure (docs/jupyterlab_attention_3d.png). Start the server first:

    uv run --group notebooks jupyter lab notebooks/ --no-browser --port 8890 \\
        --IdentityProvider.token=
    uv run python docs/jupyterlab_screenshot.py 8890 attention_3d.ipynb \\
        docs/jupyterlab_attention_3d.png

Prints the server's status and the size of every inline image JupyterLab rendered. Needs
Chromium and ChromeDriver, as tests/test_attention_report.py does.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

IMAGES = "document.querySelectorAll('.jp-OutputArea-output img')"


def main(port: str, notebook: str, out: str) -> None:
    for _ in range(120):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status") as reply:
                print("server status:", json.load(reply))
            break
        except OSError:
            time.sleep(1)
    else:
        raise SystemExit(f"no JupyterLab answers on port {port}")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1500,1100"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        browser.get(f"http://127.0.0.1:{port}/lab/tree/{notebook}")
        for _ in range(60):
            if browser.execute_script(f"return {IMAGES}.length"):
                break
            time.sleep(1)
        time.sleep(5)
        sizes = browser.execute_script(
            f"return Array.from({IMAGES}).map(i => [i.naturalWidth, i.naturalHeight])"
        )
        print("title:", browser.title, "| inline images rendered:", sizes)
        for button in browser.find_elements("xpath", "//button[normalize-space()='No']"):
            button.click()  # JupyterLab's "get notified about news?" toast
        browser.execute_script(f"{IMAGES}[0].scrollIntoView()")
        time.sleep(2)
        browser.save_screenshot(out)
    finally:
        browser.quit()


if __name__ == "__main__":
    main(*sys.argv[1:4])
