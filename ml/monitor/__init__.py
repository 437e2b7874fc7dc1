"""Monitoring: drift against the champion's reference, live metrics on mature labels, the retrain decision.

    outcomes = monitor_hours(lake, contract, settings.monitor, [end_of_hour, ...])   # oldest first
    outcomes[-1]["decision"]["kind"]            # none | data | metric | schedule

Every window's decision goes to the lake with its evidence (`layout.decision_key`), the Evidently report
beside it (`layout.drift_report_prefix`), and the figures, report and decision to an MLflow run of
`<model>-monitoring`.
"""

from ml.monitor.champion import ChampionInfo, champion_info, reference_sample
from ml.monitor.live import LiveMetrics, live_metrics, live_window
from ml.monitor.run import monitor_hour, monitor_hours, run_id_for, whole_hour

__all__ = ["ChampionInfo", "LiveMetrics", "champion_info", "live_metrics", "live_window", "monitor_hour",
           "monitor_hours", "reference_sample", "run_id_for", "whole_hour"]
