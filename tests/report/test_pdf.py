"""report.pdf: the HTML printed by headless Chromium, one scenario a page at least."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.report.build import Written
from harness.report.pdf import PdfError, chromium_binary, print_pdf


def test_report_prints_to_pdf(written: Written, tmp_path: Path) -> None:
    chromium_binary()  # fails with the install hint when Chromium is missing
    pdf = print_pdf(written.html, tmp_path / "report.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert pages >= 1 + 5, f"{pages} pages: each scenario starts a page"


def test_a_missing_html_is_a_pdf_error(tmp_path: Path) -> None:
    with pytest.raises(PdfError, match="no such file"):
        print_pdf(tmp_path / "nothing.html", tmp_path / "out.pdf", timeout_s=60)
