"""The digest a version's model file must have: the one its records agree on, never a tag alone."""

from __future__ import annotations

import logging

import pytest

from ml.registry.digest import RUN, TAG, VERDICT, DigestMismatch, Untrusted, agreed_digest

A, B = "a" * 64, "b" * 64
URI = "mlflow-artifacts:/1/models/m-1/artifacts"


def test_the_records_agreeing_give_the_digest():
    assert agreed_digest("mf", "3", {TAG: A, RUN: A, VERDICT: A}) == A
    assert agreed_digest("mf", "3", {TAG: A, RUN: A, VERDICT: None}) == A  # registered, not judged yet


def test_one_record_differing_refuses_naming_each_record():
    for records in ({TAG: A, RUN: A, VERDICT: B}, {TAG: B, RUN: A, VERDICT: A}, {TAG: None, RUN: A, VERDICT: B}):
        with pytest.raises(Untrusted, match="recorded model digests disagree") as caught:
            agreed_digest("mf", "3", records)
        assert all(f"{source} {digest}" in str(caught.value) for source, digest in records.items() if digest)


def test_a_tag_alone_or_no_record_refuses():
    for records in ({TAG: A, RUN: None, VERDICT: None}, {TAG: None, RUN: None, VERDICT: None}):
        with pytest.raises(Untrusted, match="no model digest from its training run or a verdict"):
            agreed_digest("mf", "3", records)


def test_a_version_registered_before_the_tag_is_checked_against_its_run_and_verdict_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="ml.registry.digest"):
        assert agreed_digest("mf", "3", {TAG: None, RUN: A, VERDICT: A}) == A
    assert "mf v3 has no model_sha256 tag" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ml.registry.digest"):
        agreed_digest("mf", "3", {TAG: A, RUN: A, VERDICT: A})
    assert not caplog.text


def test_a_mismatch_carries_the_evidence_and_says_what_to_do():
    exc = DigestMismatch("mf", "3", A, B, URI)
    assert exc.evidence == {"model": "mf", "version": "3", "expected": A, "found": B, "artifact_uri": URI}
    assert f"has sha256 {B}, not the {A}" in str(exc) and "register the model again" in str(exc)
