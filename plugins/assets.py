"""The Assets that connect the DAGs, defined once: producers and consumers import them from here."""

from airflow.sdk import Asset

VALIDATED_TELEMETRY = Asset(name="validated_telemetry", uri="continuum://lake/raw/telemetry", group="continuum")
RETRAIN_REQUEST = Asset(name="retrain_request", uri="continuum://decisions/retrain", group="continuum")
CHALLENGER = Asset(name="challenger", uri="continuum://registry/challenger", group="continuum")
