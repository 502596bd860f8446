"""Keel's one settings class, read from `KEEL_*` environment variables and `keel.toml`.

Every setting has a working default for the embedded stack (`keel up`): the Temporal dev
server, the worker and the API on loopback, state under `./.keel/`.
"""

from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, computed_field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from keel.schemas.continuation import HistoryLimits
from keel.schemas.encryption import PayloadKeyring
from keel.schemas.guards import GuardSettings
from keel.schemas.policy import EscalationSettings
from keel.schemas.routing import JUDGE_ROUTE, Deployment, Price, Route

__all__ = ["LOCAL_DEPLOYMENT", "Settings"]

LOCAL_DEPLOYMENT = Deployment(
    provider="local",
    model="extractive-bm25",
    price=Price(input=0.0, output=0.0),
    context_window=1_000_000,
    capabilities=[],
    timeout_s=30.0,
    local_activity=True,
)
"""The keyless built-in provider, always available as deployment `local`.

It answers in a millisecond on the worker itself, so it is called as a local activity."""


class Settings(BaseSettings):
    """Where Keel's parts listen and keep their state."""

    # An error names the setting and what is wrong, never the value: settings hold secrets.
    model_config = SettingsConfigDict(
        env_prefix="KEEL_",
        toml_file="keel.toml",
        extra="forbid",
        validate_default=True,
        hide_input_in_errors=True,
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
        default=1000,
        ge=0,
        description="Runs a worker keeps in memory between tasks. 0 replays every task from "
        "history and cancels a run's local activities in flight when another run needs the "
        "slot: for debugging one run, never under load.",
    )
    worker_sticky_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="A run's next task waits this long for the worker that cached it before "
        "any worker takes it: the floor of recovery from a killed worker.",
    )
    worker_graceful_shutdown_s: float = Field(
        default=10.0, ge=0, description="On SIGTERM, running activities get this long to finish."
    )
    payload_offload_bytes: int = Field(
        default=128 * 1024,
        ge=0,
        le=2_000_000,
        description="Payloads this large or larger go to the payload store, not the history.",
    )
    payload_dir: Path | None = Field(
        default=None,
        description="The payload store; `<data_dir>/payloads` when unset. Workers and the API "
        "must share it.",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Key that signs audit checkpoints (HMAC-SHA256), at least 32 characters; "
        "`<data_dir>/audit.key`, created with mode 0600 on first use, when unset. Workers, the "
        "API and `keel audit verify` must share it; Keel's database never holds it.",
    )
    audit_checkpoint_dir: Path | None = Field(
        default=None,
        description="Signed audit checkpoints, one file per run; `<data_dir>/audit-checkpoints` "
        "when unset. Outside the database; workers and the API must share it.",
    )
    payload_keyring: PayloadKeyring | None = Field(
        default=None,
        description="Keys that encrypt every Temporal payload (AES-256-GCM), as JSON: "
        '`{"current": "<id>", "keys": {"<id>": "<base64 of 32 bytes>"}}`. Unset: the key file '
        "`<data_dir>/payload-keys.json` (`keel up` writes one); without that, no encryption.",
    )
    codec_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the codec server (`/codec`, CORS): the "
        "Temporal UI's. Empty: the origin of the UI address (and its `localhost` twin).",
    )
    history_max_events: int = Field(
        default=HistoryLimits().max_events,
        ge=10,
        description="A run continues as new once its history has this many events (Temporal "
        "warns at 10,240), or earlier when Temporal suggests it.",
    )
    history_max_bytes: int = Field(
        default=HistoryLimits().max_bytes,
        ge=1024,
        description="A run continues as new once its history is this large (Temporal warns at "
        "10 MB).",
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_max_body_bytes: int = Field(
        default=1_000_000, ge=1_024, description="Larger request bodies get 413."
    )
    api_keep_alive_s: int = Field(
        default=75,
        ge=1,
        description="How long the API keeps an idle HTTP connection open: longer than clients "
        "and load balancers keep theirs (httpx 5 s, many balancers 60 s), so none of them "
        "sends a request on a connection the API is closing.",
    )
    api_url: str = Field(default="", description="Where the CLI finds the API; derived when empty.")
    api_key: str = Field(
        default="", description="The key the CLI sends (`KEEL_API_KEY`); none when empty."
    )
    auth: Literal["auto", "required"] = Field(
        default="auto",
        description="`auto`: the API is open (every caller an admin) while no API key exists "
        "and it binds a loopback address, and refuses to start open on any other address; "
        "keys are required once one exists. `required`: keys always.",
    )
    api_rate_per_s: float = Field(
        default=20.0, gt=0, description="Requests per second each API key may sustain."
    )
    api_rate_burst: int = Field(
        default=60, ge=1, description="Requests a key may send at once before 429s start."
    )
    api_address_rate_per_s: float = Field(
        default=100.0,
        gt=0,
        description="Requests per second each client address may sustain without a key (open "
        "mode), in each API process.",
    )
    api_address_rate_burst: int = Field(
        default=200, ge=1, description="Keyless requests an address may send at once."
    )
    api_failed_auth_limit: int = Field(
        default=50,
        ge=1,
        description="Failed authentications (401) a client address may make in a window; after "
        "them it gets 429 until the window ends. Shared by API processes on one database.",
    )
    api_failed_auth_window_s: float = Field(
        default=60.0, gt=0, description="The window of `api_failed_auth_limit`."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins (`https://app.example.com`) whose pages may call the API from a "
        "browser (CORS). None by default: no CORS headers, preflights refused.",
    )
    database_url: str = Field(default="", description="SQLAlchemy async URL; SQLite when empty.")
    otel_endpoint: str = Field(
        default="",
        description="OTLP/HTTP collector (e.g. http://127.0.0.1:4318): traces are exported "
        "there; also taken from OTEL_EXPORTER_OTLP_ENDPOINT. Unset: no exporter, no cost.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="`keel worker` serves Prometheus metrics on this port (on KEEL_API_HOST), "
        "without a key.",
    )
    api_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="`keel api` and `keel up` also serve Prometheus metrics on this port (on "
        "KEEL_API_HOST), without a key: for a scraper on a private network. /metrics on the "
        "API's own port takes an operator key whenever keys are required.",
    )
    review_threshold: float = Field(
        default=0.6, ge=0.0, le=1.0, description="Confidence below which a run escalates."
    )
    review_timeout_s: float = Field(
        default=7 * 24 * 3600, gt=0, description="A pending review expires (rejected) after this."
    )
    deployments: dict[str, Deployment] = Field(
        default_factory=dict, description="Models by name; `local` is always there."
    )
    routes: dict[str, Route] = Field(
        default_factory=dict,
        description="Routes by name; `default` and `judge` are `local` unless set.",
    )
    model_circuit_failures: int = Field(
        default=3,
        ge=1,
        description="Consecutive failures (429, 5xx, timeouts) of a deployment that open its "
        "circuit in a worker; a refused key or an unknown model opens it at once.",
    )
    model_circuit_cooldown_s: float = Field(
        default=30.0, gt=0, description="An open circuit lets a probe call through after this."
    )
    model_rate_limit_cooldown_s: float = Field(
        default=5.0,
        gt=0,
        description="A deployment rate limited while its route has another candidate rests "
        "this long (or for its Retry-After), and the route moves on at once.",
    )
    run_budget_usd: float | None = Field(
        default=None, gt=0, description="Model spend per run before `budget_action` applies."
    )
    http_get_allow_hosts: list[str] = Field(
        default_factory=list, description="Hosts the `http_get` tool may fetch (exact names)."
    )
    http_get_allow_private: bool = Field(
        default=False, description="Let `http_get` reach loopback, link-local and private nets."
    )
    http_get_max_bytes: int = Field(
        default=1_000_000, ge=1, description="`http_get` cuts longer bodies (and says so)."
    )
    budget_action: Literal["escalate", "fail"] = Field(
        default="escalate", description="Over budget: ask a reviewer, or fail the run."
    )
    escalation: EscalationSettings = Field(
        default_factory=EscalationSettings,
        description="Per-agent and per-node escalation rules, review queues and their SLAs.",
    )
    guards: GuardSettings = Field(
        default_factory=GuardSettings, description="PII, policy terms, redaction."
    )
    review_claim_lease_s: float = Field(
        default=300.0, gt=0, description="How long a reviewer's claim holds a review."
    )

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            exact = f"{parts.scheme}://{parts.netloc}"
            if parts.scheme not in ("http", "https") or not parts.hostname or origin != exact:
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], as a browser "
                    "sends it (no path, no trailing slash, no wildcard)"
                )
        return origins

    @model_validator(mode="after")
    def _routes_name_deployments(self) -> Self:
        self.deployments.setdefault("local", LOCAL_DEPLOYMENT)
        self.routes.setdefault("default", Route(candidates=["local"]))
        self.routes.setdefault(JUDGE_ROUTE, Route(candidates=["local"]))
        for name, route in self.routes.items():
            for candidate in route.candidates:
                if candidate not in self.deployments:
                    raise ValueError(
                        f"routes.{name}.candidates names deployment {candidate!r}, which is not "
                        f"defined; deployments: {', '.join(sorted(self.deployments))}"
                    )
        return self

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

    @computed_field
    @property
    def ui_url(self) -> str:
        """The Temporal UI's base address."""
        if self.temporal_ui_url:
            return self.temporal_ui_url.rstrip("/")
        host = self.temporal_address.rsplit(":", 1)[0]
        return f"http://{host}:{self.temporal_ui_port}"

    @computed_field
    @property
    def codec_cors_origins(self) -> list[str]:
        """The origins the codec server answers: `codec_origins`, or the Temporal UI's."""
        if self.codec_origins:
            return [origin.rstrip("/") for origin in self.codec_origins]
        ui = urlsplit(self.ui_url)
        origins = [f"{ui.scheme}://{ui.netloc}"]
        if ui.hostname in ("127.0.0.1", "localhost"):
            twin = "localhost" if ui.hostname == "127.0.0.1" else "127.0.0.1"
            origins.append(
                f"{ui.scheme}://{twin}:{ui.port}" if ui.port else f"{ui.scheme}://{twin}"
            )
        return origins

    @computed_field
    @property
    def api_base_url(self) -> str:
        """The API's base address, as the CLI reaches it."""
        if self.api_url:
            return self.api_url.rstrip("/")
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host
        return f"http://{host}:{self.api_port}"

    @computed_field
    @property
    def sql_url(self) -> str:
        """The SQL database's address."""
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'keel.db'}"

    def run_ui_url(self, run_id: str) -> str:
        """The Temporal UI page of one run."""
        return f"{self.ui_url}/namespaces/{self.temporal_namespace}/workflows/{run_id}"
