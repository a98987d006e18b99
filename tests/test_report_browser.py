"""The report in a real browser: headless Chromium (from the distribution's packages, installed
here if missing) decodes every image and logs no error; a full-page screenshot is saved."""

import base64
import re
from pathlib import Path

import pytest

from internalize.report import write_report

MAX_SCREENSHOT_HEIGHT = 16_000
"""Chromium cannot capture a taller page in one image; the top of the page is what matters."""


@pytest.fixture(scope="module")
def browser(open_browser):
    driver = open_browser()
    yield driver
    driver.quit()


def inspect(driver, page: Path) -> dict[str, list[str]]:
    """Open `page` and return the alt text of every image that did not decode (`broken`), of
    every image (`images`) and the console's errors (`errors`)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # forget what earlier pages logged
    driver.get(page.as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && "
            "Array.from(document.images).every(image => image.complete)"
        )
    )
    images = driver.execute_script(
        "return Array.from(document.images).map(image => [image.alt, image.naturalWidth])"
    )
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return {
        "images": [alt for alt, _ in images],
        "broken": [alt for alt, width in images if width == 0],
        "errors": errors,
    }


def screenshot(driver, path: Path) -> Path:
    """A screenshot of the whole page (up to MAX_SCREENSHOT_HEIGHT pixels) as a PNG."""
    width, height = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    clip = {"x": 0, "y": 0, "width": width, "height": min(height, MAX_SCREENSHOT_HEIGHT)}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"captureBeyondViewport": True, "clip": {**clip, "scale": 1}}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


@pytest.fixture(scope="module")
def report(all_run, tmp_path_factory) -> Path:
    return write_report(all_run, tmp_path_factory.mktemp("report") / "report.html")


def test_report_renders_in_chromium(browser, report, all_run, tmp_path):
    found = inspect(browser, report)
    figures = [p for p in all_run.rglob("*") if p.suffix in (".png", ".gif")]
    assert len(found["images"]) == len(figures) > 0
    assert found["broken"] == []
    assert found["errors"] == []
    shot = screenshot(browser, tmp_path / "report.png")
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_the_check_catches_an_image_that_does_not_decode(browser, report, tmp_path):
    page = report.read_text()
    first = re.search(r'src="data:image/png;base64,([^"]{200})', page)
    corrupt = first.group(1)[:100] + "!!corrupt!!" + first.group(1)[111:]
    broken = tmp_path / "broken.html"
    broken.write_text(page.replace(first.group(1), corrupt, 1))
    found = inspect(browser, broken)
    assert len(found["broken"]) == 1
    assert found["broken"][0] in found["images"]


def test_the_check_catches_console_errors_and_blocked_network(browser, report, tmp_path):
    page = report.read_text()
    fetching = tmp_path / "fetching.html"
    # The report's content security policy blocks any load from outside the page; the browser
    # logs the refusal as an error and the image does not decode.
    fetching.write_text(
        page.replace("</body>", '<img alt="remote" src="http://127.0.0.1:9/x.png">')
    )
    found = inspect(browser, fetching)
    assert found["broken"] == ["remote"]
    assert any("Content Security Policy" in error for error in found["errors"])
