"""Ingest partitions (protocol/partitions.py): every shard in exactly one slot, every slot with one replica."""

from __future__ import annotations

import pytest

from tinyfleet.protocol import partitions, topics


@pytest.mark.parametrize("slots", [1, 3, 8, 16, 256])
def test_every_shard_belongs_to_exactly_one_slot(slots: int) -> None:
    seen = [s for k in range(slots) for s in partitions.slot_shards(k, slots)]
    assert sorted(seen) == [f"{i:02x}" for i in range(256)]


def test_a_devices_topics_fall_in_its_slots_filters() -> None:
    dev = "dev-0001"
    k = int(topics.shard(dev), 16) % 16
    filters = partitions.slot_filters(k, 16)
    for kind in partitions.KINDS:
        parts = getattr(topics, kind)(dev).split("/")
        assert "/".join([*parts[:3], "+", parts[4]]) in filters
    assert not any(f.endswith("/desired") for f in filters)  # the server's own retained topics stay out
    assert partitions.slot_client_id(k) == f"_tf-ingest-{k:03d}" and not topics.valid_device_id("_tf-ingest-000")


@pytest.mark.parametrize("members", [[0], [0, 1], [3, 7, 9], list(range(20))])
def test_assign_gives_each_slot_to_one_live_member_evenly(members: list[int]) -> None:
    shares = [partitions.assign(members, m, 16) for m in members]
    assert sorted(k for s in shares for k in s) == list(range(16))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert partitions.assign(members, 999, 16) == set()  # not a member: nothing


@pytest.mark.parametrize("bad", [0, 257, -1])
def test_slot_counts_outside_1_to_256_are_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="ingest slots must be 1..256"):
        partitions.slot_shards(0, bad)
