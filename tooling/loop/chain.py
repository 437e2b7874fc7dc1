"""Watching the monitoring chain (monitor_model -> retrain_model -> promote_model) until it has done what
an hour set off: the paced replay waits for it after every hour, and once more at the end.

A retrain that waits for labelled hours of a new regime does not hold the replay up: those hours come
only from later hours of the stream, so in real time it would be waiting while the stream moves on. It
holds the replay up as soon as the lake has what it waits for, until its sensor has seen it.
"""

from __future__ import annotations

import time
from datetime import datetime

from ml import clock
from ml.train import RetrainRequest
from ml.train.retrain import regime_request
from plugins.dag_ids import (MONITOR_MODEL, PLAN_RETRAIN, PROMOTE_MODEL, REGIME_POKE_S, REGISTER_CHALLENGER,
                             RETRAIN_MODEL, WAIT_FOR_DATA)
from tooling.loop.timeline import LoopError

CHAIN = [MONITOR_MODEL, RETRAIN_MODEL, PROMOTE_MODEL]
# how long the regime sensor may keep waiting at the end, once every label is in the lake, before the loop
# stops counting it when its request cannot be read: more than two of its pokes, each of which has seen
# all the data the replay will ever hold
SENSOR_GIVE_UP_S = 2.5 * REGIME_POKE_S
POLL_S = 1.0


class ChainWatch:
    """What the chain still has to do, read from Airflow's REST API and the lake."""

    def __init__(self, api, lake, contract, settings, timeout_s: float) -> None:
        self.api, self.lake, self.contract, self.settings, self.timeout_s = api, lake, contract, settings, timeout_s
        self._requests: dict[str, dict | None] = {}  # run id -> its retrain request (read once)

    # --- after each hour --------------------------------------------------------------------------
    def pending(self, since: datetime, retrain_asked: bool) -> list[str]:
        """What the chain still owes the hour whose processing began at `since` (wall clock): runs in
        progress (a retrain waiting for data the lake does not hold yet excepted), a retrain the monitor
        asked for that has not started, a promotion a registered challenger has not had yet."""
        out = [f"{dag_id} {run_id}" for dag_id, run_id in self.api.active(CHAIN)
               if not (self.sensing(dag_id, run_id) and self.regime_unmet(run_id))]
        if retrain_asked and not self.api.runs(RETRAIN_MODEL, run_after_gte=since.isoformat()):
            out.append(f"the {RETRAIN_MODEL} run the monitor asked for (not started yet)")
        for run in self.api.runs(RETRAIN_MODEL, state="success", end_date_gte=since.isoformat()):
            registered = self.api.task_state(RETRAIN_MODEL, run["dag_run_id"], REGISTER_CHALLENGER) == "success"
            # the challenger's Asset event starts promote_model while the retrain run is still finishing
            if registered and not self.api.runs(PROMOTE_MODEL, run_after_gte=run["start_date"]):
                out.append(f"the {PROMOTE_MODEL} run for the challenger of {run['dag_run_id']} (not started yet)")
        return out

    def wait_idle(self, since: datetime, retrain_asked: bool, keep_alive=lambda: None) -> None:
        """Until `pending` is empty; a failed run of the chain stops the wait with its URL."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            keep_alive()
            failed = self.api.failed_since(CHAIN, since)
            if failed:
                raise LoopError(f"a run failed: {failed[0]}")
            left = self.pending(since, retrain_asked)
            if not left:
                return
            if time.monotonic() > deadline:
                raise LoopError(f"still running after {self.timeout_s:.0f} s: {', '.join(left)}")
            time.sleep(POLL_S)

    # --- at the end -----------------------------------------------------------------------------
    def settle(self, keep_alive=lambda: None) -> list[str]:
        """Until the chain is idle but for retrains waiting for a new regime's hours that the replay does
        not hold (their run ids are returned). When a waiting run's request cannot be read, it counts
        once the sensor has waited `SENSOR_GIVE_UP_S` with every label in the lake."""
        deadline = time.monotonic() + self.timeout_s
        waiting_since: dict[str, float] = {}
        while True:
            keep_alive()
            now, busy, waiting = time.monotonic(), [], []
            for dag_id, run_id in self.api.active(CHAIN):
                if not self.sensing(dag_id, run_id):
                    waiting_since.pop(run_id, None)
                    busy.append(f"{dag_id} {run_id}")
                elif self.regime_unmet(run_id) or now - waiting_since.setdefault(run_id, now) >= SENSOR_GIVE_UP_S:
                    waiting.append(run_id)
                else:
                    busy.append(f"{dag_id} {run_id}")
            if not busy:
                for run_id in waiting:
                    print(f"[loop] {RETRAIN_MODEL} {run_id} waits for labelled hours of a new regime that the replay "
                          f"does not hold: {self.api.run_url(RETRAIN_MODEL, run_id)}", flush=True)
                return waiting
            if time.monotonic() > deadline:
                raise LoopError(f"still running after {self.timeout_s:.0f} s: {', '.join(busy)}")
            time.sleep(3)

    # --- one run ----------------------------------------------------------------------------------
    def sensing(self, dag_id: str, run_id: str) -> bool:
        """A retrain run whose regime sensor is between pokes, waiting for labelled hours."""
        return dag_id == RETRAIN_MODEL and self.api.task_state(dag_id, run_id, WAIT_FOR_DATA) == "up_for_reschedule"

    def regime_unmet(self, run_id: str) -> bool:
        """The sensor's own check on the lake as it is now, at the loop's clock: True when the run waits for
        hours the lake does not hold yet. False when its request is unknown (the caller then decides)."""
        if run_id not in self._requests:
            found = self.api.xcom(RETRAIN_MODEL, run_id, PLAN_RETRAIN)
            self._requests[run_id] = found if isinstance(found, dict) else None
        request = self._requests[run_id]
        if request is None:
            return False
        ready, status = regime_request(self.lake, self.contract, RetrainRequest.from_dict(request),
                                       self.settings.retrain_regime_hours, clock.now(self.lake))
        if ready is None:
            print(f"[loop] {RETRAIN_MODEL} {run_id}: {status}", flush=True)
        return ready is None
