"""The serving sidecar: scores the live telemetry stream with the champion and hot-swaps on promotion.

    continuum-serve                 # or: python -m ml.serving

Consumes `telemetry` in a consumer group (replicas share the partitions), scores micro-batches with the
champion's native XGBoost booster and the contract's features, produces `predictions`, `alerts` and
dead letters, commits only what the broker acknowledged, and serves /healthz, /metrics and
POST /predict from a process of its own (`port.py`). See `sidecar.py` for the assembly and `routing.py`
for the A/B traffic message.
"""
