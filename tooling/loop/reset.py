"""`continuum-loop reset`: a clean local stack for the loop (destructive, the embedded stack only)."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic
from mlflow import MlflowClient

from ml.lake import Lake
from ml.lake.layout import roots
from ml.registry.versions import registered
from ml.settings.login import stack_account
from tooling.loop.timeline import LoopError

LOOP_TOPICS = ("telemetry", "outcomes", "predictions", "alerts", "dlq", "control", "predictions_shadow")


def wipe_local_stack(settings) -> None:
    """Destructive: give the loop a clean stack by deleting every record of the topics, the whole lake,
    the registered model, the sidecar group's consumer offsets and the alert state. Only for the
    embedded local stack, only through `continuum-loop reset`."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    existing = admin.list_topics(timeout=10).topics
    names = [settings.kafka.topics[k] for k in LOOP_TOPICS]
    doomed = [n for n in names if n in existing]
    partitions = {n: len(existing[n].partitions) for n in doomed}
    for future in admin.delete_topics(doomed, operation_timeout=30).values():
        future.result()
    try:
        admin.delete_consumer_groups([settings.serving_group])[settings.serving_group].result()
    except Exception:  # the group does not exist yet
        pass
    deadline = time.monotonic() + 60
    while True:
        futures = admin.create_topics([NewTopic(n, partitions.get(n, 1), 1) for n in names], operation_timeout=30)
        pending = []
        for name, future in futures.items():
            try:
                future.result()
            except Exception as exc:  # deletion still in progress
                if "already exists" not in str(exc) and "marked for deletion" not in str(exc).lower():
                    raise
                if "marked for deletion" in str(exc).lower():
                    pending.append(name)
        if not pending:
            break
        if time.monotonic() > deadline:
            raise LoopError(f"topics {pending} are still being deleted")
        time.sleep(1)
    lake = Lake.from_settings(settings.lake)
    for prefix in roots():
        lake.delete_prefix(prefix)
    client = MlflowClient(settings.mlflow_tracking_uri)
    # as the stack's admin: the pipeline account may delete only a model it created itself, and a
    # registry that predates the accounts holds one nobody's login created
    with stack_account("admin"):
        if registered(client, settings.model_name):  # a refused delete is raised, never taken for done
            client.delete_registered_model(settings.model_name)
    state = Path(settings.alert_state_path)
    if state.exists():
        state.unlink()
