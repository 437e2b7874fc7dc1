"""The embedded stack switched to a recorded file's contract and model, and back: what `make replay` does,
for the benchmark and the end-to-end test, which run the replay as a user would.

    with replay_stack("tests/contracts/rainfall.yaml", extra={"CONTINUUM_RETRAIN_REGIME_HOURS": "3"}) as env:
        subprocess.run(["continuum-loop", "run", "--replay", ...], env=env)

On entry: the contract's suite is written (`tooling.loop.prepare`), Airflow and the sidecar stop, Airflow's
runs, the topics, the lake and the model are emptied, and both start under the file's settings. On exit
both stop and Airflow starts again under the stack's defaults, unless the caller says the stack is
stopped anyway (`restore=False`): `make test` stops the Airflow it started when the tests end, and a
stopped service starts under the defaults, so restarting it once more only costs time
(`stopped_after_tests`). `make replay` runs `main`, which switches and plays but does not switch back.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from tooling.local_dir import LOCAL, stack_defaults_env

ROOT = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(ROOT / "docker" / "local" / "stack.py")]
TEST_STARTED = LOCAL / "run" / "test-started"  # what `make test` started, and stops when it ends
LOOP = [str(Path(sys.executable).with_name("continuum-loop"))]


def base_env() -> dict:
    """This environment without Airflow's or Continuum's settings: the stack's defaults (where the stack
    is stays: `make test`'s own stack)."""
    return stack_defaults_env()


def _run(cmd: list[str], env: dict, timeout: float) -> str:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def switch(contract: str, model: str = "", extra: dict | None = None) -> dict:
    """Airflow and the sidecar restarted under the file's contract and model, on an emptied stack; returns
    the environment they run with (the loop must run with it too)."""
    base = base_env()
    prepared = _run([sys.executable, "-m", "tooling.loop.prepare", contract] + ([model] if model else []), base, 60)
    env = {**base, **dict(line.split("=", 1) for line in prepared.split()), **(extra or {})}
    _run(STACK + ["up", "kafka", "mlflow", "s3", "postgres"], base, 600)
    _run(STACK + ["down", "airflow", "serving", "live"], base, 180)
    _run(STACK + ["reset-airflow"], env, 180)
    _run(LOOP + ["reset"], env, 180)
    _run(STACK + ["up", "airflow", "serving"], env, 300)
    return env


def restore() -> None:
    """Airflow under the stack's defaults again (the sidecar stays down, as after `make down serving`)."""
    base = base_env()
    subprocess.run(STACK + ["down", "airflow", "serving"], cwd=ROOT, env=base, timeout=180)
    subprocess.run(STACK + ["up", "airflow"], cwd=ROOT, env=base, timeout=300)


def stopped_after_tests(started: Path = TEST_STARTED) -> bool:
    """Whether the running test command stops Airflow when it ends: it started Airflow itself."""
    return started.exists() and "airflow" in started.read_text().split()


@contextlib.contextmanager
def replay_stack(contract: str, model: str = "", extra: dict | None = None, restore_after: bool = True):
    """The stack switched to the file's contract for the block; with `restore_after` (the default) back to
    the defaults after it, even when the block fails, and otherwise with the sidecar it started stopped."""
    try:
        yield switch(contract, model, extra)
    finally:
        if restore_after:
            restore()
        else:  # the caller stops Airflow; the sidecar the switch started is this block's to stop
            subprocess.run(STACK + ["down", "serving"], cwd=ROOT, env=base_env(), timeout=180)


def main(argv: list[str] | None = None) -> int:
    """`make replay`: switch the stack to CONTRACT [MODEL] and play the file; the stack stays switched, so
    its UIs show the replay (`make demo` switches it back)."""
    args = sys.argv[1:] if argv is None else argv
    if "--" not in args or not 1 <= args.index("--") <= 2:
        print("usage: python -m tooling.loop.replay_stack CONTRACT [MODEL] -- <continuum-loop run arguments>",
              file=sys.stderr)
        return 2
    cut = args.index("--")
    given = {k: v for k, v in os.environ.items() if k.startswith("CONTINUUM_")}  # the user's own settings
    try:
        env = switch(*args[:cut], extra=given)
    except RuntimeError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 1
    return subprocess.run(LOOP + ["run", "--contract", env["CONTINUUM_CONTRACT"], *args[cut + 1:]], cwd=ROOT,
                          env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
