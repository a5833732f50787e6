"""The report as a person sees it: report.html of a live run opened from a file URL in headless
Chromium (Debian `chromium` + `chromium-driver`, driven by Selenium): no console error, no
request leaves the file, every scenario section and plot is there, the text is readable at
laptop width, and a screenshot is kept for a reviewer."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.evidence.bundle import read_evidence
from harness.report.build import Written, write_report

pytestmark = pytest.mark.live  # the report of the suite's own live catalogue run

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH, HEIGHT = 1366, 900  # a laptop screen
MIN_TEXT_PX = 11.0
MIN_PLOT_TEXT_PX = 9.0

_TEXT_SIZES = """
const out = [];
for (const el of document.querySelectorAll('body *')) {
  if (el.closest('svg')) continue;
  if (el.closest('details:not([open])') && !el.closest('summary')) continue;
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  const style = getComputedStyle(el);
  if (!own || style.display === 'none' || style.visibility === 'hidden') continue;
  out.push([parseFloat(style.fontSize), el.tagName, el.textContent.trim().slice(0, 60)]);
}
return out.sort((a, b) => a[0] - b[0]).slice(0, 5);
"""
_PLOT_TEXT_SIZES = """
const out = [];
for (const t of document.querySelectorAll('svg.plot text')) {
  const box = t.getBoundingClientRect();
  if (box.height > 0 && t.textContent.trim()) out.push([box.height, t.textContent.trim()]);
}
return out.sort((a, b) => a[0] - b[0]).slice(0, 5);
"""


@pytest.fixture(scope="module")
def live_report(live_run_dir: Path, inventory, tmp_path_factory: pytest.TempPathFactory) -> Written:
    """The report of the live catalogue run (tests/conftest.py runs it once per session)."""
    return write_report([live_run_dir], tmp_path_factory.mktemp("live-report"), inventory=inventory)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, (
        f"{', '.join(missing)} missing: run scripts/setup.sh (apt: chromium chromium-driver)"
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(performance_log: list[dict]) -> list[str]:
    urls = []
    for entry in performance_log:
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def expected_plots(scenario) -> int:
    kinds = [c.kind for c in scenario.checks]
    alerts = any(k in ("alert", "alert_forbidden") for k in kinds)
    return 1 + kinds.count("metric") + kinds.count("dashboard") + int(alerts)


def test_report_in_headless_chromium(
    browser, live_report: Written, live_run_dir: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get("about:blank")
    driver.get_log("performance"), driver.get_log("browser")  # drop the start page's own traffic
    driver.get(live_report.html.as_uri())
    assert driver.execute_script("return document.readyState") == "complete"

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"console errors: {errors}"
    urls = requested_urls(driver.get_log("performance"))
    assert live_report.html.as_uri() in urls, "the network log must see at least the page itself"
    leaving = [u for u in urls if not u.startswith(("file:", "data:", "about:"))]
    assert not leaving, f"requests leaving the file: {leaving}"

    record = read_evidence(live_run_dir)
    assert record.scenarios
    for scenario in record.scenarios:
        selector = f'section.scenario[data-scenario="{scenario.scenario_id}"]'
        section = driver.find_element(By.CSS_SELECTOR, selector)
        heading = section.find_element(By.TAG_NAME, "h2").text
        assert heading.startswith(scenario.verdict), "verdict first"
        plots = section.find_elements(By.CSS_SELECTOR, "svg.plot")
        assert len(plots) == expected_plots(scenario), scenario.scenario_id
        for plot in plots:
            assert plot.size["width"] >= 600 and plot.size["height"] >= 60, plot.get_attribute(
                "aria-label"
            )

    smallest = driver.execute_script(_TEXT_SIZES)
    assert smallest and smallest[0][0] >= MIN_TEXT_PX, f"text too small: {smallest}"
    plot_text = driver.execute_script(_PLOT_TEXT_SIZES)
    assert plot_text and plot_text[0][0] >= MIN_PLOT_TEXT_PX, f"plot text too small: {plot_text}"
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than a {WIDTH}px screen"

    box = driver.execute_script(
        "const s = document.querySelector('section.scenario').getBoundingClientRect();"
        "const m = document.querySelector('main').getBoundingClientRect();"
        "return [m.left, s.top + scrollY - 12, m.width];"
    )
    clip = {"x": box[0], "y": box[1], "width": box[2], "height": 1400, "scale": 1}
    section = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    (tmp_path / "scenario.png").write_bytes(base64.b64decode(section["data"]))
    shot = tmp_path / "report.png"
    assert driver.save_screenshot(str(shot))
    # the whole catalogue's report outgrows what Chromium captures at once ("Page is too
    # large"): the overview keeps the top of the page
    height = min(driver.execute_script("return document.documentElement.scrollHeight"), 16_000)
    top = {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}
    full = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": top}
    )
    (tmp_path / "report-full.png").write_bytes(base64.b64decode(full["data"]))
    assert shot.stat().st_size > 10_000
    print(f"screenshots: {shot}, {tmp_path / 'report-full.png'}, {tmp_path / 'scenario.png'}")
