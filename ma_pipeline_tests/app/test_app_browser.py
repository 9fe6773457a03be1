"""The web app in a real headless Chromium (Debian's chromium and chromedriver): ``ma-api serve``
and ``ma-app`` run as they would for a user, each in its own process on a free port; the test
reads the rendered Targets and Company pages and saves their screenshots.

Screenshots go to ``ma_pipeline_tests/app/artifacts/``; with MA_UPDATE_SCREENSHOTS=1 they are
also copied, reduced to a small palette, to ``docs/screenshots/`` for the README.
"""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ma_pipeline_tests.app.conftest import D3, SIREN, LiveApi
from ma_pipeline_tests.processes import free_port, wait_until_up

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).with_name("artifacts")
README_SCREENSHOTS = ROOT / "docs" / "screenshots"
BIN = Path(shutil.which("ma-app") or "ma-app").parent
STARTUP_S = 60


def started(command: list[str], env: dict[str, str], health: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until_up([health], process, timeout=STARTUP_S)
    except AssertionError:
        process.kill()
        raise
    return process


@pytest.fixture(scope="module")
def app_url(live_api: LiveApi) -> Iterator[str]:
    """``ma-api serve`` over the live API's published days, and ``ma-app`` reading it with a
    key given in MA_APP_API_KEY; the app's URL."""
    api_port, app_port = free_port(), free_port()
    api_env = {
        "MA_DATA_DIR": str(live_api.settings.data_dir),
        "MA_WAREHOUSE_URL": "",
        "MA_API_REFRESH_SECONDS": "3600",
    }
    api = started(
        [str(BIN / "ma-api"), "serve", "--port", str(api_port)],
        api_env,
        f"http://127.0.0.1:{api_port}/health",
    )
    app_env = {
        "MA_APP_API_URL": f"http://127.0.0.1:{api_port}",
        "MA_APP_API_KEY": live_api.key("scores:read", "contacts:read"),
    }
    command = [str(BIN / "ma-app"), "--server.port", str(app_port), "--server.address"]
    command += ["127.0.0.1", "--browser.gatherUsageStats", "false"]
    try:
        app = started(command, app_env, f"http://127.0.0.1:{app_port}/_stcore/health")
    except AssertionError:
        api.terminate()
        raise
    try:
        yield f"http://127.0.0.1:{app_port}"
    finally:
        for process in (app, api):
            process.terminate()
            process.wait(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def rendered(driver: webdriver.Chrome, url: str, *texts: str) -> str:
    """The page's text once every one of ``texts`` shows and the script has finished."""
    driver.get(url)

    def ready(d: webdriver.Chrome) -> bool:
        body = d.find_element(By.TAG_NAME, "body").text
        running = d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        return all(t in body for t in texts) and not any(r.is_displayed() for r in running)

    # Streamlit redraws as the script runs: an element read may be gone by the next read.
    WebDriverWait(driver, 30, ignored_exceptions=[StaleElementReferenceException]).until(ready)
    time.sleep(1)  # charts draw after the script's last message
    return driver.find_element(By.TAG_NAME, "body").text


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    if os.environ.get("MA_UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("RGB").quantize(64).save(
            README_SCREENSHOTS / f"{name}.png", optimize=True
        )
    return path


def test_the_targets_and_company_pages_render_in_a_browser(
    browser: webdriver.Chrome, app_url: str
) -> None:
    targets = rendered(browser, app_url, "Targets", f"Scores published for {D3}")
    assert "Export the filtered list (CSV)" in targets
    assert "M&A band" in targets
    assert screenshot(browser, "targets").stat().st_size > 10_000

    company = rendered(browser, f"{app_url}/company?siren={SIREN}", f"SOCIETE {SIREN}", "Contacts")
    assert "Score history" in company
    assert "What moved since the previous change" in company
    assert "band" in company and "probability" in company
    assert "contacts:read scope" not in company  # the key may see the contacts table
    assert screenshot(browser, "company").stat().st_size > 10_000
