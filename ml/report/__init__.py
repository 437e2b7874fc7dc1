"""The loop report: one self-contained HTML page in the lake showing what the continuous-training loop
did over time (live AUC, label coverage, drift, decisions, the version serving, retrains, promotions,
rollbacks), the latest drift report and the registry audit trail.

    result = build_loop_report(lake, "machine-failure", links={"airflow": ..., "mlflow": ...})
    result["url"]   # where the page is; result["figures"]: the charts that had data to draw
"""

from ml.report.inputs import LoopInputs, read_loop
from ml.report.loop import build_loop_report, render_loop

__all__ = ["LoopInputs", "build_loop_report", "read_loop", "render_loop"]
