"""The web UI in headless Chromium against a real `harness serve` on the session's local
stack: a token entered in the page, a run started from the UI and watched to its verdict
(with its report), a long run started and stopped with the emergency button (after the
confirmation dialog), the schedules page; the page makes no request off the service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from harness.config import Target
from harness.stack.stack import LocalStack
from tests.report.test_browser_live import browser  # noqa: F401 - the shared headless Chromium
from tests.service.fakes import OPERATOR
from tests.service.live import ServedHarness, assert_target_clean, harness_toxics, serving

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def served(
    local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedHarness]:
    yield from serving(tmp_path_factory.mktemp("ui"), local_stack)


def wait(driver: Any, timeout: float, what: str, condition: Any) -> Any:
    # the run page reloads itself once the report is written: an element may go stale
    ignored = (StaleElementReferenceException, NoSuchElementException)
    return WebDriverWait(driver, timeout, 0.1, ignored_exceptions=ignored).until(condition, what)


def start_from_ui(driver: Any, served: ServedHarness, scenario: str) -> str:
    driver.get(f"{served.url}/")
    Select(driver.find_element(By.ID, "scenario-select")).select_by_value(scenario)
    driver.find_element(By.ID, "start-run").click()
    wait(driver, 15, "the run page", lambda d: "/runs/" in d.current_url)
    return driver.current_url.rsplit("/", 1)[1]


def badge(driver: Any) -> str:
    return driver.find_element(By.ID, "run-status").text


def cells(driver: Any, selector: str) -> list[str]:
    """Texts read in one go (the polling script rebuilds the tables under Selenium's feet)."""
    script = "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)"
    return driver.execute_script(script, selector)


def test_the_ui_starts_watches_and_stops_runs(
    browser: Any,  # noqa: F811 - the fixture imported above
    served: ServedHarness,
    clean_stack: LocalStack,
    target: Target,
) -> None:
    driver = browser
    driver.get(f"{served.url}/")
    assert "needs a token" in driver.find_element(By.TAG_NAME, "main").text
    driver.find_element(By.ID, "token").send_keys(OPERATOR)
    driver.find_element(By.ID, "save-token").click()
    wait(driver, 10, "the runs page", lambda d: d.find_elements(By.ID, "start-form"))
    logged = driver.get_log("browser")  # read (and so cleared): only the expected 401 so far
    severe = [e for e in logged if e["level"] == "SEVERE"]
    assert all("status of 401" in e["message"] for e in severe), severe

    # a short run from the UI, watched through its phases to its verdict and report
    run_id = start_from_ui(driver, served, "PASS-001")
    phases: set[str] = set()

    def finished(d: Any) -> bool:
        phases.update(
            td.text for td in d.find_elements(By.CSS_SELECTOR, "#progress td:nth-child(2)")
        )
        return badge(d) in ("passed", "failed", "error")

    wait(driver, 60, "the run's verdict", finished)
    assert badge(driver) == "passed", driver.find_element(By.ID, "reason").text
    known = {"preflight", "baseline", "inject", "observe", "heal", "recover", "verdict"}
    assert phases and phases <= known, phases  # the progress table showed live phases
    assert cells(driver, "#results td:nth-child(2)") == ["passed"]
    wait(driver, 60, "the report", lambda d: d.find_elements(By.ID, "report"))
    assert served.run(run_id)["downloads"]["report.html"].endswith("/report.html")

    # a long run, stopped with the emergency button mid-fault
    long_id = start_from_ui(driver, served, "LONG-001")
    wait(driver, 30, "the fault in effect", lambda d: harness_toxics(target))
    wait(driver, 10, "the run running", lambda d: badge(d) == "running")
    driver.find_element(By.ID, "stop-all").click()
    alert = wait(driver, 5, "the confirmation dialog", lambda d: d.switch_to.alert)
    assert "Emergency stop" in alert.text
    alert.accept()
    outcome = driver.find_element(By.ID, "stop-result")
    result = wait(driver, 10, "the stop result", lambda d: outcome.get_attribute("data-clean"))
    assert result == "true", outcome.text
    assert "cancelled runs: " + long_id in outcome.text
    assert_target_clean(target)
    wait(driver, 60, "the run cancelled", lambda d: badge(d) == "cancelled")

    driver.get(f"{served.url}/schedules")
    assert driver.find_elements(By.ID, "schedules")
    driver.get(f"{served.url}/")
    rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    assert [r.get_attribute("data-run") for r in rows[:2]] == [long_id, run_id]

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    requested = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    urls = {
        m["params"]["request"]["url"]
        for m in requested
        if m.get("method") == "Network.requestWillBeSent"
    }
    web = [u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:"))]  # not chrome://
    assert web and all(u.startswith(served.url) for u in web), sorted(web)
