"""JUnit XML: one test case per check, grouped per scenario, failures carrying the reason.

Each case's time is the check's own observation span. CI systems show it natively; the JSON
evidence stays the source of truth.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.evidence.record import RunRecord


def junit_xml(record: RunRecord) -> ET.ElementTree:
    """The JUnit document for a run."""
    root = ET.Element("testsuites", name=f"harness run {record.run_id}")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for result in record.scenarios:
        sid = result.scenario_id
        duration = (result.ended_at or result.started_at) - result.started_at
        suite = ET.SubElement(root, "testsuite", name=f"{sid} {result.title}")
        counts = {"tests": 0, "failures": 0, "errors": 0}
        cases: list[tuple[str, str, str, str, float]] = [
            (
                c.name,
                c.status,
                c.summary,
                c.evidence.model_dump_json()[:4000],
                (c.ended_at or 0.0) - (c.started_at or c.ended_at or 0.0),
            )
            for c in result.checks
        ]
        for fault in result.faults:
            heal = fault.heal
            if fault.error:
                status, summary = "error", fault.error
            elif heal is None:
                status, summary = "error", "fault never applied or never healed"
            else:
                status = "pass" if heal.healed else "error"
                summary = f"healed by {heal.method}" if heal.healed else "; ".join(heal.errors)
            seconds = heal.seconds if heal else 0.0
            cases.append((f"fault {fault.kind} healed ({fault.key})", status, summary, "", seconds))
        if result.verdict in ("error", "interrupted") and not any(c[1] == "error" for c in cases):
            cases.append((f"scenario {result.verdict}", "error", result.reason, "", 0.0))
        for name, status, summary, detail, seconds in cases:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"scenario.{sid}",
                name=name,
                time=f"{max(0.0, seconds):.3f}",
            )
            counts["tests"] += 1
            if status == "fail":
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=summary, type="check_failed").text = detail
            elif status == "error":
                counts["errors"] += 1
                ET.SubElement(case, "error", message=summary, type="check_error").text = detail
            else:
                ET.SubElement(case, "system-out").text = summary
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{duration:.3f}")
    for key, value in totals.items():
        root.set(key, str(value))
    return ET.ElementTree(root)


def write_junit(out_dir: Path, record: RunRecord) -> Path:
    path = out_dir / "junit.xml"
    tree = junit_xml(record)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
