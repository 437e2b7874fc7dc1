"""The retraining policies a backtest compares: never, every K windows, the configured one, variants.

    never()                                   # the first champion serves throughout
    every(24, settings)                       # a calendar retrain every 24 windows, gated like any other
    configured(settings)                      # the monitor's policy with the settings' sections
    variant("eager", "drift.share_threshold=0.2,windows_k=2", settings)   # sections with fields overridden

A variant names section fields as `section.field` (sections: drift, live, retrain, gates) or by a field
name only one section has. Values are checked as the settings check them: a bad one names the
variable, the section field and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ml.settings import DriftSettings, GateSettings, LiveSettings, MonitorSettings, RetrainSettings

NEVER, EVERY, MONITOR = "never", "every", "monitor"
SECTIONS = {"drift": DriftSettings, "live": LiveSettings, "retrain": RetrainSettings, "gates": GateSettings}


@dataclass(frozen=True)
class PolicySpec:
    """A policy under test: its name, how it retrains (never, every K windows, or as the monitor
    decides) and the settings sections it decides, trains and gates with."""

    name: str
    kind: str
    monitor: MonitorSettings
    gates: GateSettings
    every: int = 0
    overrides: tuple[str, ...] = ()

    @property
    def retrain(self) -> RetrainSettings:
        return self.monitor.retrain


def _sections(monitor: MonitorSettings | None, gates: GateSettings | None) -> tuple[MonitorSettings, GateSettings]:
    return monitor or MonitorSettings(), gates or GateSettings()


def never(monitor: MonitorSettings | None = None, gates: GateSettings | None = None) -> PolicySpec:
    return PolicySpec("never", NEVER, *_sections(monitor, gates))


def every(k: int, monitor: MonitorSettings | None = None, gates: GateSettings | None = None) -> PolicySpec:
    if k < 1:
        raise ValueError(f"every: retrain every K windows needs K >= 1 (got {k}); give --every 24, for example")
    return PolicySpec(f"every {k}", EVERY, *_sections(monitor, gates), every=k)


def configured(monitor: MonitorSettings | None = None, gates: GateSettings | None = None) -> PolicySpec:
    return PolicySpec("configured", MONITOR, *_sections(monitor, gates))


def variant(name: str, assignments: str, monitor: MonitorSettings | None = None,
            gates: GateSettings | None = None) -> PolicySpec:
    """The configured policy with `assignments` (`key=value,key=value`) applied to its sections."""
    monitor, gates = _sections(monitor, gates)
    values = {"drift": monitor.drift, "live": monitor.live, "retrain": monitor.retrain, "gates": gates}
    changes: dict[str, dict[str, str]] = {}
    items = [a.strip() for a in assignments.split(",") if a.strip()]
    if not name or not items:
        raise ValueError(f"--policy {name}:{assignments}: give a name and at least one key=value, e.g. "
                         "eager:drift.share_threshold=0.2,windows_k=2")
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--policy {name}: {item!r} is not key=value")
        section, field = _resolve(name, key.strip())
        changes.setdefault(section, {})[field] = value.strip()
    for section, updates in changes.items():
        values[section] = replace(values[section], **updates)  # checked like the settings
    built = replace(monitor, drift=values["drift"], live=values["live"], retrain=values["retrain"])
    return PolicySpec(name, MONITOR, built, values["gates"], overrides=tuple(items))


def _resolve(name: str, key: str) -> tuple[str, str]:
    section, dot, field = key.rpartition(".")
    if dot:
        if section not in SECTIONS or field not in {f.name for f in fields(SECTIONS[section])}:
            raise ValueError(f"--policy {name}: no setting {key!r}; use a section ({', '.join(SECTIONS)}) and "
                             f"one of its fields, e.g. drift.share_threshold")
        return section, field
    owners = [s for s, cls in SECTIONS.items() if key in {f.name for f in fields(cls)}]
    if len(owners) != 1:
        why = "no section has it" if not owners else f"sections {', '.join(owners)} all have it"
        raise ValueError(f"--policy {name}: {key!r}: {why}; write it as section.field, e.g. drift.share_threshold")
    return owners[0], key
