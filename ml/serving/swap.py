"""Keep the right models loaded and swap them in between batches, never in the middle of one.

A background thread owns every registry call and model load. It wakes on a control message or every
`poll_s` (the fallback when a control message is lost), reads where the aliases point, loads and checks
whatever changed (only a version whose verdict in the lake passed and is approved for the very bytes
downloaded), and then replaces `state` in one assignment; the scoring loop reads `state` once per
batch, so it never waits for a load and never scores a batch with two champions. A version that fails
to load or to check is refused: the old state keeps serving, and on-call gets a `model_refused` alert.
A model file whose SHA-256 is not the one recorded at registration is refused the same way, before it is
parsed; its evidence (expected and found digests, artifact URI) is kept for /healthz, and on-call hears
of it once per version and file found, however often the keeper looks again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

from ml.contract import Contract
from ml.registry.versions import CHALLENGER, CHAMPION
from ml.serving.metrics import ServingMetrics
from ml.serving.model import ModelRefused, ServingModel, alias_version, check_model, load_version
from ml.serving.routing import ServingState, TrafficError, parse_split, split_state

log = logging.getLogger(__name__)
Notify = Callable[[dict], None]
RETRY_REFUSED_S = 600.0


class ModelKeeper:
    """Holds the current `ServingState` (None until a champion exists) and keeps it up to date."""

    def __init__(self, client, tracking_uri: str, name: str, contract: Contract, metrics: ServingMetrics,
                 notify: Notify, lake, poll_s: float = 30.0, shadow: bool = False) -> None:
        self.client, self.tracking_uri, self.name, self.contract = client, tracking_uri, name, contract
        self.lake = lake  # where the verdicts are: only a version judged, approved and unchanged serves
        self.metrics, self.notify, self.poll_s, self.shadow = metrics, notify, poll_s, shadow
        self.state: ServingState | None = None
        self.refused: dict[str, tuple[str, float]] = {}  # version -> (reason, when), retried after RETRY_REFUSED_S
        self.mismatched: dict[str, dict] = {}  # version -> evidence of its model file not being the one registered
        self._shadow_only: set[str] = set()  # loaded as a shadow, without approval: verified again for any other role
        self._weights: dict[str, float] = {}
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
        champion = self._wanted(alias_version(self.client, self.name, CHAMPION), current, CHAMPION)
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
        shadow = None
        if self.shadow:
            shadow = self._wanted(alias_version(self.client, self.name, CHALLENGER), current, "shadow")
        new = split_state(champion, split, self._weights, shadow)
        if current is None or _key(new) != _key(current):
            self.state = new
            self.metrics.swaps.inc()
            self.metrics.set_versions([m.version for m in new.models])
            log.info("now serving %s v%s%s%s", self.name, champion.version,
                     f" split {self._weights}" if split else "", f" shadow v{shadow.version}" if shadow else "")

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
