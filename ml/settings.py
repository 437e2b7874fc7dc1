"""Process settings: endpoints, lake, model name, contract and policies.

One `Settings` object is read from the environment (and an optional `.env` file) once, at an entry
point, and passed down. A wrong value fails at start with the variable's name and what would fix it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cached_property
from urllib.parse import urlparse

from pydantic import Field, ValidationError, field_validator
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
    kafka_conn_id: str = Field("kafka_default", description="the Airflow connection with the Kafka client config")
    offload_lateness_minutes: float = Field(
        10.0, ge=0, le=24 * 60, description="minutes (0-1440) a record may arrive out of order and still count for its hour")
    offload_start: datetime = Field(
        datetime(2026, 11, 1, tzinfo=timezone.utc), description="an ISO time: the first hour lake_offload schedules")
    offload_catchup: bool = Field(False, description="true or false: schedule every hour since offload_start")

    topic_telemetry: str = "telemetry"
    topic_outcomes: str = "outcomes"
    topic_predictions: str = "predictions"
    topic_alerts: str = "alerts"
    topic_dlq: str = "telemetry.dlq"
    topic_control: str = "control"

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

    @field_validator("offload_start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    @property
    def offload_lateness(self) -> timedelta:
        return timedelta(minutes=self.offload_lateness_minutes)

    @cached_property
    def topics(self) -> dict[str, str]:
        """Logical topic name -> Kafka topic name."""
        return {
            "telemetry": self.topic_telemetry,
            "outcomes": self.topic_outcomes,
            "predictions": self.topic_predictions,
            "alerts": self.topic_alerts,
            "dlq": self.topic_dlq,
            "control": self.topic_control,
        }


def load_settings(**overrides) -> Settings:
    """Read the settings once; on a bad value raise SettingsError naming the variable and the fix."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            hint = Settings.model_fields[field].description if field in Settings.model_fields else None
            fix = f" (fix: set it to {hint})" if hint else ""
            lines.append(f"{ENV_PREFIX}{field.upper()}: {err['msg']}{fix}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
