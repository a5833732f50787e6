"""The scrape check (the example of a check kind added as one module): every target of a job
answered every scrape, judged on the stored `up` samples; and it is built only when asked."""

from __future__ import annotations

from harness.checks.metrics import SeriesRecord
from harness.checks.registry import check_class, expectations_model
from harness.checks.scrape import ScrapeEvidence, judge_scrape


def up(instance: str, *values: float) -> SeriesRecord:
    return SeriesRecord(
        labels={"job": "router", "instance": instance},
        points=[(100.0 + i, v) for i, v in enumerate(values)],
    )


def test_every_scrape_up_passes_and_one_failed_scrape_fails() -> None:
    ok = ScrapeEvidence(job="router", series=[up("r1", 1, 1, 1), up("r2", 1, 1)])
    assert judge_scrape(ok) == ("pass", "job router: 2 target(s) up in all 5 scrapes")
    gap = ScrapeEvidence(job="router", series=[up("r1", 1, 0, 0, 1), up("r2", 1, 1)])
    status, summary = judge_scrape(gap)
    assert status == "fail" and "r1 (2 scrape(s) from 101)" in summary and "r2" not in summary


def test_a_job_prometheus_does_not_scrape_is_an_error_not_a_pass() -> None:
    assert judge_scrape(ScrapeEvidence(job="nope"))[0] == "error"


def test_registered_with_its_own_expect_key_off_by_default() -> None:
    assert check_class("scrape_up").evidence_model is ScrapeEvidence
    expect = expectations_model()
    assert expect().scrape_up == []  # type: ignore[attr-defined]
    assert expect(scrape_up=["router"]).scrape_up == ["router"]  # type: ignore[attr-defined]


def test_a_job_no_longer_scraped_fails_though_every_stored_sample_is_up() -> None:
    # Scraped every second from 100 to 104, then dropped from the configuration: no failed
    # scrape is stored, the samples just stop while the window runs on to 130.
    removed = ScrapeEvidence(job="router", window=(100.0, 130.0), series=[up("r1", 1, 1, 1, 1, 1)])
    status, summary = judge_scrape(removed)
    assert (status, summary) == ("fail", "job router not scraped: r1 (104-130)")
    # Scraped to the end (the last scrape a second before the window closed): a pass.
    whole = ScrapeEvidence(job="router", window=(100.0, 105.0), series=[up("r1", 1, 1, 1, 1)])
    assert judge_scrape(whole)[0] == "pass"


def test_a_target_moved_to_a_wrong_port_fails_for_both_series() -> None:
    old = up("good:80", 1, 1, 1)  # 100-102, then the job points elsewhere
    new = SeriesRecord(
        labels={"job": "router", "instance": "wrong:81"},
        points=[(103.0 + i, 0.0) for i in range(20)],
    )
    status, summary = judge_scrape(
        ScrapeEvidence(job="router", window=(100, 123), series=[old, new])
    )
    assert status == "fail"
    assert "failed scrapes: wrong:81 (20 scrape(s) from 103)" in summary
    assert "not scraped: good:80 (102-123)" in summary
