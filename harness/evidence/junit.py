"""JUnit XML: one test case per check, grouped per scenario, failures carrying the reason.

CI systems show it natively; the JSON evidence stays the source of truth.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def _case(suite: ET.Element, scenario: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(
        suite, "testcase", classname=f"scenario.{scenario}", name=name, time=f"{seconds:.3f}"
    )


def junit_xml(run_id: str, scenarios: list[dict[str, Any]]) -> ET.ElementTree:
    """The JUnit document for a run's scenario results (as in evidence.json)."""
    root = ET.Element("testsuites", name=f"harness run {run_id}")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for result in scenarios:
        sid = result["scenario_id"]
        duration = (result.get("ended_at") or result["started_at"]) - result["started_at"]
        suite = ET.SubElement(root, "testsuite", name=f"{sid} {result['title']}")
        counts = {"tests": 0, "failures": 0, "errors": 0}
        cases: list[tuple[str, str, str, str]] = [
            (c["name"], c["status"], c["summary"], json.dumps(c.get("evidence", {}))[:4000])
            for c in result.get("checks", [])
        ]
        for fault in result.get("faults", []):
            heal = fault.get("heal")
            if fault.get("error"):
                status, summary = "error", fault["error"]
            elif heal is None:
                status, summary = "error", "fault never applied or never healed"
            else:
                status = "pass" if heal["healed"] else "error"
                summary = (
                    f"healed by {heal['method']}" if heal["healed"] else "; ".join(heal["errors"])
                )
            cases.append((f"fault {fault['kind']} healed ({fault['key']})", status, summary, ""))
        if result["verdict"] in ("error", "interrupted") and not any(
            status == "error" for _, status, _, _ in cases
        ):
            cases.append((f"scenario {result['verdict']}", "error", result["reason"], ""))
        for name, status, summary, detail in cases:
            case = _case(suite, sid, name, duration / max(1, len(cases)))
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


def write_junit(out_dir: Path, run_id: str, scenarios: list[dict[str, Any]]) -> Path:
    path = out_dir / "junit.xml"
    tree = junit_xml(run_id, scenarios)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
