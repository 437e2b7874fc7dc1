"""Which version was champion at a given time, from the audit trail, and the predictions that break it.

Every champion move is one audit record (`ml.audit`) whose `at` is when it took effect: the wall clock,
or the event time a paced replay stood at (`ml.clock`). So "the champion at time t" is the `to` of the
latest move at or before t, and a served prediction is *stale* when the version that scored it is not
the champion at its event's time: an event scored by a model that, in real time, had not yet been
promoted or had already been replaced. A replay that keeps real time's order has none.

A champion is *on probation* (`probation`) for the bake window after the promotion that made it
champion: the monitor then compares it with the champion it replaced, on the same events.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd


@dataclass(frozen=True)
class ChampionTimeline:
    """The champion moves of one model, in the order they took effect."""

    model: str
    moves: tuple[tuple[datetime, str], ...]  # (took effect at, version)

    @classmethod
    def from_records(cls, records: list[dict], model: str) -> "ChampionTimeline":
        moves = sorted((datetime.fromisoformat(r["at"]), str(r["to"])) for r in records
                       if r.get("model") == model and r.get("alias", "champion") == "champion" and r.get("to"))
        return cls(model, tuple(moves))

    def move_at(self, when: datetime, records: list[dict]) -> dict | None:
        """The audit record of the move that made the champion at `when` champion (None before the first)."""
        version = self.at(when)
        moves = [r for r in records if r.get("model") == self.model and r.get("alias", "champion") == "champion"
                 and str(r.get("to")) == version and datetime.fromisoformat(r["at"]) <= when]
        return max(moves, key=lambda r: datetime.fromisoformat(r["at"])) if moves else None

    def at(self, when: datetime) -> str | None:
        """The champion at `when` (None before the first move)."""
        i = bisect_right([t for t, _ in self.moves], when)
        return self.moves[i - 1][1] if i else None

    def versions_at(self, times: pd.Series) -> pd.Series:
        """`at` for every time of a series (UTC timestamps), as strings (None before the first move)."""
        if not self.moves:
            return pd.Series([None] * len(times), index=times.index, dtype=object)
        starts = pd.to_datetime(pd.Series([t for t, _ in self.moves]), utc=True)
        versions = [None, *(v for _, v in self.moves)]
        index = starts.searchsorted(pd.to_datetime(times, utc=True), side="right")
        return pd.Series([versions[i] for i in index], index=times.index, dtype=object)


def stale_predictions(scored: pd.DataFrame, timeline: ChampionTimeline, event_time: str) -> pd.DataFrame:
    """The served predictions whose `model_version` is not the champion at their `event_time`, with a
    `champion_at_event_time` column; `scored` holds one row per served prediction."""
    expected = timeline.versions_at(scored[event_time])
    stale = scored["model_version"].astype(str) != expected.astype(str)
    return scored.loc[stale].assign(champion_at_event_time=expected[stale])


@dataclass(frozen=True)
class Probation:
    """A champion on probation: since when, until when, and the champion it replaced (what it is compared with)."""

    version: str
    previous: str
    since: datetime
    until: datetime

    def to_dict(self) -> dict:
        return {"version": self.version, "previous": self.previous, "since": self.since.isoformat(),
                "until": self.until.isoformat()}


def probation(move: dict | None, when: datetime, hours: float) -> Probation | None:
    """The probation of the champion a move (an audit record, or the record a version carries) made, if it
    is still on it at `when`: only a promotion that replaced a champion is baked (a rollback returns to a
    known model; the first champion has nothing to be compared with), for `hours` from the move."""
    if not move or hours <= 0 or move.get("type", "promotion") != "promotion" or move.get("from") in (None, ""):
        return None
    since = datetime.fromisoformat(move["at"])
    until = since + timedelta(hours=hours)
    if not since <= when < until:
        return None
    return Probation(str(move["to"]), str(move["from"]), since, until)
