"""report.pdf: the HTML printed by headless Chromium (the Debian `chromium` package), with a
fresh profile and every background service off, so printing makes no network request."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import HarnessError

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 120.0


class PdfError(HarnessError):
    """Chromium is missing or could not print."""


def chromium_binary() -> str:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise PdfError(
        "headless Chromium is needed for --pdf and was not found; on Debian: "
        "apt-get install chromium (scripts/setup.sh installs it)"
    )


def print_pdf(html: Path, pdf: Path, *, timeout_s: float = TIMEOUT_S) -> Path:
    """Print `html` to `pdf`; raises PdfError with Chromium's own words when it fails."""
    if not html.is_file():
        raise PdfError(f"{html}: no such file to print")
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="harness-chromium-") as profile:
        command = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--no-first-run",
            "--no-default-browser-check",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf.resolve()}",
            html.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise PdfError(f"Chromium did not print {html} within {timeout_s:g}s") from None
    if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise PdfError(
            f"Chromium could not print {html} (exit {done.returncode}): " + " / ".join(tail)
        )
    return pdf
