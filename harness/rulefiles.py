"""The alert rules of `deploy/prometheus/rules/`: the reference the harness judges against.

A target may run different rules (drifted, broken); budgets and cross-checks come from these
files, time-compressed by the target's profile exactly as the local stack renders them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.config import Profile
from harness.timecompress import compress_rule_groups

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it: the rules are read by every validate and run."""


def rule_files(rules_dir: Path) -> list[Path]:
    return sorted([*rules_dir.glob("*.yml"), *rules_dir.glob("*.yaml")])


def alert_rules(
    rules_dir: Path, profile: Profile | None = None
) -> dict[str, tuple[dict[str, Any], dict[str, Any], Path]]:
    """Every alerting rule by name: (rule, its group, its file), compressed for `profile`."""
    found: dict[str, tuple[dict[str, Any], dict[str, Any], Path]] = {}
    for path in rule_files(rules_dir):
        doc = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
        if profile is not None:
            doc = compress_rule_groups(
                doc, profile.time_compression, round(profile.min_range * 1000)
            )
        for group in doc.get("groups") or []:
            for rule in group.get("rules") or []:
                if "alert" in rule:
                    found[rule["alert"]] = (rule, group, path)
    return found
