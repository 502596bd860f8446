"""Keel's one settings class, read from `KEEL_*` environment variables and `keel.toml`.

Every setting has a working default for the embedded stack (`keel up`): the Temporal dev
server, the worker and the API on loopback, state under `./.keel/`.
"""

from pathlib import Path

from pydantic import Field, computed_field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Where Keel's parts listen and keep their state."""

    model_config = SettingsConfigDict(
        env_prefix="KEEL_", toml_file="keel.toml", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(default=Path(".keel"), description="Embedded state lives here.")
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    temporal_ui_url: str = Field(
        default="", description="Public address of the Temporal UI; derived when empty."
    )
    temporal_dev_tuned: bool = Field(
        default=True, description="Start the embedded dev server with latency tuning."
    )
    task_queue: str = "keel"
    worker_max_cached_workflows: int = Field(
        default=1000, ge=0, description="0 replays every workflow task from history (tests)."
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_url: str = Field(default="", description="Where the CLI finds the API; derived when empty.")
    database_url: str = Field(default="", description="SQLAlchemy async URL; SQLite when empty.")
    review_threshold: float = Field(
        default=0.6, ge=0.0, le=1.0, description="Confidence below which a run escalates."
    )
    review_timeout_s: float = Field(
        default=7 * 24 * 3600, gt=0, description="A pending review expires (rejected) after this."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then `keel.toml`."""
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ui_url(self) -> str:
        """The Temporal UI's base address."""
        if self.temporal_ui_url:
            return self.temporal_ui_url.rstrip("/")
        host = self.temporal_address.rsplit(":", 1)[0]
        return f"http://{host}:{self.temporal_ui_port}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def api_base_url(self) -> str:
        """The API's base address, as the CLI reaches it."""
        if self.api_url:
            return self.api_url.rstrip("/")
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host
        return f"http://{host}:{self.api_port}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sql_url(self) -> str:
        """The SQL database's address."""
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'keel.db'}"

    def run_ui_url(self, run_id: str) -> str:
        """The Temporal UI page of one run."""
        return f"{self.ui_url}/namespaces/{self.temporal_namespace}/workflows/{run_id}"
