"""The service's settings: one pydantic-settings declaration (flags, `HARNESS_SERVE_*` env), and
the optional YAML config file naming the targets, scenarios and schedules it knows."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from harness.config import HttpUrl, Strict
from harness.paths import project_root
from harness.paths import run_dir as default_run_dir
from harness.yamlfile import load_model

DEFAULT_PORT = 8090


class ServiceConfig(Strict):
    """What the service may run against and what it runs; kept in git by teams that want to.
    Relative paths are relative to the config file."""

    run_dir: Path | None = Field(
        None, description="the local stack (every slot in it) [HARNESS_RUN_DIR; ./.harness/local]"
    )
    targets: list[Path] = Field(default_factory=list, description="target files (staging …)")
    scenarios: Path | None = Field(None, description="scenario directory [the project's]")
    contract: Path | None = Field(None, description="alerting contract [scenarios' default]")
    schedules: Path | None = Field(None, description="schedules YAML loaded at start")

    def resolved(self, base: Path) -> ServiceConfig:
        def rel(p: Path | None) -> Path | None:
            return None if p is None else (p if p.is_absolute() else base / p)

        return ServiceConfig(
            run_dir=rel(self.run_dir),
            targets=[rel(p) for p in self.targets],  # type: ignore[misc]
            scenarios=rel(self.scenarios),
            contract=rel(self.contract),
            schedules=rel(self.schedules),
        )


class ServiceSettings(BaseSettings):
    """How `harness serve` runs; every field is also `HARNESS_SERVE_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="HARNESS_SERVE_", extra="forbid", populate_by_name=True
    )

    host: str = Field("127.0.0.1", description="bind address (loopback unless told otherwise)")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    data_dir: Path = Field(Path(".harness/service"), description="store, runs' evidence")
    config_file: Path | None = Field(None, description="ServiceConfig YAML")
    tokens_file: Path | None = Field(None, description="named tokens (YAML/JSON)")
    tokens: str = Field(
        "",
        validation_alias="HARNESS_TOKENS",
        description="`name:secret:role` entries, comma-separated (roles admin, operator, read)",
    )
    open_reads_on_loopback: bool = Field(
        False, description="GET calls from 127.0.0.0/8 or ::1 need no token"
    )
    webhook_url: HttpUrl | None = Field(None, description="Slack-compatible run summaries")
    public_url: str = Field("", description="how users reach the service (links in summaries)")
    database_url: str = Field("", description="SQLAlchemy URL [sqlite under the data dir]")
    scheduler_tick: float = Field(1.0, gt=0, description="seconds between schedule checks")
    write_reports: bool = Field(True, description="write report.html after each run")
    open_metrics: bool = Field(False, description="serve /metrics without a token")

    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'harness.db').resolve()}"

    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    def service_config(self) -> ServiceConfig:
        """The config file's content (FileProblems naming file, line and field), or defaults."""
        if self.config_file is None:
            config = ServiceConfig()
        else:
            config = load_model(ServiceConfig, self.config_file).resolved(
                self.config_file.resolve().parent
            )
        return config.model_copy(
            update={
                "run_dir": config.run_dir or default_run_dir(),
                "scenarios": config.scenarios or project_root() / "scenarios",
            }
        )
