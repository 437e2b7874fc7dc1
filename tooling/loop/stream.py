"""What the loop streams: the simulator (a profile) or a recorded file (`--replay`), placed in event time.

Either way the loop gets a `Play`: a source it asks span by span (`replay(start_ms, end_ms, until_ms)`:
the telemetry of [start, end) and the outcomes observed before `until` not sent yet), the timeline of
hours it plays, and the known change, if any (the simulator's drift onset, or the hour a user marks with
`--change-at`). A file's hours are moved by whole days (keeping its hours of the day) to end within the
broker's retention, on hours no earlier `lake_offload` run covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ml.contract import Contract
from ml.lake.window import HOUR
from ml.replay import FileSource, ReplayError, ReplayOptions
from ml.simulate import ConceptDrift, CovariateDrift, SimConfig, Simulator
from tooling.loop.timeline import RETENTION, LoopError, Profile, Timeline

DAY = timedelta(days=1)


@dataclass
class Play:
    name: str  # for the header and the summary: "simulator, profile short" or the file's name
    source: object
    timeline: Timeline
    change_at: datetime | None
    change: str  # what changed there, in the summary's words
    shift: timedelta = timedelta(0)  # how far a file's own times were moved


def simulator_play(contract: Contract, profile: Profile, now: datetime, used: set[datetime]) -> Play:
    """The simulator: `profile.history_hours` of normal telemetry, then a covariate shift and a concept
    drift switched on together."""
    timeline = Timeline.free_block(profile, now, used)
    onset_ms = int(timeline.onset.timestamp() * 1000)
    scenarios = (CovariateDrift(start_ms=onset_ms), ConceptDrift(start_ms=onset_ms))
    sim = Simulator(contract, SimConfig(devices=profile.devices, rate=profile.rate, seed=profile.seed,
                                        scenarios=scenarios))
    return Play(f"simulator, profile {profile.name}", sim, timeline, timeline.onset, "covariate + concept drift")


def file_play(path: str, contract: Contract, options: ReplayOptions, history_hours: int,
              change_at: datetime | None, now: datetime, used: set[datetime]) -> Play:
    """A recorded file under `contract`; its first `history_hours` hours are the first champion's history."""
    try:
        source = FileSource(path, contract, options)
        first, last = source.span()
    except ReplayError as exc:
        raise LoopError(f"--replay {path}: {exc}") from None
    start = first.replace(minute=0, second=0, microsecond=0)
    end = last.replace(minute=0, second=0, microsecond=0) + HOUR
    hours = int((end - start) / HOUR)
    longest = int(RETENTION / HOUR) - 24
    if hours > longest:
        raise LoopError(f"--replay {path}: the slice spans {hours} hours ({start:%Y-%m-%d %H:%M} .. "
                        f"{end:%Y-%m-%d %H:%M}Z); the loop's topics keep {RETENTION.days} days, so replay at most "
                        f"{longest} hours: bound it with --from/--to (or more --rows-per-hour)")
    if history_hours >= hours:
        raise LoopError(f"--history-hours {history_hours}: the slice spans only {hours} hours; leave hours to play "
                        f"after the history (at most {hours - 1})")
    shift = _placement(start, end, now, used)
    source.move(shift)
    timeline = Timeline(start + shift, start + shift + history_hours * HOUR, end + shift)
    if change_at is not None and not start <= change_at < end:
        raise LoopError(f"--change-at {change_at.isoformat()}: outside the slice ({start:%Y-%m-%d %H:%M} .. "
                        f"{end:%Y-%m-%d %H:%M}Z, in the file's own times)")
    return Play(source.path.name, source, timeline, None if change_at is None else change_at + shift,
                "marked change", shift)


def _placement(start: datetime, end: datetime, now: datetime, used: set[datetime]) -> timedelta:
    """The whole days that move [start, end) to the latest hours ending at least an hour before `now`
    that no earlier lake_offload run covered, within the broker's retention."""
    latest = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) - HOUR
    oldest = now - RETENTION + timedelta(hours=1)
    shift = ((latest - end) // DAY) * DAY
    while start + shift >= oldest:
        hours = {start + shift + i * HOUR for i in range(int((end - start) / HOUR))}
        if not hours & used:
            return shift
        shift -= DAY
    raise LoopError("no run of hours within Kafka's retention is free of earlier lake_offload runs for this "
                    "slice; stop the stack and remove .local (`make down && rm -rf .local`)")
