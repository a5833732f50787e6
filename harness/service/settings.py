"""The service's settings: one pydantic-settings declaration (flags, `HARNESS_SERVE_*` env), and
the optional YAML config file naming the targets, scenarios and schedules it knows."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from harness.config import HttpUrl, Strict
from harness.durations import Duration
from harness.paths import project_root
from harness.paths import run_dir as default_run_dir
from harness.service.schedules import GuardSpec
from harness.yamlfile import FileProblems, Problem, load_model

M = TypeVar("M", bound=BaseModel)
MAX_INPUT_BYTES = 4 * 1024 * 1024


def readable_text(path: Path, what: str) -> None:
    """FileProblems naming `path` unless it is a readable UTF-8 text file of sane size."""
    try:
        if path.is_dir():
            raise FileProblems(
                [Problem(str(path), None, "", f"{what}: is a directory, not a file")]
            )
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            why = f"{what}: {size} bytes, more than {MAX_INPUT_BYTES}"
            raise FileProblems([Problem(str(path), None, "", why)])
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileProblems([Problem(str(path), None, "", f"{what}: file not found")]) from None
    except OSError as exc:
        raise FileProblems(
            [Problem(str(path), None, "", f"{what}: cannot read: {exc.strerror}")]
        ) from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        why = (
            f"{what}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "is it a binary file?"
        )
        raise FileProblems([Problem(str(path), line, "", why)]) from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise FileProblems([Problem(str(path), line, "", f"{what}: contains a NUL byte; is it a "
                                    "binary file?")])  # fmt: skip


def load_text_model(model: type[M], path: Path, what: str) -> M:
    """`load_model` after `readable_text`: a binary or non-UTF-8 file is named, not a
    traceback."""
    readable_text(path, what)
    return load_model(model, path)


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
    lever_guards: list[GuardSpec] = Field(
        default_factory=list,
        max_length=20,
        description="global guards: when one trips on any known target, the lever engages",
    )
    lever_guard_interval: Duration = Field("15s", description="how often global guards are checked")

    def resolved(self, base: Path) -> ServiceConfig:
        def rel(p: Path | None) -> Path | None:
            return None if p is None else (p if p.is_absolute() else base / p)

        return self.model_copy(
            update={
                "run_dir": rel(self.run_dir),
                "targets": [rel(p) for p in self.targets],
                "scenarios": rel(self.scenarios),
                "contract": rel(self.contract),
                "schedules": rel(self.schedules),
            }
        )


class ServiceSettings(BaseSettings):
    """How `harness serve` runs; every field is also `HARNESS_SERVE_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="HARNESS_SERVE_", extra="forbid", populate_by_name=True
    )

    host: str = Field("127.0.0.1", description="bind address (loopback unless told otherwise)")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    data_dir: Path = Field(Path(".harness/service"), description="store, runs' evidence")
    config_file: Path | None = Field(
        None,
        # HARNESS_SERVE_CONFIG too: the name `serve --config` suggests (documented)
        validation_alias=AliasChoices(
            "config_file", "HARNESS_SERVE_CONFIG_FILE", "HARNESS_SERVE_CONFIG"
        ),
        description="ServiceConfig YAML",
    )
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
    heal_timeout: float = Field(
        5.0, gt=0, le=60, description="at SIGTERM: seconds to cancel every run and heal first"
    )
    drain_timeout: float = Field(
        10.0, gt=0, le=120, description="at SIGTERM, after the heal: seconds to drain connections"
    )

    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'harness.db').resolve()}"

    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    def service_config(self) -> ServiceConfig:
        """The config file's content (FileProblems naming file, line and field), or defaults."""
        if self.config_file is None:
            config = ServiceConfig()
        else:
            config = load_text_model(ServiceConfig, self.config_file, "config file").resolved(
                self.config_file.resolve().parent
            )
        return config.model_copy(
            update={
                "run_dir": config.run_dir or default_run_dir(),
                "scenarios": config.scenarios or project_root() / "scenarios",
            }
        )
