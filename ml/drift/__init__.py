"""Data drift: a window of telemetry against the champion's reference sample, with Evidently.

    result, snapshot = detect_drift(contract, reference, window, settings.drift, importances)
    snapshot.save_html(path)
    write_drift_report(lake, result, path, run_id)
"""

from ml.drift.detect import DriftResult, FeatureDrift, detect_drift, measure_drift, sample
from ml.drift.report import write_drift_report

__all__ = ["DriftResult", "FeatureDrift", "detect_drift", "measure_drift", "sample", "write_drift_report"]
