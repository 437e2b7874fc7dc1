"""Process settings as the environment gives them: one flat `Settings`, every variable `CONTINUUM_<FIELD>`.

One `Settings` object is read from the environment (and an optional `.env` file) once, at an entry
point; its typed sections (`settings.drift`, `settings.gates`, ..., `ml.settings.sections`) are what
is passed down. A wrong value fails at start with the variable's name and what would fix it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cached_property
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CONTINUUM_"


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the variable and the fix."""


class Settings(BaseSettings):
    """Everything a Continuum process needs to know about its environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port]")
    mlflow_tracking_uri: str = Field("http://127.0.0.1:5000", description="MLflow tracking server URL")
    lake_uri: str = Field(".local/lake", description="lake root: a local folder or s3://bucket/prefix")
    s3_endpoint_url: str | None = Field(None, description="S3 API endpoint (MinIO, moto); empty means AWS")
    model_name: str = Field("machine-failure", description="registered model name in MLflow")
    contract: str = Field("machine_telemetry", description="event contract: a name under ml/contracts or a YAML path")
    serving_port: int = Field(8000, ge=1, le=65535, description="HTTP port of the serving sidecar")
    serving_host: str = Field("127.0.0.1", description="address the sidecar's HTTP server binds (0.0.0.0 in a container)")
    serving_group: str = Field("continuum-serving", description="Kafka consumer group the sidecar replicas share")
    serving_session_timeout_ms: int = Field(
        10_000, ge=6_000, le=1_800_000,
        description="milliseconds (6000-1800000, the broker's default bounds) a sidecar replica may go silent before "
                    "the group hands its partitions to the others: a killed replica's partitions move on within it")
    serving_batch_max: int = Field(20_000, ge=1, le=100_000, description="most events (1-100000) the sidecar scores in one micro-batch")
    serving_batch_wait_ms: float = Field(
        5.0, ge=0, le=10_000, description="milliseconds (0-10000) the sidecar waits to fill a micro-batch")
    serving_poll_s: float = Field(
        30.0, gt=0, le=3600, description="seconds (0-3600] between checks of the champion alias, the fallback to control messages")
    serving_shadow: bool = Field(False, description="true or false: also score the challenger to topic_predictions_shadow")
    serving_dlq_max_bytes: int = Field(
        65_536, ge=1024, le=900_000,
        description="most bytes (1024-900000, below the producer's message.max.bytes of 1000000) of one dead letter, "
                    "key, value and headers; a longer one keeps a prefix of its value and a `truncated` header")
    serving_max_body_bytes: int = Field(
        1024 * 1024, ge=1024, le=1024 ** 3,
        description="bytes (1 KiB-1 GiB): the largest POST /predict body; a longer declared Content-Length gets 413 unread")
    serving_token: SecretStr = Field(
        SecretStr(""), description="the bearer token POST /predict requires (Authorization: Bearer ...); "
                                   "empty: /predict answers 503 and the stream is scored as ever")
    serving_max_events: int = Field(
        1000, ge=1, le=100_000, description="most events (1-100000) in one POST /predict body; more get 413")
    serving_max_concurrent: int = Field(
        16, ge=1, le=1024, description="most HTTP requests (1-1024) the sidecar serves at once; "
                                       "one more is answered 503 at once, never queued on a new thread")
    serving_request_timeout_s: float = Field(
        10.0, gt=0, le=600, description="seconds (0-600] a client may take to send a request; a slower one gets "
                                        "408 (or is closed) and frees its place")
    expectations_dir: str | None = Field(
        None, description="the folder of the Great Expectations suites (empty: the repository's expectations/)")
    kafka_conn_id: str = Field("kafka_default", description="the Airflow connection with the Kafka client config")
    offload_lateness_minutes: float = Field(
        10.0, ge=0, le=24 * 60, description="minutes (0-1440) a record may arrive out of order and still count for its hour")
    max_event_skew_minutes: float = Field(
        30.0, gt=0, le=24 * 60, description="minutes (0-1440]: how far an event's own time may lie from its Kafka "
        "record timestamp before the offload quarantines it (reason event_time_skew)")
    offload_start: datetime = Field(
        datetime(2026, 11, 1, tzinfo=timezone.utc), description="an ISO time: the first hour lake_offload schedules, and the start_date of the DAGs downstream of it")
    offload_catchup: bool = Field(False, description="true or false: schedule every hour since offload_start")
    silence_hours: int = Field(
        2, ge=1, le=168, description="hours (1-168): this many empty telemetry hours in a row raise one 'stream "
        "silent' alert, and the first hour with events after them one 'stream back'")

    # retraining (retrain_model) and promotion (promote_model)
    retrain_cron: str = Field("0 3 * * 1", description="a cron expression (UTC): the calendar retrain, weekly by default")
    retrain_window_days: float = Field(
        7.0, gt=0, le=366, description="days (0-366] of validated hours, ending now, that a retrain learns from")
    retrain_holdout_fraction: float = Field(
        0.2, gt=0, lt=0.5, description="a fraction in (0, 0.5): the most recent rows, kept as the shared holdout")
    retrain_validation_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="a fraction in (0, 0.5): rows before the holdout used for early stopping")
    retrain_min_rows: int = Field(1000, ge=10, description="an integer >= 10: fewest labelled rows worth training on")
    retrain_min_per_class: int = Field(
        20, ge=1, description="an integer >= 1: fewest failures (and non-failures) in the training set")
    retrain_search_seconds: float = Field(
        45.0, gt=0, le=3600, description="seconds (0-3600] the hyperparameter search may spend")
    retrain_search_rows: int = Field(
        200_000, ge=1000, description="an integer >= 1000: training rows sampled for the search (the final fit uses all)")
    retrain_max_rounds: int = Field(400, ge=1, description="an integer >= 1: most boosting rounds per fit")
    retrain_stream_rows: int = Field(
        2_000_000, ge=1000, description="an integer >= 1000: telemetry rows in a window above which a retrain streams "
        "the lake's hours through an XGBoost data iterator instead of reading the window into one frame")
    retrain_extmem_rows: int = Field(
        100_000_000, ge=1000, description="an integer >= 1000: training rows above which a streamed retrain also keeps "
        "its binned matrix on disk (XGBoost external memory) instead of in memory")
    dask_scheduler: str = Field(
        "", description="a dask.distributed scheduler address (tcp://host:8786): a streamed retrain fits its final "
        "model on that cluster (needs the dask extra); empty: in this process")
    retrain_regime_hours: int = Field(
        6, ge=0, le=24 * 14, description="an integer (0-336): hours since a drift began, with mature labels, that a "
        "drift-triggered retrain waits for and learns from; 0: retrain at once on the usual window")
    retrain_regime_timeout_hours: float = Field(
        24.0, gt=0, le=24 * 14, description="hours (0-336]: how long a drift-triggered retrain waits for those hours before it fails and alerts")
    serving_threshold: float = Field(
        0.5, gt=0, lt=1, description="a probability in (0, 1): scores at or above it are acted on")
    promotion_metric: str = Field("holdout_roc_auc", description="the holdout metric promotion compares, e.g. holdout_roc_auc")
    promotion_margin: float = Field(
        0.002, ge=0, le=1, description="a number in [0, 1]: how much the challenger must beat the champion by")
    promotion_floor: float = Field(
        0.70, ge=0, le=1, description="a number in [0, 1]: the metric a first model (no champion) must reach")
    promotion_max_latency_ms: float = Field(
        200.0, gt=0, description="milliseconds > 0: the slowest scoring allowed per 1,000 rows")
    promotion_max_model_bytes: int = Field(
        50_000_000, gt=0, description="bytes > 0: the largest model file allowed")
    approval_policy: str = Field("auto", pattern="^(auto|manual)$",
                                 description="auto (promote when every gate passes) or manual (a person approves)")
    approval_timeout_minutes: float = Field(
        24 * 60.0, gt=0, description="minutes > 0 to wait for a person to approve or reject a version")
    approval_ttl_hours: float = Field(
        24.0, gt=0, description="hours > 0 an approval stays valid: a version approved longer ago is not promoted "
                                "until it is approved again")
    approvers: str = Field(
        "approver", min_length=1, pattern=r"^\s*[^,\s]+(\s*,\s*[^,\s]+)*\s*$",
        description="comma-separated Airflow user names who may approve or reject a version (manual policy), "
                    "e.g. approver,alice")

    # monitoring (ml/drift, ml/policy.py, monitor_model): when drift, live metrics or age ask for a retrain
    drift_num_method: str = Field("wasserstein", description="an Evidently drift method for numeric features (a distance, e.g. wasserstein)")
    drift_cat_method: str = Field("jensenshannon", description="an Evidently drift method for categorical features (e.g. jensenshannon)")
    drift_num_threshold: float = Field(0.1, gt=0, description="a number > 0: the numeric distance at or above which a feature drifted (with calibration, the least threshold)")
    drift_cat_threshold: float = Field(0.1, gt=0, description="a number > 0: the categorical distance at or above which a feature drifted (with calibration, the least threshold)")
    drift_sample_rows: int = Field(
        100_000, ge=1000, description="an integer >= 1000: most rows of each side (reference, window) the drift report "
        "draws (the decision reads the summaries of every row)")
    drift_calibrate: bool = Field(
        False, description="true or false: calibrate each feature's threshold on the champion's reference at the "
        "window's row count, never below drift_num_threshold and drift_cat_threshold (false: those fixed thresholds)")
    drift_false_alarm_rate: float = Field(
        0.01, gt=0, lt=1, description="a fraction in (0, 1): with calibrated thresholds, the most a window of clean "
        "data may have any feature drifted (shared across the features: Bonferroni)")
    drift_share_threshold: float = Field(
        0.3, gt=0, le=1, description="a fraction in (0, 1]: share of drifted features at or above which a window counts as drifted")
    drift_windows_k: int = Field(3, ge=1, le=100, description="an integer (1-100): consecutive drifted windows that ask for a retrain")
    live_auc_floor: float = Field(0.70, ge=0, le=1, description="a number in [0, 1]: live AUC below it asks for a retrain")
    live_auc_drop_margin: float = Field(
        0.05, ge=0, le=1, description="a number in [0, 1]: a live AUC this far under the champion's holdout AUC asks for a retrain")
    min_mature_labels: int = Field(500, ge=1, description="an integer >= 1: fewest mature labels for the live AUC to count")
    max_model_age_hours: float = Field(
        14 * 24.0, gt=0, description="hours > 0: a champion older than this asks for a retrain")
    retrain_cooldown_hours: float = Field(
        6.0, ge=0, le=7 * 24, description="hours (0-168) after a retrain during which no other retrain is asked for")
    retrain_daily_budget: int = Field(3, ge=0, description="an integer >= 0: most retrains asked for in any 24 hours")
    drift_window_hours: int = Field(
        6, ge=1, le=24 * 14, description="an integer (1-336): valid telemetry hours of the recent window the drift check reads")
    drift_match_hour_of_day: bool = Field(
        True, description="true or false: compare a window with the reference rows of the same hours of the day (removes the daily cycle)")
    live_window_hours: int = Field(
        6, ge=1, le=24 * 14, description="an integer (1-336): hours of mature predictions the live metrics are computed on")
    live_min_label_coverage: float = Field(
        0.5, ge=0, le=1, description="a fraction in [0, 1]: share of mature predictions with a label for the live metrics to count")
    estimate_tolerance: float = Field(
        0.03, gt=0, le=1, description="a number in (0, 1]: a matured window whose ROC AUC estimated from calibrated "
        "scores is further than this from the realized one flags the estimator unreliable (concept drift)")
    estimate_auc_floor: float = Field(
        0.0, ge=0, le=1, description="a number in [0, 1]: an estimated ROC AUC of the latest hours (labels not in "
        "yet) below it asks for a metric retrain early; keep it under live_auc_floor; 0 turns it off")
    bake_hours: float = Field(
        24.0, ge=0, le=24 * 14, description="hours (0-336) a newly promoted champion is on probation: the shadow scores "
        "the previous champion and the monitor rolls back a champion worse than it; 0 turns the bake window off")
    bake_auc_margin: float = Field(
        0.02, ge=0, le=1, description="a number in [0, 1]: how much lower than the previous champion's the new one's "
        "ROC AUC on the same matured events must be, with the paired test's confidence, for a rollback")
    bake_confidence: float = Field(
        0.95, ge=0.5, lt=1, description="a probability in [0.5, 1): the confidence of the paired DeLong test over "
        "the whole bake window (split evenly between its hourly checks) that the new champion is worse by the margin")
    bake_min_labels: int = Field(
        200, ge=10, description="an integer >= 10: fewest matured events scored by both champions for a bake check")
    monitor_max_hours: int = Field(
        48, ge=1, le=24 * 31, description="an integer (1-744): most hours one monitor_model run evaluates (a range or a backlog)")

    # on-call alerts (ml/alerts.py, plugins/notifiers/on_call.py): channels come from Airflow connections
    alert_webhook_conn_id: str = Field("alert_webhook", description="the Airflow http connection whose host is the webhook URL")
    alert_smtp_conn_id: str = Field("smtp_default", description="the Airflow smtp connection for alert e-mail")
    alert_email_to: str = Field("", description="comma-separated e-mail recipients of alerts; empty sends no e-mail")
    alert_email_from: str | None = Field(None, description="sender address; empty uses the smtp connection's from_email")
    alert_cooldown_minutes: float = Field(
        60.0, ge=0, le=7 * 24 * 60, description="minutes (0-10080) an alert with the same dedupe key is not sent again")
    alert_state_path: str = Field(".local/alerts/state.json", description="a file path: when each dedupe key was last sent")
    alert_log_path: str | None = Field(None, description="a file path: also append every alert as a JSON line (local stack)")
    alert_to_topic: bool = Field(False, description="true or false: also produce every alert to topic_alerts (local stack)")

    # batch scoring (ml/batch, batch_score): history scored with a registered version, daily summaries
    batch_start: datetime = Field(
        datetime(2026, 11, 1, tzinfo=timezone.utc), description="an ISO date: the first day batch_score schedules")
    batch_catchup: bool = Field(False, description="true or false: schedule every day since batch_start")
    batch_delay_minutes: float = Field(
        120.0, ge=0, le=24 * 60,
        description="minutes (0-1440) after a day ends before batch_score scores it, so lake_offload has validated its last hours")
    batch_model: str = Field(
        "champion", pattern=r"^([0-9]+|[A-Za-z][A-Za-z0-9_-]*)$",
        description="a version number (7) or an alias (champion, challenger, previous): the model scheduled runs score with")

    topic_telemetry: str = "telemetry"
    topic_outcomes: str = "outcomes"
    topic_predictions: str = "predictions"
    topic_alerts: str = "alerts"
    topic_dlq: str = "telemetry.dlq"
    topic_control: str = "control"
    topic_predictions_shadow: str = "predictions.shadow"

    @field_validator("kafka_bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port], got {value!r}")
        return value

    @field_validator("mlflow_tracking_uri", "s3_endpoint_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:5000, got {value!r}")
        return value.rstrip("/")

    @field_validator("dask_scheduler")
    @classmethod
    def _check_scheduler(cls, value: str) -> str:
        value = value.strip()
        if value and (not urlparse(value).scheme or not urlparse(value).port):
            raise ValueError(f"expected a scheduler address such as tcp://127.0.0.1:8786, got {value!r}")
        return value

    @field_validator("lake_uri")
    @classmethod
    def _check_lake(cls, value: str) -> str:
        scheme = urlparse(value).scheme
        if scheme == "s3":
            if not urlparse(value).netloc:
                raise ValueError(f"expected s3://bucket/prefix, got {value!r}")
        elif scheme not in ("", "file"):
            raise ValueError(f"expected a local folder or s3://bucket/prefix, got {value!r}")
        return value.rstrip("/")

    @field_validator("offload_start", "batch_start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    # the typed sections (ml/settings/sections.py), each built once from the validated fields, on first use
    kafka = cached_property(lambda self: _sections().KafkaSettings.from_settings(self))
    lake = cached_property(lambda self: _sections().LakeSettings.from_settings(self))
    registry = cached_property(lambda self: _sections().RegistrySettings.from_settings(self))
    offload = cached_property(lambda self: _sections().OffloadSettings.from_settings(self))
    drift = cached_property(lambda self: _sections().DriftSettings.from_settings(self))
    live = cached_property(lambda self: _sections().LiveSettings.from_settings(self))
    retrain = cached_property(lambda self: _sections().RetrainSettings.from_settings(self))
    monitor = cached_property(lambda self: _sections().MonitorSettings.from_settings(self))
    bake = cached_property(lambda self: _sections().BakeSettings.from_settings(self))
    gates = cached_property(lambda self: _sections().GateSettings.from_settings(self))
    serving = cached_property(lambda self: _sections().ServingSettings.from_settings(self))
    alerts = cached_property(lambda self: _sections().AlertSettings.from_settings(self))
    batch = cached_property(lambda self: _sections().BatchSettings.from_settings(self))

    def model_copy(self, *, update=None, deep: bool = False) -> "Settings":
        """A copy (with `update`) whose sections are built again from its own fields."""
        copy = super().model_copy(update=update, deep=deep)
        for name in [k for k, v in vars(type(self)).items() if isinstance(v, cached_property)]:
            copy.__dict__.pop(name, None)
        return copy


def _sections():
    from ml.settings import sections  # the sections read this module's field defaults

    return sections


def load_settings(**overrides) -> Settings:
    """Read the settings once; on a bad value raise SettingsError naming the variable and the fix."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise settings_error(exc.errors()) from None


def settings_error(errors: list[dict], where: dict[str, str] | None = None) -> SettingsError:
    """A SettingsError with one line per wrong value (pydantic's `errors()`): the variable (and `where` it was given, when a
    section was built in code), the problem and the fix (the field's description)."""
    lines = []
    for err in errors:
        field = str(err["loc"][0]) if err["loc"] else "?"
        hint = Settings.model_fields[field].description if field in Settings.model_fields else None
        fix = f" (fix: set it to {hint})" if hint else ""
        given = f" ({where[field]})" if where and field in where else ""
        lines.append(f"{ENV_PREFIX}{field.upper()}{given}: {err['msg']}{fix}")
    return SettingsError("invalid settings:\n  " + "\n  ".join(lines))
