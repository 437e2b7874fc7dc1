"""Data drift: a window of telemetry against the champion's reference.

    summary = window_summary(lake, contract, manifests)            # the hours' summaries, merged
    result = sketch_drift(contract, reference_summary, summary, settings.drift, importances)   # the decision
    _, snapshot = detect_drift(contract, reference, sample, settings.drift, importances)        # the report
    snapshot.save_html(path)
    write_drift_report(lake, result, path, run_id)

Evidently is imported only where a report or a sampled measure is made (it takes seconds to import),
so the offload can summarize its hours without it.
"""

from importlib import import_module

_WHERE = {"DriftResult": "detect", "FeatureDrift": "detect", "detect_drift": "detect", "measure_drift": "detect",
          "sample": "detect", "write_drift_report": "report", "Summary": "summary", "sketch_drift": "sketch",
          "sketch_supported": "sketch", "window_summary": "hours", "hour_summary": "hours",
          "window_sample": "hours", "calibrated_thresholds": "calibrate"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'ml.drift' has no attribute {name!r}")
    return getattr(import_module(f"ml.drift.{_WHERE[name]}"), name)
