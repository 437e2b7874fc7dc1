"""The serving sidecar assembled: model keeper, control listener, scoring loop and HTTP port (served by a
process of its own, `ml.serving.port`, fed every serving state the keeper swaps in).

Until a champion exists the sidecar reports not-ready and does not even join the consumer group, so
its partitions stay with replicas that can score them. `stop()` (SIGTERM) lets the current batch
finish, flushes the producer and commits before leaving the group. A batch whose outputs are not
delivered stops it with DeliveryFailed: nothing from that batch on is committed, so the restart that
follows scores it again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from confluent_kafka import Consumer, Producer
from prometheus_client import generate_latest

from ml.contract import Contract
from ml.contract.codec import codec_for
from ml.contract.decode import RawBatch
from ml.kafka import scoring_consumer, scoring_producer
from ml.lake import Lake
from ml.serving.control import ControlListener, alert_sender
from ml.serving.metrics import ServingMetrics
from ml.serving.port import PortProcess
from ml.serving.score import Scored, score_batch
from ml.serving.stream import Output, StreamLoop
from ml.serving.swap import ModelKeeper
from ml.settings import KafkaSettings, RegistrySettings, ServingSettings

log = logging.getLogger(__name__)


class Sidecar:
    """One serving process: `serving` says how it serves, `kafka` where the streams are, `registry` which
    model it serves, `lake` where the verdicts that let a version serve are. `run()` blocks until `stop()`."""

    def __init__(self, serving: ServingSettings, kafka: KafkaSettings, registry: RegistrySettings, lake: Lake,
                 contract: Contract, client) -> None:
        self.serving, self.kafka, self.registry, self.contract = serving, kafka, registry, contract
        self.metrics = ServingMetrics()
        self.codec = codec_for(contract, "telemetry")
        self.producer = Producer({**scoring_producer(kafka.bootstrap), "logger": log})
        consumer = Consumer({**scoring_consumer(kafka.bootstrap, serving.group, serving.session_timeout_ms),
                             "logger": log})
        self.keeper = ModelKeeper(client, registry.tracking_uri, registry.model_name, contract, self.metrics,
                                  alert_sender(kafka.bootstrap, kafka.topic_alerts, registry.tracking_uri),
                                  lake, serving.poll_s, serving.shadow, serving.bake_hours)
        self.control = ControlListener(kafka.bootstrap, kafka.topic_control, registry.model_name,
                                       self.keeper.on_control)
        self.loop = StreamLoop(consumer, self.producer, kafka.topic_telemetry, self.metrics,
                               serving.batch_max, serving.batch_wait_ms / 1000)
        self.port = PortProcess(serving.host, serving.port, lambda: self.keeper.state, self.status,
                                lambda: generate_latest(self.metrics.registry))
        self.keeper.on_swap = self.port.publish
        self._stop = threading.Event()

    def status(self) -> dict:
        """What /healthz shows: ready once a champion serves and the stream is consumed; the versions
        refused, and for each refused because its model file changed, the digests and artifact URI."""
        state = self.keeper.state
        body = {"ready": state is not None and self.loop.subscribed, "model": self.registry.model_name,
                "versions": [m.version for m in state.models] if state else [],
                "champion": state.champion.version if state else None,
                "shadow": state.shadow.version if state and state.shadow else None,
                "refused": sorted(self.keeper.refused), "digest_mismatch": dict(self.keeper.mismatched),
                "partitions": sorted(self.loop.assigned)}
        if state is None:
            body["reason"] = f"no champion for {self.registry.model_name} yet"
        return body

    def stop(self) -> None:
        self._stop.set()

    def report(self) -> None:
        """Log where the sidecar stands (its status and the loop's) and every thread's stack: what an
        operator reads when a sidecar looks stuck (`kill -USR1 <pid>`; the stacks go to stderr)."""
        import faulthandler
        import sys

        proc = self.port.proc
        log.warning("report on request: status %s; loop %s; HTTP port process %s", self.status(), self.loop.describe(),
                    "none yet" if proc is None else f"{proc.pid} ({'running' if proc.poll() is None else 'exited'})")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)

    def run(self, before_consuming: Callable[[], object] | None = None) -> None:
        """Serve until `stop()`. `before_consuming` is called once, with the champion loaded and start-up
        done, just before the sidecar joins the consumer group: where its entry point tunes the process."""
        self.port.start()
        self.keeper.start()
        self.control.start()
        log.info("serving on http://%s:%d; waiting for a champion of %s", self.serving.host,
                 self.port.port, self.registry.model_name)
        try:
            while not self._stop.is_set():
                if self.keeper.state is None:
                    self._stop.wait(0.1)
                    continue
                if not self.loop.subscribed:
                    if before_consuming is not None:
                        before_consuming()
                    self.loop.subscribe()
                    self.metrics.ready.set(1)
                    log.info("champion v%s loaded; consuming %s as group %s", self.keeper.state.champion.version,
                             self.kafka.topic_telemetry, self.serving.group)
                self.loop.step(self._score, self._emit)
        finally:
            self.metrics.ready.set(0)
            self.control.stop()
            self.keeper.stop()
            try:
                if self.loop.subscribed:
                    self.loop.close()  # commits only what is safe; raises DeliveryFailed if a batch was not
            finally:
                self.producer.flush(30)
                self.port.stop()
                log.info("stopped")

    def _score(self, batch: RawBatch) -> Scored:
        """On the scoring thread: decode, score and encode one batch with one state (a swap lands between
        batches)."""
        state = self.keeper.state
        started = time.perf_counter()
        scored = score_batch(self.contract, self.codec, state, batch, self.kafka.topic_telemetry,
                             time.time_ns() // 1_000_000, self.serving.dlq_max_bytes)
        self.metrics.scoring.observe(time.perf_counter() - started)
        return scored

    def _emit(self, scored: Scored, out: Output) -> None:
        """On the loop's thread, in consume order: produce one scored batch's records."""
        topics = self.kafka
        out.many(topics.topic_predictions, scored.predictions)
        out.many(topics.topic_alerts, scored.alerts)
        out.many(topics.topic_predictions_shadow, scored.shadow)
        for key, value, headers in scored.dlq:
            out.one(topics.topic_dlq, value, key, headers)
        self.metrics.batch_size.observe(len(scored.predictions) + len(scored.dlq))  # every event is one or the other
        self.metrics.scored.inc(len(scored.predictions))
        if scored.dlq:
            self.metrics.dead.inc(len(scored.dlq))
            self.metrics.dlq.inc(len(scored.dlq))
            log.warning("%d bad events to %s, e.g. %s", len(scored.dlq), topics.topic_dlq,
                        scored.dlq[0][2][0][1].decode(errors="replace"))
        if scored.dlq_truncated:
            self.metrics.dlq_truncated.inc(scored.dlq_truncated)
            log.warning("%d dead letters over %d bytes cut (header `truncated`: the original size)",
                        scored.dlq_truncated, self.serving.dlq_max_bytes)
        self.metrics.end_to_end.observe_many(scored.latency_s)
