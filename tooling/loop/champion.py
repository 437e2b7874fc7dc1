"""The registry's side of the loop: the first champion trained and promoted through the DAGs, waiting
for the champion alias to move, and reading the champion the chain left in place."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from mlflow import MlflowClient

from ml.lake.layout import decisions_prefix
from ml.registry import CHALLENGER, by_alias, champion, version_url
from ml.registry.approval import APPROVAL, GATE_TAG_PREFIX, REJECTED
from plugins.dag_ids import RETRAIN_MODEL
from tooling.loop.chain import CHAIN
from tooling.loop.timeline import LoopError, Profile


class Champions:
    """The registered model `settings.model_name`'s champion, as the loop's DAG runs move it."""

    def __init__(self, api, lake, settings, profile: Profile, keep_alive=lambda: None) -> None:
        self.api, self.lake, self.settings, self.profile, self.keep_alive = api, lake, settings, profile, keep_alive
        self.client = MlflowClient(settings.mlflow_tracking_uri)

    def first_champion(self) -> str:
        """A retrain over exactly the history, triggered by hand; promote_model follows on the challenger
        Asset. Returns the version that became champion."""
        since = datetime.now(timezone.utc)
        days = self.profile.history_hours / 24  # the window ends at the clock's hour: exactly the history
        run_id = self.api.trigger(RETRAIN_MODEL, {"reason": "first model", "window_days": round(days, 4),
                                                    "search_seconds": self.profile.search_seconds})
        self.api.wait_runs(RETRAIN_MODEL, lambda runs: [r for r in runs if r["dag_run_id"] == run_id],
                           self.profile.timeout_s, "first training")
        return self.wait_champion(None, since)

    def wait_champion(self, old: str | None, since: datetime) -> str:
        """Until the champion alias points at a version other than `old`; a failed run of the chain or
        a refused challenger stops the wait with its evidence."""
        deadline = time.monotonic() + self.profile.timeout_s
        name = self.settings.model_name
        while True:
            self.keep_alive()
            current = champion(self.client, name)
            if current is not None and current.version != old:
                return current.version
            failed = self.api.failed_since(CHAIN, since)
            if failed:
                raise LoopError(f"a run failed: {failed[0]}")
            challenger = by_alias(self.client, name, CHALLENGER)
            if challenger is not None and challenger.tags.get(APPROVAL) == REJECTED:
                gates = "; ".join(f"{k}={v}" for k, v in challenger.tags.items() if k.startswith(GATE_TAG_PREFIX))
                raise LoopError(f"{name} v{challenger.version} was refused ({gates}); see "
                                f"{version_url(self.settings.mlflow_tracking_uri, name, challenger.version)}")
            if time.monotonic() > deadline:
                decisions = sorted(self.lake.list(decisions_prefix()))[-3:]
                raise LoopError(f"no new champion within {self.profile.timeout_s:.0f} s (champion "
                                f"{current.version if current else 'none'}; latest decisions {decisions})")
            time.sleep(5)

    def current(self) -> str:
        """The registry's champion (once the chain is idle: after any promotion it ran)."""
        found = champion(self.client, self.settings.model_name)
        if found is None:
            raise LoopError(f"{self.settings.model_name} has no champion; see the promote_model runs")
        return found.version
