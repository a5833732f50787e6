"""The real Prometheus (Debian package): scrapes every component, evaluates the rendered rules."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.durations import format_duration
from harness.probes import probe_prometheus
from harness.stack.binaries import find_binary
from harness.stack.component import Component, ScrapeJob, StackContext
from harness.timecompress import compress_rule_file


def render_rules(source_dir: Path, out_dir: Path, factor: float, min_range_s: float) -> list[Path]:
    """Every rule file of `source_dir`, compressed by `factor`, written into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.yml"):
        stale.unlink()
    written = []
    for rule_file in sorted([*source_dir.glob("*.yml"), *source_dir.glob("*.yaml")]):
        target = out_dir / (rule_file.stem + ".yml")
        target.write_text(
            compress_rule_file(rule_file.read_text(), factor, round(min_range_s * 1000))
        )
        written.append(target)
    return written


class Prometheus(Component):
    name = "prometheus"

    def config(self, ctx: StackContext, rules_dir: str = "rules") -> dict[str, Any]:
        jobs = [ScrapeJob("prometheus", ctx.address(self.name))]
        for component in ctx.components:
            if component is not self:
                jobs += component.scrape_jobs(ctx)
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": format_duration(ctx.profile.scrape_interval),
                "scrape_timeout": format_duration(ctx.profile.scrape_interval),
                "evaluation_interval": format_duration(ctx.profile.evaluation_interval),
                "external_labels": {"env": "local", "cluster": "harness-local"},
            },
            "rule_files": [f"{rules_dir}/*.yml"],
            "scrape_configs": [
                {
                    "job_name": job.job,
                    "metrics_path": job.metrics_path,
                    "static_configs": [{"targets": [job.address]}],
                }
                for job in jobs
            ],
        }
        if ctx.has("alertmanager"):
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [ctx.address("alertmanager")]}]}]
            }
        return config

    def write_config(self, ctx: StackContext, rules_dir: str = "rules") -> Path:
        """Render the rules into `rules_dir` and the configuration that loads them. Rules in a
        directory of a new name are new rule groups to Prometheus: a reload then starts them
        with no alert state (no pending `for`, no resolved alert still being re-sent)."""
        directory = ctx.directory(self.name)
        for old in directory.glob("rules*"):
            if old.is_dir() and old.name != rules_dir:
                shutil.rmtree(old, ignore_errors=True)
        render_rules(
            ctx.deploy_dir / "prometheus" / "rules",
            directory / rules_dir,
            ctx.profile.time_compression,
            ctx.profile.min_range,
        )
        config_file = directory / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self.config(ctx, rules_dir), sort_keys=False))
        return config_file

    def command(self, ctx: StackContext) -> list[str]:
        directory = ctx.directory(self.name)
        config_file = self.write_config(ctx)
        resend = max(1.0, 60.0 / ctx.profile.time_compression)
        return [
            find_binary("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={ctx.address(self.name)}",
            "--web.enable-lifecycle",
            f"--rules.alert.resend-delay={format_duration(resend)}",
        ]

    async def ready(self, ctx: StackContext, client: httpx.AsyncClient) -> str:
        return await probe_prometheus(client, ctx.url(self.name))

    def target_fields(self, ctx: StackContext) -> dict[str, Any]:
        return {"prometheus_url": ctx.url(self.name)}
