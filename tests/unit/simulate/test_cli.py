"""continuum-simulate's errors: each names the flag or the setting to fix, before any data is produced."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest

from ml.simulate.cli import main

ROOT = Path(__file__).resolve().parents[3]
PAST = ["--start", "2026-11-01T00:00Z", "--end", "2026-11-01T01:00Z"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["replay", *PAST, "--scenario", "drift"], "unknown scenario 'drift'; known: none, covariate"),
        (["replay", "--start", "2026-11-01T02:00Z", "--end", "2026-11-01T01:00Z"], "--end (2026-11-01T01:00Z) must be after --start"),
        (["replay", "--start", "last week", "--end", "now"], "--start: cannot read 'last week' as a time"),
        (["replay", "--start", "now", "--end", "now+1h"], "--end (now+1h) is in the future"),
        (["replay", *PAST, "--label-delay-min", "60", "--label-delay-median", "30"], "--label-delay-*: label delay: need"),
        (["replay", *PAST, "--contract", "nope"], "contract 'nope': no file"),
        (["replay", *PAST, "--devices", "0"], "--devices must be >= 1"),
        (["live", "--duration", "-5"], "--duration must be > 0"),
        (["replay", *PAST, "--scenario", "covariate:site=mars"], "site 'mars' is not allowed by the contract"),
    ],
)
def test_argument_errors_exit_2_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_unreachable_broker_fails_within_the_timeout_naming_servers_and_setting(capsys):
    started = time.monotonic()
    code = main(["replay", *PAST, "--bootstrap", "127.0.0.1:1", "--timeout", "1.5"])
    assert code == 1 and time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert "cannot reach Kafka at 127.0.0.1:1 within 1.5 s" in err and "CONTINUUM_KAFKA_BOOTSTRAP" in err


def test_the_console_script_is_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["continuum-simulate"] == "ml.simulate.cli:main"
