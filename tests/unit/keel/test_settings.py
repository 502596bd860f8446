"""Settings (defaults, environment, `keel.toml`) and the validators of request models."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from keel.schemas.model import Message, ModelRequest
from keel.schemas.reviews import ReviewDecision
from keel.settings import Settings

pytestmark = pytest.mark.usefixtures("clean_env")


def _toml(text: str) -> None:
    Path("keel.toml").write_text(text, encoding="utf-8")


# --- defaults and derived addresses -----------------------------------------------------


def test_defaults_are_the_embedded_stack() -> None:
    s = Settings()
    assert s.sql_url == "sqlite+aiosqlite:///.keel/keel.db"
    assert s.ui_url == "http://127.0.0.1:8233"
    assert s.api_base_url == "http://127.0.0.1:8000"
    assert s.run_ui_url("run-1") == "http://127.0.0.1:8233/namespaces/default/workflows/run-1"


def test_sqlite_file_lives_under_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "state")
    assert s.sql_url == f"sqlite+aiosqlite:///{tmp_path}/state/keel.db"


def test_database_url_replaces_sqlite() -> None:
    url = "postgresql+asyncpg://keel@db/keel"
    assert Settings(database_url=url).sql_url == url


def test_ui_url_takes_the_temporal_host_and_the_ui_port() -> None:
    s = Settings(temporal_address="temporal.internal:7233", temporal_ui_port=8080)
    assert s.ui_url == "http://temporal.internal:8080"
    assert s.run_ui_url("r") == "http://temporal.internal:8080/namespaces/default/workflows/r"


def test_explicit_ui_url_wins_without_its_trailing_slash() -> None:
    s = Settings(temporal_ui_url="https://ui.example.com/", temporal_namespace="prod")
    assert s.ui_url == "https://ui.example.com"
    assert s.run_ui_url("r") == "https://ui.example.com/namespaces/prod/workflows/r"


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_api_base_url_reaches_a_wildcard_host_on_loopback(host: str) -> None:
    assert Settings(api_host=host, api_port=9001).api_base_url == "http://127.0.0.1:9001"


def test_api_base_url_keeps_a_named_host() -> None:
    assert Settings(api_host="api.internal").api_base_url == "http://api.internal:8000"


def test_explicit_api_url_wins_without_its_trailing_slash() -> None:
    assert Settings(api_url="https://keel.example.com/").api_base_url == "https://keel.example.com"


# --- sources ----------------------------------------------------------------------------


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_API_PORT", "9100")
    monkeypatch.setenv("KEEL_TEMPORAL_ADDRESS", "temporal:7233")
    monkeypatch.setenv("KEEL_REVIEW_THRESHOLD", "0.25")
    monkeypatch.setenv("KEEL_TEMPORAL_DEV_TUNED", "false")
    s = Settings()
    assert s.api_port == 9100
    assert s.api_base_url == "http://127.0.0.1:9100"
    assert s.ui_url == "http://temporal:8233"
    assert s.review_threshold == 0.25
    assert s.temporal_dev_tuned is False


def test_keel_toml_in_the_working_directory_is_read() -> None:
    _toml('api_port = 9000\ntask_queue = "from-toml"\n')
    s = Settings()
    assert s.api_port == 9000
    assert s.task_queue == "from-toml"


def test_environment_wins_over_keel_toml(monkeypatch: pytest.MonkeyPatch) -> None:
    _toml('api_port = 9000\ntask_queue = "from-toml"\n')
    monkeypatch.setenv("KEEL_API_PORT", "9100")
    s = Settings()
    assert s.api_port == 9100
    assert s.task_queue == "from-toml"


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_API_PORT", "9100")
    assert Settings(api_port=9200).api_port == 9200


def test_unknown_key_in_keel_toml_is_refused_by_name() -> None:
    _toml("api_port = 9000\napi_prot = 9001\n")
    with pytest.raises(ValidationError) as caught:
        Settings()
    errors = caught.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [(("api_prot",), "extra_forbidden")]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KEEL_API_PORT", "0"),
        ("KEEL_API_PORT", "65536"),
        ("KEEL_TEMPORAL_UI_PORT", "70000"),
        ("KEEL_REVIEW_THRESHOLD", "1.5"),
        ("KEEL_REVIEW_THRESHOLD", "-0.1"),
        ("KEEL_REVIEW_TIMEOUT_S", "0"),
        ("KEEL_WORKER_MAX_CACHED_WORKFLOWS", "-1"),
    ],
)
def test_out_of_range_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    field = variable.removeprefix("KEEL_").lower()
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


def test_out_of_range_value_in_keel_toml_is_refused() -> None:
    _toml("review_threshold = 2\n")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert [e["loc"] for e in caught.value.errors()] == [("review_threshold",)]


@pytest.mark.parametrize("port", [1, 65535])
def test_port_bounds_are_inclusive(port: int) -> None:
    assert Settings(api_port=port).api_port == port


# --- ReviewDecision ---------------------------------------------------------------------


def test_edit_requires_an_answer() -> None:
    with pytest.raises(ValidationError, match="needs the edited 'answer'"):
        ReviewDecision(action="edit")


def test_edit_refuses_an_empty_answer() -> None:
    with pytest.raises(ValidationError) as caught:
        ReviewDecision(action="edit", answer="")
    assert [e["loc"] for e in caught.value.errors()] == [("answer",)]


def test_edit_keeps_its_answer() -> None:
    assert ReviewDecision(action="edit", answer="Use the link.").answer == "Use the link."


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_approve_and_reject_refuse_an_answer(action: str) -> None:
    with pytest.raises(ValidationError, match="only an 'edit' decision carries an 'answer'"):
        ReviewDecision.model_validate({"action": action, "answer": "something"})


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_approve_and_reject_stand_alone(action: str) -> None:
    decision = ReviewDecision.model_validate({"action": action, "comment": "ok"})
    assert (decision.action, decision.answer, decision.comment) == (action, None, "ok")


def test_unknown_action_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        ReviewDecision.model_validate({"action": "escalate"})
    assert [e["loc"] for e in caught.value.errors()] == [("action",)]


# --- ModelRequest -----------------------------------------------------------------------


def test_model_request_needs_a_user_message() -> None:
    with pytest.raises(ValidationError, match="at least one 'user' message"):
        ModelRequest(
            messages=[
                Message(role="system", content="Be brief."),
                Message(role="assistant", content="Hello."),
            ]
        )


def test_model_request_needs_a_message() -> None:
    with pytest.raises(ValidationError) as caught:
        ModelRequest(messages=[])
    assert [e["loc"] for e in caught.value.errors()] == [("messages",)]


def test_model_request_question_is_the_last_user_message() -> None:
    request = ModelRequest(
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="first"),
            Message(role="assistant", content="?"),
            Message(role="user", content="second"),
        ]
    )
    assert request.question == "second"


def test_cors_origins_are_none_by_default_and_must_be_origins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().cors_origins == []
    monkeypatch.setenv("KEEL_CORS_ORIGINS", '["https://app.example", "http://localhost:3000"]')
    assert Settings().cors_origins == ["https://app.example", "http://localhost:3000"]
    for wrong in ("*", "https://app.example/", "app.example", "https://app.example/page"):
        monkeypatch.setenv("KEEL_CORS_ORIGINS", f'["{wrong}"]')
        with pytest.raises(ValidationError, match="is not an origin"):
            Settings()
