"""The local stack's folder, as the stack itself finds it: `CONTINUUM_LOCAL_DIR`, else `.local` in the
checkout (`make test` points it at `.local/test`, the suite's own stack)."""

from __future__ import annotations

import os

from ml.settings.login import stack_folder

LOCAL = stack_folder()

# where the stack is: its folder and ports (CONTINUUM_LOCAL_*), its lake and its alert state; `make test`
# points them at its own stack, so they are kept where the other settings are dropped; and how it runs
# Airflow (CONTINUUM_EXECUTOR: a restart keeps the executor whose broker and workers are running)
WHERE_THE_STACK_IS = ("CONTINUUM_LOCAL_", "CONTINUUM_LAKE_URI", "CONTINUUM_ALERT_STATE_PATH", "CONTINUUM_EXECUTOR")


def stack_defaults_env(environ: dict | None = None) -> dict[str, str]:
    """This environment without Airflow's or Continuum's settings, so the stack's defaults apply, except
    the variables that say where the stack is."""
    environ = dict(os.environ if environ is None else environ)
    return {k: v for k, v in environ.items()
            if not k.startswith(("AIRFLOW", "CONTINUUM_")) or k.startswith(WHERE_THE_STACK_IS)}
