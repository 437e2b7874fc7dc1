"""A replica's place in the group: partitions added and removed one by one (cooperative), what was delivered
committed before a partition is given up, and its lag shown per partition it owns, and only those."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import generate_latest

from ml.serving.membership import Membership
from ml.serving.metrics import ServingMetrics
from ml.serving.offsets import DeliveryFailed

TOPIC = "telemetry"


def tps(*partitions: int) -> list[TopicPartition]:
    return [TopicPartition(TOPIC, p) for p in partitions]


class Group:
    """A consumer's side of a rebalance, in memory: what the callbacks asked of it, in order, shared with
    the loop's drain and discard; its read positions and the partitions' ends for the lag."""

    def __init__(self, drain_fails: bool = False) -> None:
        self.calls: list = []
        self.owned: set[int] = set()
        self.positions: dict[int, int] = {}
        self.ends: dict[int, tuple[int, int]] = {}
        self.drain_fails, self.failed = drain_fails, False

    def incremental_assign(self, partitions) -> None:
        self.calls.append(("assign", sorted(p.partition for p in partitions)))
        self.owned |= {p.partition for p in partitions}

    def incremental_unassign(self, partitions) -> None:
        self.calls.append(("unassign", sorted(p.partition for p in partitions)))
        self.owned -= {p.partition for p in partitions}

    def drain(self) -> None:
        self.calls.append(("drain", sorted(self.owned)))  # while every partition is still owned
        if self.drain_fails:
            raise DeliveryFailed("output of the batch from telemetry partition:offset 1:40 not delivered")

    def discard(self) -> None:
        self.calls.append(("discard", sorted(self.owned)))

    def assignment(self) -> list[TopicPartition]:
        return tps(*sorted(self.owned))

    def position(self, partitions) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p.partition, self.positions.get(p.partition, -1001)) for p in partitions]

    def get_watermark_offsets(self, tp, cached=False) -> tuple[int, int]:
        assert cached, "the lag is read from the client's cache, not asked of the broker"
        return self.ends.get(tp.partition, (-1001, -1001))


def member(group: Group) -> Membership:
    return Membership(ServingMetrics(), group.drain, group.discard, lambda: group.failed)


def lag_lines(membership: Membership) -> list[str]:
    text = generate_latest(membership.metrics.registry).decode()
    return [line for line in text.splitlines() if line.startswith("continuum_consumer_lag{")]


def test_an_assignment_adds_only_the_partitions_named_and_keeps_the_others():
    group = Group()
    membership = member(group)
    membership.on_assign(group, tps(0, 1))
    membership.on_assign(group, tps(3))
    assert group.calls == [("assign", [0, 1]), ("assign", [3])]
    assert membership.assigned == group.owned == {0, 1, 3}


def test_a_revoked_partition_is_drained_and_committed_before_it_is_given_up_and_the_others_stay():
    group = Group()
    membership = member(group)
    membership.on_assign(group, tps(0, 1, 2))
    membership.on_revoke(group, tps(1))
    assert group.calls[1:] == [("drain", [0, 1, 2]), ("unassign", [1])]
    assert membership.assigned == group.owned == {0, 2}


def test_a_revocation_after_a_failed_batch_commits_nothing_and_still_gives_the_partitions_up():
    group = Group()
    membership = member(group)
    membership.on_assign(group, tps(0, 1))
    group.failed = True
    membership.on_revoke(group, tps(0, 1))
    assert group.calls[1:] == [("unassign", [0, 1])]
    assert membership.assigned == set()


def test_a_drain_that_finds_an_undelivered_batch_raises_and_the_partitions_are_given_up_all_the_same():
    group = Group(drain_fails=True)
    membership = member(group)
    membership.on_assign(group, tps(0, 1))
    with pytest.raises(DeliveryFailed, match="1:40"):
        membership.on_revoke(group, tps(1))
    assert group.calls[1:] == [("drain", [0, 1]), ("unassign", [1])]
    assert membership.assigned == {0}


def test_lost_partitions_drop_what_was_not_produced_and_commit_nothing():
    group = Group()
    membership = member(group)
    membership.on_assign(group, tps(0, 1))
    membership.on_lost(group, tps(0, 1))
    assert group.calls[1:] == [("discard", [0, 1]), ("unassign", [0, 1])]
    assert membership.assigned == set()


def test_the_lag_is_shown_per_owned_partition_and_a_partition_given_up_disappears():
    group = Group()
    membership = member(group)
    membership.on_assign(group, tps(0, 1, 2))
    group.positions = {0: 100, 1: 250}  # partition 2: nothing read yet, so its lag counts from its start
    group.ends = {0: (0, 130), 1: (200, 250), 2: (40, 90)}
    membership.update_lag(group)
    assert lag_lines(membership) == ['continuum_consumer_lag{partition="0"} 30.0',
                                     'continuum_consumer_lag{partition="1"} 0.0',
                                     'continuum_consumer_lag{partition="2"} 50.0']
    membership.on_revoke(group, tps(0))
    assert lag_lines(membership) == ['continuum_consumer_lag{partition="1"} 0.0',
                                     'continuum_consumer_lag{partition="2"} 50.0']


def test_a_partition_whose_end_is_not_known_yet_shows_no_lag_rather_than_a_wrong_one():
    group = Group()
    membership = member(group)
    membership.on_assign(group, tps(0, 1))
    group.positions, group.ends = {0: 5}, {0: (0, 8)}
    membership.update_lag(group)
    assert lag_lines(membership) == ['continuum_consumer_lag{partition="0"} 3.0']


def test_the_session_timeout_reaches_the_consumer_with_a_heartbeat_a_tenth_of_it(monkeypatch):
    from ml.kafka import scoring_consumer
    from ml.settings import SettingsError, load_settings

    monkeypatch.setenv("CONTINUUM_SERVING_SESSION_TIMEOUT_MS", "6000")  # the broker's least
    serving = load_settings().serving
    config = scoring_consumer("127.0.0.1:9092", serving.group, serving.session_timeout_ms)
    assert config["session.timeout.ms"] == 6000 and config["heartbeat.interval.ms"] == 600
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    monkeypatch.setenv("CONTINUUM_SERVING_SESSION_TIMEOUT_MS", "5999")
    with pytest.raises(SettingsError, match="CONTINUUM_SERVING_SESSION_TIMEOUT_MS") as err:
        load_settings()
    assert "fix:" in str(err.value)
