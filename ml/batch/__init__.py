"""Batch scoring of the lake: history scored with any registered version, the way the sidecar scores.

    version = resolve_version(client, settings.model_name, CHAMPION, lake)  # or "7"; a champion as promoted
    model = load_model(settings.mlflow_tracking_uri, contract, settings.model_name, version, lake)
    summary = batch_day(lake, contract, model, date(2026, 11, 21))

writes the day's scores (`layout.batch_predictions_key`: event id, device, event time, score, decision,
version) and its summary as JSON and HTML (`layout.daily_report_key`: events, alert rate, score
distribution and, where outcomes have matured, ROC AUC, PR AUC, precision and recall).
Only hours that passed validation are scored; a day without any is refused.
"""

from ml.batch.run import batch_day
from ml.batch.score import ALERT, NORMAL, BatchError, batch_schema, load_model, resolve_version, score_day
from ml.batch.summary import day_outcomes, summarize

__all__ = ["ALERT", "NORMAL", "BatchError", "batch_day", "batch_schema", "day_outcomes", "load_model",
           "resolve_version", "score_day", "summarize"]
