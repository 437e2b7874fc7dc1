"""What the loop puts into the stack and has the lake take in: spans of the play into Kafka, the
`lake_offload` backfills over them, and the outcomes that arrive after the last hour."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from ml.lake.window import HOUR, Window
from ml.runtime import offload_tuning
from ml.simulate.produce import KafkaSink
from plugins.dag_ids import LAKE_OFFLOAD
from tooling.loop.timeline import LoopError


class Feed:
    """The play's records into Kafka and, through Airflow or the offload library, into the lake."""

    def __init__(self, play, api, lake, contract, settings, timeout_s: float) -> None:
        self.play, self.api, self.lake, self.contract, self.settings = play, api, lake, contract, settings
        self.timeline, self.timeout_s = play.timeline, timeout_s
        self.sink = KafkaSink(settings.kafka_bootstrap, settings.kafka.topics)

    def produce(self, start: datetime, end: datetime, until: datetime) -> None:
        """Telemetry with event times in [start, end) and the outcomes observed before `until` into Kafka."""
        ms = lambda d: int(d.timestamp() * 1000)  # noqa: E731
        for batch in self.play.source.replay(ms(start), ms(end), ms(until)):
            self.sink.send(batch)
        report = self.sink.close()
        if not report.ok:
            raise LoopError(f"producing {start:%Y-%m-%dT%H:%M} .. {end:%H:%M}: {report.failed} failed, "
                            f"{report.undelivered} undelivered ({'; '.join(report.errors[:3])})")

    def offload(self, start: datetime, end: datetime) -> None:
        """A lake_offload backfill over [start, end), waited for; every hour must end valid."""
        self.api.backfill(LAKE_OFFLOAD, start, end - HOUR)
        wanted = {h.isoformat() for h in self.timeline.hours(start, end)}

        def select(runs):
            return [r for r in runs if r.get("data_interval_start") and
                    _iso(r["data_interval_start"]) in wanted and r["run_type"] == "backfill"]

        self.api.wait_runs(LAKE_OFFLOAD, lambda runs: _complete(select(runs), wanted), self.timeout_s,
                           "offload", logical_date_gte=start.isoformat(), logical_date_lte=(end - HOUR).isoformat())

    def offload_hour(self, end: datetime) -> None:
        """The lake_offload run of the hour ending at `end`, triggered as the scheduler would and waited for."""
        run_id = self.api.trigger_interval(LAKE_OFFLOAD, end - HOUR, end)
        self.api.wait_runs(LAKE_OFFLOAD, lambda runs: [r for r in runs if r["dag_run_id"] == run_id],
                           self.timeout_s, f"offload of {end - HOUR:%Y-%m-%d %H}:00", poll_s=0.5,
                           logical_date_gte=(end - HOUR).isoformat(), logical_date_lte=(end - HOUR).isoformat())

    def late_labels(self) -> int:
        """The outcomes observed after the timeline, hour by hour up to the contract's longest delay
        (the telemetry of those hours is not the loop's, so this is the offload library, not the DAG)."""
        from ml.offload import offload_hour, window_consumer

        delay = timedelta(minutes=self.contract.label.max_delay_minutes)
        rows = 0
        consumer = window_consumer({"bootstrap.servers": self.settings.kafka_bootstrap})
        try:
            for hour in self.timeline.hours(self.timeline.end, self.timeline.end + delay):
                rows += offload_hour(consumer, self.lake, self.contract, "outcomes", self.settings.topic_outcomes,
                                     Window.hour(hour), self.settings.offload.lateness, tuning=offload_tuning)["rows"]
        finally:
            consumer.close()
        return rows

    def offload_idle(self) -> None:
        """Until no run of lake_offload for the timeline's hours is queued or running: a backfill that
        replaces runs must not race the scheduler over them (an interrupted loop leaves some behind)."""
        t, deadline = self.timeline, time.monotonic() + self.timeout_s
        span = {"logical_date_gte": t.start.isoformat(), "logical_date_lte": (t.end - HOUR).isoformat()}
        while any(self.api.runs(LAKE_OFFLOAD, state=state, **span) for state in ("queued", "running")):
            if time.monotonic() > deadline:
                raise LoopError("earlier lake_offload runs of these hours are still running; see the Airflow UI")
            time.sleep(3)


def _iso(value: str) -> str:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc).isoformat()


def _complete(chosen: list[dict], wanted: set[str]) -> list[dict]:
    """The latest run of each wanted hour, or nothing until every hour has one."""
    latest = {}
    for run in sorted(chosen, key=lambda r: r.get("run_after") or ""):
        latest[_iso(run["data_interval_start"])] = run
    return list(latest.values()) if set(latest) == wanted else []
