"""What can go wrong in the stream, as data: drift, faults and bad records, each switched on at a time.

Scenarios combine freely; each is active for event times in [start, end). On the command line:

    --scenario covariate@2026-11-20T12:00Z            from that time on
    --scenario concept@+2h..+5h:share=0.5              relative to the run's start, for three hours
    --scenario bad_records:rate=0.01,kinds=malformed+oversized

The generators read these dataclasses; nothing here touches data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import ClassVar

import numpy as np

BAD_KINDS = ("malformed", "missing", "wrong_type", "out_of_range", "oversized")
_SPEC = re.compile(r"^(?P<name>[a-z_]+)(?:@(?P<when>.+?))?(?::(?P<params>[a-z_]+=.*))?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class ScenarioError(ValueError):
    """A scenario spec or time is wrong; the message says which and what is allowed."""


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """Base: active for event times in [start_ms, end_ms); None means unbounded on that side."""

    name: ClassVar[str] = ""
    start_ms: int | None = None
    end_ms: int | None = None

    def __post_init__(self) -> None:
        if self.start_ms is not None and self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ScenarioError(f"scenario {self.name}: end must be after start")

    def active(self, ts_ms: np.ndarray) -> np.ndarray:
        """Boolean mask of the events this scenario applies to."""
        mask = np.ones(len(ts_ms), dtype=bool)
        if self.start_ms is not None:
            mask &= ts_ms >= self.start_ms
        if self.end_ms is not None:
            mask &= ts_ms < self.end_ms
        return mask

    def _check_share(self, value: float, label: str) -> None:
        if not 0.0 <= value <= 1.0:
            raise ScenarioError(f"scenario {self.name}: {label} must be within [0, 1] (got {value})")


@dataclass(frozen=True, kw_only=True)
class NoScenario(Scenario):
    """The normal stream (`none`)."""

    name: ClassVar[str] = "none"


@dataclass(frozen=True, kw_only=True)
class CovariateDrift(Scenario):
    """Inputs move, the physics stays: a share of machines moves to a hotter site, speeds shift."""

    name: ClassVar[str] = "covariate"
    site: str = "plant-e"
    share: float = 0.3
    heat_k: float = 6.0
    speed_rpm: float = -150.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_share(self.share, "share")


@dataclass(frozen=True, kw_only=True)
class ConceptDrift(Scenario):
    """Same inputs, new relationship: a firmware roll-out makes heat dissipation and overstrain fail sooner."""

    name: ClassVar[str] = "concept"
    share: float = 1.0
    firmware: str = "2.0.0"
    hdf_k: float = 9.5
    osf_factor: float = 0.85

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_share(self.share, "share")


@dataclass(frozen=True, kw_only=True)
class SensorFault(Scenario):
    """One machine's sensors freeze at a value (`stuck`) or send nulls (`null`); its truth is unchanged."""

    name: ClassVar[str] = "sensor_fault"
    device: str = ""  # empty: the first machine of the fleet
    mode: str = "stuck"
    fields: tuple[str, ...] = ()  # empty: every numeric feature

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in ("stuck", "null"):
            raise ScenarioError(f"scenario sensor_fault: mode must be stuck or null (got {self.mode!r})")


@dataclass(frozen=True, kw_only=True)
class BadRecords(Scenario):
    """Extra broken messages on the telemetry topic, `rate` of them per good event, of the given kinds."""

    name: ClassVar[str] = "bad_records"
    rate: float = 0.01
    kinds: tuple[str, ...] = BAD_KINDS

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_share(self.rate, "rate")
        unknown = [k for k in self.kinds if k not in BAD_KINDS]
        if unknown or not self.kinds:
            raise ScenarioError(f"scenario bad_records: unknown kinds {unknown}; known: {'+'.join(BAD_KINDS)}")


KNOWN: dict[str, type[Scenario]] = {
    cls.name: cls for cls in (NoScenario, CovariateDrift, ConceptDrift, SensorFault, BadRecords)
}


def parse_scenarios(specs: list[str], origin_ms: int) -> tuple[Scenario, ...]:
    """Parse repeated --scenario values; `none` adds nothing. Relative times count from origin_ms."""
    parsed = (parse_scenario(spec, origin_ms) for spec in specs)
    return tuple(s for s in parsed if not isinstance(s, NoScenario))


def parse_scenario(spec: str, origin_ms: int) -> Scenario:
    """Parse `name[@start[..end]][:key=value,...]` into a Scenario."""
    match = _SPEC.match(spec.strip())
    known = ", ".join(KNOWN)
    if not match:
        raise ScenarioError(f"--scenario {spec!r}: expected name[@start[..end]][:key=value,...], name one of {known}")
    name = match["name"]
    if name not in KNOWN:
        raise ScenarioError(f"--scenario {spec!r}: unknown scenario {name!r}; known: {known}")
    cls, kwargs = KNOWN[name], {}
    if match["when"]:
        start, _, end = match["when"].partition("..")
        kwargs["start_ms"] = parse_time(start, origin_ms, flag=f"--scenario {name}@") if start else None
        kwargs["end_ms"] = parse_time(end, origin_ms, flag=f"--scenario {name}@..") if end else None
    types = {f.name: f.type for f in fields(cls) if f.name not in ("start_ms", "end_ms")}
    for item in (match["params"] or "").split(","):
        if not item:
            continue
        key, _, value = item.partition("=")
        if key not in types:
            allowed = ", ".join(types) or "none"
            raise ScenarioError(f"--scenario {spec!r}: unknown parameter {key!r} for {name} (known: {allowed})")
        kwargs[key] = _convert(value, types[key], f"--scenario {spec!r}: {key}")
    try:
        return cls(**kwargs)
    except ScenarioError as exc:
        raise ScenarioError(f"--scenario {spec!r}: {exc}") from None


def _convert(value: str, typ: str, where: str):
    if "tuple" in typ:
        return tuple(v for v in value.split("+") if v)
    if typ == "float":
        try:
            return float(value)
        except ValueError:
            raise ScenarioError(f"{where} must be a number (got {value!r})") from None
    return value


def parse_duration(text: str) -> int:
    """'90s', '15m', '2h', '1.5d' -> milliseconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ScenarioError(f"{text!r} is not a duration like 500ms, 90s, 15m, 2h or 1d")
    return int(float(match[1]) * _UNIT_MS[match[2]])


def parse_time(text: str, origin_ms: int | None = None, flag: str = "time", now_ms: int | None = None) -> int:
    """Parse an ISO-8601 time (naive means UTC), `now`, `now-2h`, or `+15m` (after origin_ms) -> epoch ms."""
    text = text.strip()
    try:
        if text.startswith("+") and origin_ms is not None:
            return origin_ms + parse_duration(text[1:])
        if text.startswith("now"):
            now = now_ms if now_ms is not None else (datetime.now(timezone.utc) - EPOCH) // timedelta(milliseconds=1)
            rest = text[3:]
            if not rest:
                return now
            if rest[0] in "+-":
                return now + (1 if rest[0] == "+" else -1) * parse_duration(rest[1:])
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except (ValueError, ScenarioError):
        relative = ", +15m (after the start)" if origin_ms is not None else ""
        raise ScenarioError(
            f"{flag}: cannot read {text!r} as a time; use ISO-8601 such as 2026-11-20T12:00Z, now, now-2h{relative}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - EPOCH) // timedelta(milliseconds=1)
