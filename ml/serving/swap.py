"""Keep the right models loaded and swap them in between batches, never in the middle of one.

A background thread owns every registry call and model load. It wakes on a control message or every
`poll_s` (the fallback when a control message is lost), reads where the aliases point, loads and checks
whatever changed (only a version whose verdict in the lake passed and is approved for the very bytes
downloaded), and then replaces `state` in one assignment. The shadow is the challenger when shadowing
is on; while a new champion is on probation (its bake window) it is the champion it replaced, so the
monitor can compare the two on the same events; the scoring loop reads `state` once per
batch, so it never waits for a load and never scores a batch with two champions. A version that fails
to load or to check is refused: the old state keeps serving, and on-call gets a `model_refused` alert.
A registry, artifact store or lake that does not answer is not a refusal: the old state keeps serving
and the next look (poll or control message) asks again, so a swap cut by an outage happens once it ends.
A model file whose SHA-256 is not the one recorded at registration is refused the same way, before it is
parsed; its evidence (expected and found digests, artifact URI) is kept for /healthz, and on-call hears
of it once per version and file found, however often the keeper looks again.

A new champion is served only if the lake's audit trail records the move that made it champion
(`ml.registry.recorded_move`): MLflow lets any account that may set `challenger` set `champion` too, but
only the promotion and rollback tasks write the trail. The promotion writes its record just after it
moves the alias, so a champion seen without one is looked at again at every wake-up (the control
message that follows the record is one) and only paged, once, when it stays unrecorded for
UNRECORDED_GRACE_S.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Callable

from ml import clock
from ml.contract import Contract
from ml.registry.aliases import MOVE_TAG
from ml.registry.history import Probation, probation
from ml.registry.versions import CHALLENGER, CHAMPION, by_alias
from ml.serving.metrics import ServingMetrics
from ml.serving.model import ModelRefused, ModelUnavailable, ServingModel, alias_version, check_model, load_version
from ml.serving.routing import ServingState, TrafficError, parse_split, split_state

log = logging.getLogger(__name__)
Notify = Callable[[dict], None]
RETRY_REFUSED_S = 600.0
UNRECORDED_GRACE_S = 120.0  # far longer than a promotion takes from moving the alias to writing its record


class ModelKeeper:
    """Holds the current `ServingState` (None until a champion exists) and keeps it up to date."""

    def __init__(self, client, tracking_uri: str, name: str, contract: Contract, metrics: ServingMetrics,
                 notify: Notify, lake, poll_s: float = 30.0, shadow: bool = False, bake_hours: float = 0.0) -> None:
        self.client, self.tracking_uri, self.name, self.contract = client, tracking_uri, name, contract
        self.lake = lake  # where the verdicts are: only a version judged, approved and unchanged serves
        self.metrics, self.notify, self.poll_s, self.shadow = metrics, notify, poll_s, shadow
        self.bake_hours = bake_hours  # a champion on probation is shadowed by the one it replaced
        self.state: ServingState | None = None
        self.refused: dict[str, tuple[str, float]] = {}  # version -> (reason, when), retried after RETRY_REFUSED_S
        self.mismatched: dict[str, dict] = {}  # version -> evidence of its model file not being the one registered
        self._shadow_only: set[str] = set()  # loaded as a shadow, without approval: verified again for any other role
        self.unrecorded: dict[str, float | None] = {}  # champion version -> first seen unrecorded (None: paged)
        self._weights: dict[str, float] = {}
        self.on_swap: Callable[[ServingState], None] | None = None  # told of each new state (the HTTP port)
        self._inbox: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-keeper", daemon=True)

    def start(self) -> None:
        self._inbox.put({"type": "start"})  # look at the registry at once, not after the first poll interval
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(None)

    def on_control(self, message: dict) -> None:
        """Handle a control message for this model (promotion, rollback, traffic) in the background."""
        self._inbox.put(message)

    def refresh(self) -> None:
        """Look at the registry now: one pass in the caller's thread, the one the background thread makes
        at each wake-up, for a caller that wants the state at once without starting that thread."""
        self._update([])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                messages = [self._inbox.get(timeout=self.poll_s)]
            except queue.Empty:
                messages = []
            while not self._inbox.empty():  # coalesce a burst (or a replayed control topic) into one pass
                messages.append(self._inbox.get_nowait())
            messages = [m for m in messages if m is not None]
            if self._stop.is_set():
                return
            try:
                self._update(messages)
            except ModelUnavailable as exc:  # not a verdict: nothing is refused, nobody is paged
                log.warning("%s; the current model keeps serving, and the next look (in %g s, or at a control "
                            "message) tries again", exc, self.poll_s)
            except Exception:  # the registry is unreachable: keep serving, try again at the next wake-up
                log.exception("model check failed; the current model keeps serving")

    def _update(self, messages: list[dict]) -> None:
        for message in messages:
            if message.get("type") in ("promotion", "rollback"):
                self._weights = {}
            elif message.get("type") == "traffic":
                try:
                    self._weights = parse_split(message.get("split"))
                except TrafficError as exc:
                    log.error("ignoring traffic message %s: %s", message, exc)
        current = self.state
        found = by_alias(self.client, self.name, CHAMPION)
        champion = self._wanted(str(found.version) if found else None, current, CHAMPION)
        if champion is None:
            return
        split = {}
        for version in self._weights:
            model = self._wanted(version, current, "traffic split")
            if model is None:
                self._weights = {}  # a refused version ends the experiment: the champion serves everyone
                split = {}
                break
            split[version] = model
        shadow, baking = None, self._probation(found, champion)
        if baking is not None:  # the bake window: the champion it replaced is scored on the same events
            shadow = self._wanted(baking.previous, current, "shadow")
        elif self.shadow:
            shadow = self._wanted(alias_version(self.client, self.name, CHALLENGER), current, "shadow")
        new = split_state(champion, split, self._weights, shadow)
        if current is None or _key(new) != _key(current):
            self.state = new
            if self.on_swap is not None:
                self.on_swap(new)
            self.metrics.swaps.inc()
            self.metrics.set_versions([m.version for m in new.models])
            log.info("now serving %s v%s%s%s", self.name, champion.version,
                     f" split {self._weights}" if split else "", f" shadow v{shadow.version}" if shadow else "")

    def _probation(self, found, champion: ServingModel) -> Probation | None:
        """The serving champion's probation, from the move record its version carries (`MOVE_TAG`), at the
        loop's time (`ml.clock`: the event time of a paced replay); None when off or over."""
        if self.bake_hours <= 0 or found is None or str(found.version) != champion.version:
            return None
        try:
            move = json.loads(found.tags.get(MOVE_TAG) or "null")
        except ValueError:
            return None
        return probation(move if isinstance(move, dict) else None, clock.now(self.lake), self.bake_hours)

    def _wanted(self, version: str | None, current: ServingState | None, role: str) -> ServingModel | None:
        """The loaded, checked model of a version: reused if already serving, None if absent or refused
        (for the champion role, the current champion keeps serving then)."""
        fallback = current.champion if current is not None and role == CHAMPION else None
        if version is None:
            return fallback
        loaded = {m.version: m for m in (current.models + [current.champion] if current else [])}
        if current is not None and current.shadow is not None:
            loaded.setdefault(current.shadow.version, current.shadow)
        if version in loaded and (role == "shadow" or version not in self._shadow_only):
            return loaded[version]
        if version in self.refused and time.monotonic() - self.refused[version][1] < RETRY_REFUSED_S:
            return fallback  # a load can fail for a passing reason (artifact store down): try again later
        if role == CHAMPION and not self._move_recorded(version, current):
            return fallback
        started = time.monotonic()
        try:
            model = check_model(load_version(self.tracking_uri, self.name, version, self.lake,
                                             approved=role != "shadow"), self.contract)
        except ModelRefused as exc:
            self._refuse(version, role, str(exc), current, exc.evidence)
            return fallback
        self.mismatched.pop(version, None)
        if role == "shadow":
            self._shadow_only.add(version)
        else:
            self._shadow_only.discard(version)
        log.info("loaded and checked %s v%s for %s in %.1f s", self.name, version, role, time.monotonic() - started)
        return model

    def _move_recorded(self, version: str, current: ServingState | None) -> bool:
        """Whether the audit trail records the move that made `version` champion; when it does not for
        UNRECORDED_GRACE_S, on-call is paged once for that version."""
        from ml.registry.aliases import UnrecordedMove, recorded_move

        try:
            recorded_move(self.lake, self.name, version)
        except UnrecordedMove as exc:
            now = time.monotonic()
            first = self.unrecorded.setdefault(version, now)
            serving = f"v{current.champion.version}" if current else "nothing"
            log.warning("%s; still serving %s", exc, serving)
            if first is not None and now - first >= UNRECORDED_GRACE_S:
                self.unrecorded[version] = None  # paged: not again for this version
                self.metrics.refused.inc()
                self.notify({"type": "model_refused", "model": self.name, "version": version, "role": CHAMPION,
                             "reason": str(exc), "serving_version": current.champion.version if current else None,
                             "evidence": {}})
            return False
        self.unrecorded.pop(version, None)
        return True

    def _refuse(self, version: str, role: str, reason: str, current: ServingState | None,
                evidence: dict | None = None) -> None:
        self.refused[version] = (reason, time.monotonic())
        self.metrics.refused.inc()
        serving = current.champion.version if current else None
        log.error("REFUSED %s v%s as %s: %s; still serving %s%s", self.name, version, role, reason,
                  f"v{serving}" if serving else "nothing", f"; evidence {evidence}" if evidence else "")
        if evidence:
            told = self.mismatched.get(version, {}).get("found") == evidence.get("found")
            self.mismatched[version] = evidence
            if told:  # on-call knows this file of this version already
                return
        self.notify({"type": "model_refused", "model": self.name, "version": version, "role": role,
                     "reason": reason, "serving_version": serving, "evidence": evidence or {}})


def _key(state: ServingState) -> tuple:
    return (state.champion.version, tuple((w, m.version) for w, m in state.split),
            state.shadow.version if state.shadow else None)
