"""The control message announcing a champion move: the bytes every sidecar parses."""

from __future__ import annotations

import json

from ml.registry import control_message

RECORD = {"type": "promotion", "model": "machine-failure", "alias": "champion", "from": "3", "to": "4",
          "actor": "alice", "at": "2026-11-22T14:00:00+00:00", "reason": "beats v3"}


def test_key_is_the_model_and_value_the_agreed_json():
    key, value = control_message(RECORD)
    assert key == b"machine-failure"
    assert json.loads(value) == {"type": "promotion", "model": "machine-failure", "alias": "champion", "version": "4",
                                 "previous": "3", "at": "2026-11-22T14:00:00+00:00", "reason": "beats v3"}
    assert json.loads(control_message({**RECORD, "from": None, "type": "rollback"})[1])["previous"] is None
