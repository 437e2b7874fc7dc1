"""`continuum-serve`: run one serving sidecar with the settings from the environment.

Every option is a CONTINUUM_* setting (ml/settings/): the broker, the MLflow server, the model name,
the contract, the topics, CONTINUUM_SERVING_PORT / _HOST / _GROUP / _BATCH_MAX / _BATCH_WAIT_MS /
_POLL_S / _SHADOW / _DLQ_MAX_BYTES. SIGTERM or SIGINT drains the current batch, commits and exits 0;
SIGUSR1 logs where it stands (champion, partitions, read positions, batches in flight) and every
thread's stack, and goes on. A batch
whose outputs could not be delivered ends it with exit code 1 and an error naming the batch's first
offsets; nothing from there on was committed, so a restart (the orchestrator's) scores it again.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from ml.settings import SettingsError, load_settings

log = logging.getLogger("ml.serving")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="continuum-serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2

    import mlflow

    from ml.contract import load_contract
    from ml.runtime import serving_tuning
    from ml.serving.offsets import DeliveryFailed
    from ml.serving.sidecar import Sidecar

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    from ml.lake import Lake

    sidecar = Sidecar(settings.serving, settings.kafka, settings.registry, Lake.from_settings(settings.lake),
                      load_contract(settings.contract), mlflow.MlflowClient(settings.mlflow_tracking_uri))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sidecar.stop())
    if hasattr(signal, "SIGUSR1"):  # not on Windows
        signal.signal(signal.SIGUSR1, lambda *_: sidecar.report())
    try:
        sidecar.run(before_consuming=serving_tuning)  # kept until the process exits
    except DeliveryFailed as exc:
        cause = exc.__context__  # what failed the batch when it was raised on the way (e.g. a scoring failure)
        log.error("stopped: %s; a restart reads again from there", exc,
                  exc_info=None if isinstance(cause, DeliveryFailed) else cause)
        return 1
    return 0
