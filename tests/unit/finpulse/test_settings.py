"""Settings: defaults run locally; env and TOML override; bad values fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from finpulse.errors import ConfigError
from finpulse.settings import DEFAULT_DATA_DIR, SHARED_DIR, AlertsSettings, load_settings, unknown_env


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FINPULSE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./finpulse.toml


def test_defaults_run_on_one_machine() -> None:
    s = load_settings()
    assert s.kafka.bootstrap == "127.0.0.1:9092"
    assert s.kafka.topics.raw == "news.raw"
    assert s.model.train_data_dir == SHARED_DIR / "data"
    assert s.store.url.startswith("duckdb:///")
    assert s.alerts.slack_token is None


def test_env_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINPULSE_KAFKA_BOOTSTRAP", "broker:29092")
    monkeypatch.setenv("FINPULSE_MODEL_BATCH_WINDOW_S", "1.5")
    monkeypatch.setenv("FINPULSE_ALERTS_SLACK_TOKEN", "xoxb-secret-value")
    s = load_settings()
    assert s.kafka.bootstrap == "broker:29092"
    assert s.model.batch_window_s == 1.5
    assert s.alerts.slack_token is not None
    assert s.alerts.slack_token.get_secret_value() == "xoxb-secret-value"
    assert "xoxb-secret-value" not in repr(s)
    assert "xoxb-secret-value" not in str(s.model_dump())


def test_toml_file_and_env_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "custom.toml"
    cfg.write_text(
        '[kafka]\nbootstrap = "from-toml:1"\n[kafka.topics]\npartitions = 12\n[model]\nmax_batch = 8\n'
    )
    monkeypatch.setenv("FINPULSE_CONFIG", str(cfg))
    s = load_settings()
    assert (s.kafka.bootstrap, s.kafka.topics.partitions, s.model.max_batch) == ("from-toml:1", 12, 8)
    monkeypatch.setenv("FINPULSE_KAFKA_BOOTSTRAP", "from-env:2")
    assert load_settings().kafka.bootstrap == "from-env:2"


def test_local_toml_is_picked_up(tmp_path: Path) -> None:
    (tmp_path / "finpulse.toml").write_text('log_level = "debug"\n')
    assert load_settings().log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "value", "field"),
    [
        ("FINPULSE_MODEL_MAX_BATCH", "0", "model.max_batch"),
        ("FINPULSE_KAFKA_LOCAL_PORT", "70000", "kafka.local_port"),
        ("FINPULSE_MODEL_BATCH_WINDOW_S", "soon", "model.batch_window_s"),
    ],
)
def test_bad_values_name_the_field(monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_settings()


def test_bad_levels_and_non_json_lists_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINPULSE_LOG_LEVEL", "verbose")  # was a traceback at logging's set-up
    with pytest.raises(ConfigError, match=r"log_level \(FINPULSE_LOG_LEVEL\): 'verbose' is not one of DEBUG"):
        load_settings()
    monkeypatch.delenv("FINPULSE_LOG_LEVEL")
    monkeypatch.setenv("FINPULSE_ALERTS_SINKS", "slack,console")  # a traceback from the env source
    with pytest.raises(
        ConfigError, match=r"cannot read FINPULSE_ALERTS_SINKS: a list or table there is JSON"
    ):
        load_settings()
    monkeypatch.setenv("FINPULSE_ALERTS_SINKS", '["slack", "console"]')
    assert load_settings().alerts.sinks == ("slack", "console")


def test_rocksdb_tables_are_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tried for real: the detect agent crashed at its first state write (Faust's RocksDB store
    # asserts an event in hand; the stage writes once per batch).
    monkeypatch.setenv("FINPULSE_STREAM_TABLE_STORE", "rocksdb://")
    with pytest.raises(
        ConfigError,
        match=r"stream\.table_store \(FINPULSE_STREAM_TABLE_STORE\): .*'rocksdb://' is not supported, only memory://",
    ):
        load_settings()


def test_a_grace_longer_than_the_lateness_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both count from a window's end: stories for a window still open would be refused as late.
    monkeypatch.setenv("FINPULSE_STREAM_CLOSE_GRACE_S", "900")
    with pytest.raises(
        ConfigError, match=r"allowed_lateness_s \(600\) must be at least close_grace_s \(900\)"
    ):
        load_settings()
    monkeypatch.setenv("FINPULSE_STREAM_ALLOWED_LATENESS_S", "900")
    assert load_settings().stream.close_grace_s == 900


def test_missing_config_file_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINPULSE_CONFIG", "/nonexistent/finpulse.toml")
    with pytest.raises(ConfigError, match="is not a file"):
        load_settings()


def test_a_config_file_that_is_not_toml_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "finpulse.toml"
    cfg.write_text("[kafka\n", encoding="utf-8")
    monkeypatch.setenv("FINPULSE_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match=rf"{cfg}: not valid TOML: Expected ']'.*line 1"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "FINPULSE_MODEL_DEVICE",
            "gpu",
            r"model.device \(FINPULSE_MODEL_DEVICE\): unknown device 'gpu': use auto",
        ),
        (
            "FINPULSE_MODEL_BACKEND",
            "fast",
            r"model.backend \(FINPULSE_MODEL_BACKEND\): unknown back end 'fast'",
        ),
    ],
)
def test_the_model_device_and_back_end_are_checked_at_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()
    for good in ("cuda:1", "cpu") if variable.endswith("DEVICE") else ("onnx-int8", "cuda-fp16"):
        monkeypatch.setenv(variable, good)
        assert getattr(load_settings().model, variable.rsplit("_", 1)[1].lower()) == good


def test_the_data_dir_holds_the_local_state_unless_a_place_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FINPULSE_DATA_DIR", str(tmp_path))
    s = load_settings()
    assert (s.kafka.local_dir, s.ingest.state_dir, s.model.model_dir) == (
        tmp_path / "kafka", tmp_path / "ingest", tmp_path / "model",
    )  # fmt: skip
    assert s.store.url == f"duckdb://{tmp_path / 'history.duckdb'}"
    monkeypatch.setenv("FINPULSE_MODEL_MODEL_DIR", "/models/today")
    monkeypatch.setenv("FINPULSE_STORE_URL", "postgresql://db/finpulse")
    s = load_settings()
    assert (s.model.model_dir, s.store.url) == (Path("/models/today"), "postgresql://db/finpulse")
    assert s.ingest.state_dir == tmp_path / "ingest"
    monkeypatch.delenv("FINPULSE_DATA_DIR")
    assert load_settings().ingest.state_dir == DEFAULT_DATA_DIR / "ingest"


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        s.kafka.bootstrap = "x"  # type: ignore[misc]


def test_the_model_reads_its_languages_and_stories_of_unknown_language(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = load_settings().model
    assert model.languages == ("en",)
    assert (model.reads("en"), model.reads(None), model.reads("de")) == (True, True, False)
    monkeypatch.setenv("FINPULSE_MODEL_LANGUAGES", '["en", "de"]')
    assert load_settings().model.reads("de")
    monkeypatch.setenv("FINPULSE_MODEL_LANGUAGES", "[]")  # empty: every story is scored
    assert load_settings().model.reads("ja")


def test_the_slack_token_file_counts_when_the_token_is_set_empty(tmp_path: Path) -> None:
    # Docker compose passes FINPULSE_ALERTS_SLACK_TOKEN empty when it is unset: the secret file counts.
    secret = tmp_path / "slack_token"
    secret.write_text("xoxb-from-a-file\n")
    alerts = AlertsSettings(slack_token=SecretStr(""), slack_token_file=secret)
    assert alerts.resolved_slack_token() == SecretStr("xoxb-from-a-file")
    missing = AlertsSettings(slack_token_file=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="cannot read FINPULSE_ALERTS_SLACK_TOKEN_FILE"):
        missing.resolved_slack_token()


def test_a_nested_table_set_field_by_field_says_how_to_write_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "none.toml").write_text("")
    monkeypatch.setenv("FINPULSE_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("FINPULSE_KAFKA_TOPICS_PARTITIONS", "12")
    with pytest.raises(ConfigError) as info:
        load_settings()
    said = " ".join(str(info.value).split())
    assert "FINPULSE_KAFKA_TOPICS_PARTITIONS): Extra inputs are not permitted" in said
    assert """a table is one JSON value: FINPULSE_KAFKA_TOPICS='{"partitions": ...}'""" in said


def test_a_bad_value_in_a_nested_table_names_the_table_s_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # It named FINPULSE_KAFKA_TOPICS_PARTITIONS, which is refused: the table is one JSON value.
    monkeypatch.setenv("FINPULSE_KAFKA_TOPICS", '{"partitions": 0}')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert (
        """kafka.topics.partitions (FINPULSE_KAFKA_TOPICS '{"partitions": ...}'): Input should be"""
        in str(info.value)
    )


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        # The settings ignored these: the history went to the default DuckDB file, ingest to local Kafka.
        ('[stroe]\nurl = "duckdb:///elsewhere.duckdb"\n', "stroe is no setting: did you mean store?"),
        ('data_dirr = "/tmp/x"\n', "data_dirr is no setting: did you mean data_dir?"),
        # This one was refused as FINPULSE_KAFKA_BOOTSRAP, a variable nobody set.
        ('[kafka]\nbootsrap = "x:1"\n', "kafka.bootsrap is no setting: did you mean kafka.bootstrap?"),
        (
            "[kafka.topics]\nPARTITIONS = 3\n",
            "kafka.topics.PARTITIONS is no setting: did you mean kafka.topics.partitions?",
        ),
        ("zzz = 1\n", "zzz is no setting: the settings there are data_dir, log_level, kafka, ingest"),
    ],
)
def test_a_misspelt_key_in_the_config_file_is_refused_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, toml: str, said: str
) -> None:
    cfg = tmp_path / "custom.toml"
    cfg.write_text(f'log_level = "debug"\n{toml}')
    monkeypatch.setenv("FINPULSE_CONFIG", str(cfg))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(f"{cfg}: {said}")
    assert "FINPULSE_" not in str(info.value)
    cfg.write_text('LOG_LEVEL = "debug"\n')  # top-level keys are read in any case
    assert load_settings().log_level == "DEBUG"


def test_a_mistyped_variable_is_named_with_the_setting_it_may_mean(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from finpulse.cli import settings

    monkeypatch.setenv("FINPULSE_DATA_DIRR", "/tmp/x")
    s = settings()  # (it configures logging: a line on stderr)
    assert s.data_dir == DEFAULT_DATA_DIR  # ignored, as before: a warning, not an error
    said = " ".join(capsys.readouterr().err.split())
    assert "FINPULSE_DATA_DIRR is no setting and is ignored: did you mean FINPULSE_DATA_DIR?" in said


def test_settings_and_known_variables_draw_no_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "none.toml").write_text("")
    known = {
        "FINPULSE_CONFIG": str(tmp_path / "none.toml"),
        "FINPULSE_DATA_DIR": str(tmp_path),
        "FINPULSE_LOG_LEVEL": "info",
        "FINPULSE_KAFKA_BOOTSTRAP": "127.0.0.1:9092",
        "FINPULSE_KAFKA": "{}",  # a whole group as JSON, as `finpulse up` passes its children
        "FINPULSE_SHARED_DIR": str(tmp_path),
        "FINPULSE_TEST_CACHE": str(tmp_path),
        "FINPULSE_TEST_POSTGRES_URL": "postgresql://u:p@127.0.0.1:5432/db",
    }
    for name, value in known.items():
        monkeypatch.setenv(name, value)
    assert unknown_env() == []
    assert unknown_env({"FINPULSE_ZZZ": "1"}) == [
        "FINPULSE_ZZZ is no setting and is ignored: settings are FINPULSE_<FIELD> or FINPULSE_<GROUP>_<FIELD>"
    ]


def test_the_metrics_host_is_loopback_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINPULSE_ALERTS_METRICS_HOST", "0.0.0.0")  # a Prometheus on another host
    s = load_settings()
    hosts = (s.alerts.metrics_host, s.api.metrics_host, s.ingest.metrics_host, s.stream.metrics_host)
    assert hosts == ("0.0.0.0", "127.0.0.1", "127.0.0.1", "127.0.0.1")
    assert unknown_env({"FINPULSE_API_METRICS_HOST": "0.0.0.0"}) == []
