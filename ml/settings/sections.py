"""Typed sections of the settings: what one part of the system reads, as a small frozen dataclass.

Each section field views one `Settings` field, so one environment variable (`CONTINUUM_<FIELD>`), with
that field's default and constraints: `settings.drift` is built once from the validated settings, and
`DriftSettings(share_threshold=0.4)` built in code (a backtest running policies side by side, a test)
is checked the same way, a wrong value naming the variable, the section field and the fix. A function
takes the section it reads, not the whole settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from pydantic import SecretStr, ValidationError

from ml.settings.env import ENV_PREFIX, Settings, settings_error


def setting(name: str):
    """A section field viewing the setting `name` (variable CONTINUUM_<NAME>), with its default."""
    return field(default=Settings.model_fields[name].default, metadata={"setting": name})


def section(cls):
    """A section field holding a whole section (in a bundle), its defaults unless given."""
    return field(default_factory=cls, metadata={"section": cls})


class Section:
    """The base of every section: built from the settings, checked like them when built in code."""

    @classmethod
    def from_settings(cls, settings: Settings):
        """This section of validated settings."""
        return cls(**{f.name: (f.metadata["section"].from_settings(settings) if "section" in f.metadata
                               else getattr(settings, f.metadata["setting"])) for f in fields(cls)})

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of section field `name`, for messages: CONTINUUM_DRIFT_WINDOWS_K."""
        return ENV_PREFIX + next(f for f in fields(cls) if f.name == name).metadata["setting"].upper()

    def __post_init__(self) -> None:
        """Check each value as the setting it views (constraints and validators, not the environment)."""
        viewed = {f.metadata["setting"]: f.name for f in fields(self) if "setting" in f.metadata}
        checked, errors = Settings.model_construct(), []
        for key, name in viewed.items():
            try:
                Settings.__pydantic_validator__.validate_assignment(checked, key, getattr(self, name))
            except ValidationError as exc:
                errors += exc.errors()
        if errors:
            raise settings_error(errors, {key: f"{type(self).__name__}.{name}" for key, name in viewed.items()})
        for key, name in viewed.items():
            object.__setattr__(self, name, getattr(checked, key))


@dataclass(frozen=True)
class KafkaSettings(Section):
    """The broker, the Airflow connection to it and the topic names."""

    bootstrap: str = setting("kafka_bootstrap")
    conn_id: str = setting("kafka_conn_id")
    topic_telemetry: str = setting("topic_telemetry")
    topic_outcomes: str = setting("topic_outcomes")
    topic_predictions: str = setting("topic_predictions")
    topic_alerts: str = setting("topic_alerts")
    topic_dlq: str = setting("topic_dlq")
    topic_control: str = setting("topic_control")
    topic_predictions_shadow: str = setting("topic_predictions_shadow")

    @property
    def topics(self) -> dict[str, str]:
        """Logical topic name -> Kafka topic name."""
        return {name.removeprefix("topic_"): getattr(self, name)
                for name in (f.name for f in fields(self)) if name.startswith("topic_")}


@dataclass(frozen=True)
class LakeSettings(Section):
    """Where the lake is: a local folder or s3://bucket/prefix, and the S3 endpoint."""

    uri: str = setting("lake_uri")
    s3_endpoint_url: str | None = setting("s3_endpoint_url")


@dataclass(frozen=True)
class RegistrySettings(Section):
    """The MLflow server and the registered model's name."""

    tracking_uri: str = setting("mlflow_tracking_uri")
    model_name: str = setting("model_name")


@dataclass(frozen=True)
class OffloadSettings(Section):
    """lake_offload: its schedule (whose start is every event-driven DAG's start too), lateness, skew,
    silence and the suites it validates with."""

    start: datetime = setting("offload_start")
    catchup: bool = setting("offload_catchup")
    lateness_minutes: float = setting("offload_lateness_minutes")
    max_event_skew_minutes: float = setting("max_event_skew_minutes")
    silence_hours: int = setting("silence_hours")
    expectations_dir: str | None = setting("expectations_dir")

    @property
    def lateness(self) -> timedelta:
        return timedelta(minutes=self.lateness_minutes)

    @property
    def max_event_skew(self) -> timedelta:
        return timedelta(minutes=self.max_event_skew_minutes)


@dataclass(frozen=True)
class DriftSettings(Section):
    """How a window's drift is measured and when drifted windows ask for a retrain."""

    num_method: str = setting("drift_num_method")
    cat_method: str = setting("drift_cat_method")
    num_threshold: float = setting("drift_num_threshold")
    cat_threshold: float = setting("drift_cat_threshold")
    sample_rows: int = setting("drift_sample_rows")
    share_threshold: float = setting("drift_share_threshold")
    windows_k: int = setting("drift_windows_k")
    window_hours: int = setting("drift_window_hours")
    match_hour_of_day: bool = setting("drift_match_hour_of_day")
    calibrate: bool = setting("drift_calibrate")
    false_alarm_rate: float = setting("drift_false_alarm_rate")


@dataclass(frozen=True)
class LiveSettings(Section):
    """The live metrics: their window, the labels they need, and when they ask for a retrain; and the
    figures estimated before labels arrive: when they are unreliable, and when they ask for one early."""

    auc_floor: float = setting("live_auc_floor")
    auc_drop_margin: float = setting("live_auc_drop_margin")
    min_mature_labels: int = setting("min_mature_labels")
    window_hours: int = setting("live_window_hours")
    min_label_coverage: float = setting("live_min_label_coverage")
    estimate_tolerance: float = setting("estimate_tolerance")
    estimate_auc_floor: float = setting("estimate_auc_floor")


@dataclass(frozen=True)
class RetrainSettings(Section):
    """When a retrain may be asked for (age, cooldown, budget), what it learns from (window, regime),
    how it searches and splits, the threshold its model is tagged with (CONTINUUM_SERVING_THRESHOLD), and
    past how many rows it streams the window and where a Dask cluster fits it."""

    cron: str = setting("retrain_cron")
    window_days: float = setting("retrain_window_days")
    max_model_age_hours: float = setting("max_model_age_hours")
    cooldown_hours: float = setting("retrain_cooldown_hours")
    daily_budget: int = setting("retrain_daily_budget")
    regime_hours: int = setting("retrain_regime_hours")
    regime_timeout_hours: float = setting("retrain_regime_timeout_hours")
    holdout_fraction: float = setting("retrain_holdout_fraction")
    validation_fraction: float = setting("retrain_validation_fraction")
    min_rows: int = setting("retrain_min_rows")
    min_per_class: int = setting("retrain_min_per_class")
    search_seconds: float = setting("retrain_search_seconds")
    search_rows: int = setting("retrain_search_rows")
    max_rounds: int = setting("retrain_max_rounds")
    threshold: float = setting("serving_threshold")
    stream_rows: int = setting("retrain_stream_rows")
    extmem_rows: int = setting("retrain_extmem_rows")
    dask_scheduler: str = setting("dask_scheduler")


@dataclass(frozen=True)
class GateSettings(Section):
    """The promotion gates and the approval that follows them."""

    metric: str = setting("promotion_metric")
    margin: float = setting("promotion_margin")
    floor: float = setting("promotion_floor")
    max_latency_ms: float = setting("promotion_max_latency_ms")
    max_model_bytes: int = setting("promotion_max_model_bytes")
    approval_policy: str = setting("approval_policy")
    approval_timeout_minutes: float = setting("approval_timeout_minutes")
    approval_ttl_hours: float = setting("approval_ttl_hours")
    approvers: str = setting("approvers")

    @property
    def approver_names(self) -> list[str]:
        """The Airflow users who may answer an approval, from the comma-separated `approvers`."""
        return [name.strip() for name in self.approvers.split(",") if name.strip()]


@dataclass(frozen=True)
class ServingSettings(Section):
    """The sidecar: its HTTP port, consumer group and session timeout, micro-batches, champion checks, shadow
    and limits."""

    host: str = setting("serving_host")
    port: int = setting("serving_port")
    group: str = setting("serving_group")
    session_timeout_ms: int = setting("serving_session_timeout_ms")
    batch_max: int = setting("serving_batch_max")
    batch_wait_ms: float = setting("serving_batch_wait_ms")
    poll_s: float = setting("serving_poll_s")
    shadow: bool = setting("serving_shadow")
    dlq_max_bytes: int = setting("serving_dlq_max_bytes")
    max_body_bytes: int = setting("serving_max_body_bytes")
    token: SecretStr = setting("serving_token")
    max_events: int = setting("serving_max_events")
    bake_hours: float = setting("bake_hours")
    max_concurrent: int = setting("serving_max_concurrent")
    request_timeout_s: float = setting("serving_request_timeout_s")


@dataclass(frozen=True)
class AlertSettings(Section):
    """The on-call channels (Airflow connections, e-mail, the alerts topic, a log file) and the cooldown."""

    webhook_conn_id: str = setting("alert_webhook_conn_id")
    smtp_conn_id: str = setting("alert_smtp_conn_id")
    email_to: str = setting("alert_email_to")
    email_from: str | None = setting("alert_email_from")
    cooldown_minutes: float = setting("alert_cooldown_minutes")
    state_path: str = setting("alert_state_path")
    log_path: str | None = setting("alert_log_path")
    to_topic: bool = setting("alert_to_topic")
    kafka_conn_id: str = setting("kafka_conn_id")
    topic: str = setting("topic_alerts")

    @property
    def cooldown(self) -> timedelta:
        return timedelta(minutes=self.cooldown_minutes)

    @property
    def recipients(self) -> list[str]:
        return [address.strip() for address in self.email_to.split(",") if address.strip()]


@dataclass(frozen=True)
class BatchSettings(Section):
    """batch_score: its schedule, how long after a day it waits, and the model it scores with."""

    start: datetime = setting("batch_start")
    catchup: bool = setting("batch_catchup")
    delay_minutes: float = setting("batch_delay_minutes")
    model: str = setting("batch_model")


@dataclass(frozen=True)
class BakeSettings(Section):
    """The bake window after a promotion: how long the new champion is on probation, and how much worse
    than the previous champion, with what confidence, it must be on the same events to be rolled back."""

    hours: float = setting("bake_hours")
    auc_margin: float = setting("bake_auc_margin")
    confidence: float = setting("bake_confidence")
    min_labels: int = setting("bake_min_labels")


@dataclass(frozen=True)
class MonitorSettings(Section):
    """What one monitor_model run reads: the registry, drift, live metrics, the retrain policy, the bake
    window, and the most windows it evaluates."""

    registry: RegistrySettings = section(RegistrySettings)
    drift: DriftSettings = section(DriftSettings)
    live: LiveSettings = section(LiveSettings)
    retrain: RetrainSettings = section(RetrainSettings)
    bake: BakeSettings = section(BakeSettings)
    max_hours: int = setting("monitor_max_hours")
