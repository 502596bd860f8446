"""Static checks of the Kubernetes manifests (deploy/kubernetes), without a cluster.

Each Kustomization (the base and the example overlay) is rendered by a small renderer for
the subset of Kustomize the manifests use (resources, namespace, labels, images, replicas,
strategic-merge patches, secret generators without a hash suffix), checked against
`kubectl kustomize` when a kubectl is on PATH, and every rendered object is validated
against the Kubernetes JSON schema of `KUBERNETES_VERSION`, strictly (no unknown fields), as
shipped by the ``kubernetes-validate`` package. Then the invariants Keel relies on: probes on
the API's real route and port, only real `KEEL_*` settings, a `keel.toml` that `Settings`
reads, the image's user, working directory and data directory.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from kubernetes_validate import utils as kubernetes_validate
from pydantic import ValidationError

from api.app import create_app
from keel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAY = KUBERNETES / "overlays" / "example"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"

# The oldest Kubernetes minor version still supported upstream when these were written;
# autoscaling/v2 and every field used here are older.
KUBERNETES_VERSION = "1.32"
CLUSTER_SCOPED = {"Namespace"}
KEEL_CONTAINERS = {"keel-api": "api", "keel-worker": "worker"}
PLACEHOLDER = "REPLACE_ME"


# --- a renderer for the Kustomize subset the manifests use -----------------------------


def _load_all(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge for what the patches use: maps merge, named lists merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(item, dict) and "name" in item for item in base + patch)
    ):
        merged_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            match = next((i for i, b in enumerate(merged_list) if b["name"] == item["name"]), None)
            if match is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[match] = _merge(merged_list[match], item)
        return merged_list
    return copy.deepcopy(patch)


def _env_file(path: Path) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            pairs[key.strip()] = value
    return pairs


def _containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


def render(directory: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text("utf-8"))
    known = {
        "apiVersion",
        "kind",
        "namespace",
        "labels",
        "resources",
        "images",
        "replicas",
        "patches",
        "secretGenerator",
        "generatorOptions",
    }
    assert set(kustomization) <= known, f"renderer lacks {set(kustomization) - known}"
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        objects += render(path) if path.is_dir() else _load_all(path)

    options = kustomization.get("generatorOptions", {})
    for generator in kustomization.get("secretGenerator", []):
        assert options.get("disableNameSuffixHash"), "renderer supports unhashed names only"
        data: dict[str, str] = {}
        for env in generator.get("envs", []):
            data.update(_env_file(directory / env))
        for literal in generator.get("literals", []):
            key, value = literal.split("=", 1)
            data[key] = value
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": generator["name"]},
            "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        behavior = generator.get("behavior", "create")
        existing = [
            i
            for i, o in enumerate(objects)
            if o["kind"] == "Secret" and o["metadata"]["name"] == generator["name"]
        ]
        if behavior == "replace":
            assert len(existing) == 1, f"nothing to replace: {generator['name']}"
            old = objects[existing[0]]
            secret["metadata"] = copy.deepcopy(old["metadata"])
            objects[existing[0]] = secret
        else:
            assert not existing and behavior == "create", generator
            objects.append(secret)

    for patch_entry in kustomization.get("patches", []):
        for patch in _load_all(directory / patch_entry["path"]):
            targets = [
                i
                for i, o in enumerate(objects)
                if (o["kind"], o["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
            ]
            assert len(targets) == 1, f"patch target {patch['metadata']['name']}"
            objects[targets[0]] = _merge(objects[targets[0]], patch)

    for replica in kustomization.get("replicas", []):
        for obj in objects:
            if obj["kind"] == "Deployment" and obj["metadata"]["name"] == replica["name"]:
                obj["spec"]["replicas"] = replica["count"]

    for image in kustomization.get("images", []):
        for obj in objects:
            for container in _containers(obj):
                name, _, _tag = container["image"].partition(":")
                if name == image["name"]:
                    new = image.get("newName", name)
                    container["image"] = f"{new}:{image['newTag']}" if "newTag" in image else new

    for label in kustomization.get("labels", []):
        assert not label.get("includeSelectors") and not label.get("includeTemplates")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label["pairs"])

    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    return objects


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    keyed = {_key(o): o for o in objects}
    assert len(keyed) == len(objects), "two objects share a kind and a name"
    return keyed


@pytest.fixture(scope="module", params=["base", "overlay"])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(BASE if request.param == "base" else OVERLAY)


@pytest.fixture(scope="module")
def overlay() -> dict[tuple[str, str], dict[str, Any]]:
    return _by_key(render(OVERLAY))


@pytest.fixture(scope="module")
def base() -> dict[tuple[str, str], dict[str, Any]]:
    return _by_key(render(BASE))


def _config(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    return objects["ConfigMap", "keel-config"]["data"]


def _secret(obj: dict[str, Any]) -> dict[str, str]:
    values = dict(obj.get("stringData") or {})
    for key, value in (obj.get("data") or {}).items():
        values[key] = base64.b64decode(value).decode()
    return values


def _container(objects: dict[tuple[str, str], dict[str, Any]], deployment: str) -> dict[str, Any]:
    pod = objects["Deployment", deployment]["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == KEEL_CONTAINERS[deployment]]
    return container


# --- rendering and schema --------------------------------------------------------------


@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=["base", "overlay"])
def test_renderer_agrees_with_kubectl_kustomize(directory: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl on PATH: the schema tests below still run on our rendering")
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    theirs = sorted((o for o in yaml.safe_load_all(out) if o), key=_key)
    ours = sorted(render(directory), key=_key)
    assert [_key(o) for o in ours] == [_key(o) for o in theirs]
    for mine, kubectls in zip(ours, theirs, strict=True):
        # kustomize turns a replaced Secret's stringData into data; we compare values.
        if mine["kind"] == "Secret":
            assert _secret(mine) == _secret(kubectls), _key(mine)
            mine = {k: v for k, v in mine.items() if k not in ("data", "stringData")}
            kubectls = {k: v for k, v in kubectls.items() if k not in ("data", "stringData")}
        assert mine == kubectls, _key(mine)


def test_schema_is_the_stated_kubernetes_version() -> None:
    deployment = render(BASE)[0]
    assert kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True) == (
        KUBERNETES_VERSION
    )


def test_every_object_validates_against_the_kubernetes_schema(
    rendered: list[dict[str, Any]],
) -> None:
    assert rendered
    for obj in rendered:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{_key(obj)} at {path}: {exc.message}")


@pytest.mark.parametrize(
    ("kind", "name", "path", "value"),
    [
        ("Deployment", "keel-api", ("spec", "replicas"), "two"),  # wrong type
        ("Deployment", "keel-api", ("spec", "template", "spec", "restartpolicy"), "Always"),
        ("Service", "keel-api", ("spec", "ports", 0, "port"), "http"),
        ("HorizontalPodAutoscaler", "keel-worker", ("spec", "maxReplicas"), None),
    ],
)
def test_schema_rejects_broken_variants(
    base: dict[tuple[str, str], dict[str, Any]], kind: str, name: str, path: tuple, value: object
) -> None:
    broken = copy.deepcopy(base[kind, name])
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_expected_objects(base: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert set(base) == {
        ("ServiceAccount", "keel"),
        ("ConfigMap", "keel-config"),
        ("Secret", "keel-secrets"),
        ("Secret", "keel-provider-keys"),
        ("PersistentVolumeClaim", "keel-data"),
        ("Deployment", "keel-api"),
        ("Service", "keel-api"),
        ("Deployment", "keel-worker"),
        ("HorizontalPodAutoscaler", "keel-worker"),
    }


# --- the API's probes and ports ---------------------------------------------------------


def _named_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return number


def test_api_probes_hit_healthz_on_the_api_port(
    overlay: dict[tuple[str, str], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    container = _container(overlay, "keel-api")
    config = _config(overlay)
    routes = {
        (route.path, method)
        for route in create_app(Settings(auth="required")).routes
        for method in getattr(route, "methods", ())
    }
    for probe in ("readinessProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert (http["path"], "GET") in routes, f"{probe}: no GET {http['path']} in the API"
        assert _named_port(container, http["port"]) == int(config["KEEL_API_PORT"])
        assert http.get("scheme", "HTTP") == "HTTP"
    # The probe sends no key: the route must answer without one while keys are required.
    monkeypatch.chdir(ROOT)
    response = TestClient(create_app(Settings(auth="required"))).get(
        container["livenessProbe"]["httpGet"]["path"]
    )
    assert response.status_code == 200, response.text


def test_metrics_ports_are_the_settings(overlay: dict[tuple[str, str], dict[str, Any]]) -> None:
    config = _config(overlay)
    api, worker = _container(overlay, "keel-api"), _container(overlay, "keel-worker")
    assert _named_port(api, "metrics") == int(config["KEEL_API_METRICS_PORT"])
    assert _named_port(worker, "metrics") == int(config["KEEL_METRICS_PORT"])
    service = overlay["Service", "keel-api"]["spec"]
    targets = {p["name"]: _named_port(api, p["targetPort"]) for p in service["ports"]}
    assert targets == {
        "http": int(config["KEEL_API_PORT"]),
        "metrics": int(config["KEEL_API_METRICS_PORT"]),
    }


def test_selectors_match_pods(rendered: list[dict[str, Any]]) -> None:
    objects = _by_key(rendered)
    pods = {
        name: o["spec"]["template"]["metadata"]["labels"]
        for (kind, name), o in objects.items()
        if kind in ("Deployment", "StatefulSet")
    }
    for (kind, name), obj in objects.items():
        if kind in ("Deployment", "StatefulSet"):
            assert obj["spec"]["selector"]["matchLabels"].items() <= pods[name].items()
        if kind == "Service":
            matched = [
                n for n, labels in pods.items() if obj["spec"]["selector"].items() <= labels.items()
            ]
            assert matched == [name], f"Service {name} selects {matched}"
        if kind == "HorizontalPodAutoscaler":
            target = obj["spec"]["scaleTargetRef"]
            assert ("Deployment", target["name"]) in objects and target["kind"] == "Deployment"


def test_worker_scales_on_cpu_from_its_request(
    overlay: dict[tuple[str, str], dict[str, Any]],
) -> None:
    hpa = overlay["HorizontalPodAutoscaler", "keel-worker"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "keel-worker"
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # Utilisation is relative to the request: without one the HPA cannot act.
    assert _container(overlay, "keel-worker")["resources"]["requests"]["cpu"]


# --- settings ---------------------------------------------------------------------------


def _settings_fields() -> set[str]:
    return {f"KEEL_{name.upper()}" for name in Settings.model_fields}


def _keel_env(objects: dict[tuple[str, str], dict[str, Any]], deployment: str) -> dict[str, str]:
    """What a Keel container's environment holds, from its envFrom sources and env."""
    container = _container(objects, deployment)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = objects["ConfigMap", source["configMapRef"]["name"]]["data"]
        else:
            key = ("Secret", source["secretRef"]["name"])
            if key not in objects:
                assert source["secretRef"].get("optional"), key
                continue
            data = _secret(objects[key])
        env.update({k: v for k, v in data.items() if re.fullmatch(r"[A-Z_][A-Z0-9_]*", k)})
    env.update({e["name"]: e.get("value", "") for e in container.get("env", [])})
    return env


@pytest.mark.parametrize("deployment", sorted(KEEL_CONTAINERS))
def test_environment_names_are_real_settings(
    rendered: list[dict[str, Any]], deployment: str
) -> None:
    objects = _by_key(rendered)
    env = _keel_env(objects, deployment)
    keel = {k for k in env if k.startswith("KEEL_")}
    assert keel, deployment
    unknown = keel - _settings_fields()
    assert not unknown, f"{deployment}: not Keel settings: {sorted(unknown)}"
    # Provider keys aside (named by keel.toml's api_key_env), only settings.
    assert set(env) == keel, sorted(set(env) - keel)


def test_api_and_worker_are_configured_alike(
    overlay: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert _keel_env(overlay, "keel-api") == _keel_env(overlay, "keel-worker")


def test_every_setting_name_in_the_manifests_is_real() -> None:
    """Also names in comments and docs-like text: a misspelt setting is caught anywhere."""
    fields = _settings_fields()
    for path in KUBERNETES.rglob("*"):
        if path.is_file():
            for name in re.findall(r"\bKEEL_[A-Z0-9_]+\b", path.read_text(encoding="utf-8")):
                assert name in fields, f"{path.relative_to(ROOT)}: {name} is not a setting"


def _valid_secrets() -> dict[str, str]:
    return {
        "KEEL_DATABASE_URL": "postgresql+asyncpg://keel:s3cret@keel-postgresql:5432/keel",
        "KEEL_AUDIT_KEY": "k" * 48,
        "KEEL_PAYLOAD_KEYRING": json.dumps(
            {"current": "k1", "keys": {"k1": base64.b64encode(bytes(32)).decode()}}
        ),
    }


def _settings_in_pod(
    objects: dict[tuple[str, str], dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    secrets: dict[str, str],
) -> Settings:
    """Settings as `keel` builds them in the pod: its environment, keel.toml in its cwd."""
    for name in list(os.environ):
        if name.startswith("KEEL_"):
            monkeypatch.delenv(name)
    env = _keel_env(objects, "keel-api") | secrets
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "keel.toml").write_text(_config(objects)["keel.toml"], encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return Settings()


def test_pod_settings_load(
    overlay: dict[tuple[str, str], dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings_in_pod(overlay, tmp_path, monkeypatch, _valid_secrets())
    assert settings.auth == "required"
    assert settings.api_host == "0.0.0.0"
    assert settings.data_dir == Path("/data")
    assert settings.payload_keyring is not None and settings.audit_key is not None
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.temporal_address.endswith(":7233")


def test_keel_toml_parses_into_settings(
    overlay: dict[tuple[str, str], dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = _config(overlay)["keel.toml"]
    for name in list(os.environ):
        if name.startswith("KEEL_"):
            monkeypatch.delenv(name)
    (tmp_path / "keel.toml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.routes["default"].candidates == ["local"]
    # And a typo in it would be refused, not ignored (the file is read at all).
    (tmp_path / "keel.toml").write_text(text + "\nnot_a_setting = 1\n", encoding="utf-8")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize("name", ["KEEL_AUDIT_KEY", "KEEL_PAYLOAD_KEYRING"])
def test_placeholders_are_refused(
    rendered: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    """Applied as shipped, Keel stops at start rather than run on a well-known secret."""
    objects = _by_key(rendered)
    shipped = _secret(objects["Secret", "keel-secrets"])
    assert shipped[name] == PLACEHOLDER
    assert PLACEHOLDER in shipped["KEEL_DATABASE_URL"]
    secrets = _valid_secrets() | {name: shipped[name]}
    with pytest.raises(ValidationError, match=name.removeprefix("KEEL_").lower()):
        _settings_in_pod(objects, tmp_path, monkeypatch, secrets)


def test_no_secret_in_the_config_map(overlay: dict[tuple[str, str], dict[str, Any]]) -> None:
    config = _config(overlay)
    for name in _valid_secrets():
        assert name not in config
    assert all(PLACEHOLDER in v for v in _secret(overlay["Secret", "keel-secrets"]).values())
    assert all(PLACEHOLDER in v for v in _secret(overlay["Secret", "keel-postgresql"]).values())


# --- the image, volumes and security --------------------------------------------------


def _dockerfile_runtime() -> dict[str, str]:
    instructions = [
        line.strip()
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    text = DOCKERFILE.read_text(encoding="utf-8")
    uid = re.search(r"useradd --system --uid (\d+)", text)
    assert uid
    workdir = [i.split()[1] for i in instructions if i.startswith("WORKDIR ")][-1]
    data_dir = re.search(r"KEEL_DATA_DIR=(\S+)", text)
    assert data_dir
    return {"uid": uid.group(1), "workdir": workdir, "data_dir": data_dir.group(1)}


def test_commands_match_compose(overlay: dict[tuple[str, str], dict[str, Any]]) -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
    for deployment, service in KEEL_CONTAINERS.items():
        assert _container(overlay, deployment)["command"] == compose[service]["command"]
    api_image = _container(overlay, "keel-api")["image"]
    assert api_image == _container(overlay, "keel-worker")["image"]
    assert api_image == "registry.example.com/keel:0.1.0"


@pytest.mark.parametrize("deployment", sorted(KEEL_CONTAINERS))
def test_pods_run_as_the_image_user_with_keel_toml_in_its_workdir(
    overlay: dict[tuple[str, str], dict[str, Any]], deployment: str
) -> None:
    image = _dockerfile_runtime()
    pod = overlay["Deployment", deployment]["spec"]["template"]["spec"]
    assert str(pod["securityContext"]["runAsUser"]) == image["uid"]
    assert str(pod["securityContext"]["fsGroup"]) == image["uid"]
    container = _container(overlay, deployment)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    toml = mounts[f"{image['workdir']}/keel.toml"]
    assert toml["subPath"] == "keel.toml" and toml["readOnly"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[toml["name"]]["configMap"]["name"] == "keel-config"
    config = _config(overlay)
    assert config["KEEL_DATA_DIR"] == image["data_dir"]
    data = mounts[config["KEEL_DATA_DIR"]]
    claim = volumes[data["name"]]["persistentVolumeClaim"]["claimName"]
    assert overlay["PersistentVolumeClaim", claim]["spec"]["accessModes"] == ["ReadWriteMany"]
    # The payload store and the audit checkpoints are on the shared volume.
    for setting in ("KEEL_PAYLOAD_DIR", "KEEL_AUDIT_CHECKPOINT_DIR"):
        assert Path(config[setting]).is_relative_to(config["KEEL_DATA_DIR"]), setting
    assert "/tmp" in mounts and "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_every_container_is_locked_down(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        pod = obj.get("spec", {}).get("template", {}).get("spec")
        if pod is None:
            continue
        assert pod["securityContext"]["runAsNonRoot"] is True, _key(obj)
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod.get("automountServiceAccountToken") is False, _key(obj)
        for container in _containers(obj):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, _key(obj)
            assert context["capabilities"]["drop"] == ["ALL"], _key(obj)
            assert container["resources"]["requests"], _key(obj)
            assert container["resources"]["limits"]["memory"], _key(obj)
            if obj["metadata"]["name"] in KEEL_CONTAINERS:
                assert context["readOnlyRootFilesystem"] is True, _key(obj)


def test_overlay_uses_the_example_postgresql(
    overlay: dict[tuple[str, str], dict[str, Any]],
) -> None:
    from urllib.parse import urlsplit

    url = urlsplit(_secret(overlay["Secret", "keel-secrets"])["KEEL_DATABASE_URL"])
    service = overlay["Service", url.hostname or ""]
    assert url.port in [p["port"] for p in service["spec"]["ports"]]
    statefulset = overlay["StatefulSet", "keel-postgresql"]["spec"]
    (postgres,) = statefulset["template"]["spec"]["containers"]
    assert postgres["image"].startswith("pgvector/pgvector:")
    env = {e["name"]: e for e in postgres["env"]}
    assert env["POSTGRES_USER"]["value"] == url.username
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "keel-postgresql"
    init = overlay["ConfigMap", "keel-postgresql-init"]["data"]["01-keel-db.sql"]
    assert "CREATE DATABASE keel" in init
    assert (
        overlay["Namespace", "keel"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        == "restricted"
    )


# --- Temporal from its Helm chart -------------------------------------------------------


def test_temporal_helm_values_match_keel(overlay: dict[tuple[str, str], dict[str, Any]]) -> None:
    from urllib.parse import urlsplit

    values = yaml.safe_load((KUBERNETES / "temporal-values.yaml").read_text(encoding="utf-8"))
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
    server = values["server"]
    assert (
        f"{server['image']['repository']}:{server['image']['tag']}"
        == (compose["temporal"]["image"])
    )
    admin = values["admintools"]["image"]
    assert f"{admin['repository']}:{admin['tag']}" == compose["temporal-schema"]["image"]
    web = values["web"]["image"]
    assert f"{web['repository']}:{web['tag']}" == compose["temporal-ui"]["image"]
    assert values["web"]["service"]["type"] == "ClusterIP"
    # Release `temporal` in namespace `temporal`: the frontend Keel dials.
    config = _config(overlay)
    assert config["KEEL_TEMPORAL_ADDRESS"] == "temporal-frontend.temporal.svc.cluster.local:7233"
    namespaces = [n["name"] for n in server["config"]["namespaces"]["namespace"]]
    assert server["config"]["namespaces"]["create"] is True
    assert config["KEEL_TEMPORAL_NAMESPACE"] in namespaces
    # Persistence and visibility on Keel's PostgreSQL, as in compose.
    url = urlsplit(_secret(overlay["Secret", "keel-secrets"])["KEEL_DATABASE_URL"])
    stores = server["config"]["persistence"]
    for store, database in (("default", "temporal"), ("visibility", "temporal_visibility")):
        sql = stores[store]["sql"]
        assert stores[store]["driver"] == "sql" and sql["driver"] == "postgres12"
        namespace = overlay["Service", url.hostname or ""]["metadata"]["namespace"]
        assert sql["host"] == f"{url.hostname}.{namespace}.svc.cluster.local"
        assert (sql["port"], sql["user"], sql["database"]) == (url.port, url.username, database)
        assert "password" not in sql and sql["existingSecret"]
    for bundled in ("cassandra", "mysql", "postgresql", "elasticsearch", "prometheus", "grafana"):
        assert values[bundled]["enabled"] is False, bundled
    codec = {e["name"]: e["value"] for e in values["web"]["additionalEnv"]}
    assert codec["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")


def test_keda_scaler_watches_keels_task_queue(
    overlay: dict[tuple[str, str], dict[str, Any]],
) -> None:
    scaled = yaml.safe_load((KUBERNETES / "keda-scaledobject.yaml").read_text(encoding="utf-8"))
    assert (scaled["apiVersion"], scaled["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    assert ("Deployment", scaled["spec"]["scaleTargetRef"]["name"]) in overlay
    (trigger,) = scaled["spec"]["triggers"]
    config = _config(overlay)
    assert trigger["type"] == "temporal"
    assert trigger["metadata"]["taskQueue"] == config["KEEL_TASK_QUEUE"]
    assert trigger["metadata"]["namespace"] == config["KEEL_TEMPORAL_NAMESPACE"]
    assert trigger["metadata"]["endpoint"] == config["KEEL_TEMPORAL_ADDRESS"]
    hpa = overlay["HorizontalPodAutoscaler", "keel-worker"]["spec"]
    assert scaled["spec"]["minReplicaCount"] == hpa["minReplicas"]


@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=["base", "overlay"])
def test_every_file_is_used(directory: Path) -> None:
    """A manifest left out of its kustomization.yaml would never be applied."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text("utf-8"))
    used = set(kustomization.get("resources", []))
    used |= {p["path"] for p in kustomization.get("patches", [])}
    used |= {e for g in kustomization.get("secretGenerator", []) for e in g.get("envs", [])}
    files = {p.name for p in directory.iterdir() if p.name != "kustomization.yaml"}
    assert files <= used, sorted(files - used)
