"""Shard assignment: every appliance belongs to exactly one shard, and the hash is stable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnf_operator.controller.sharding import Shard, shard_of

pytestmark = pytest.mark.unit

names = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)


@given(names, names, st.integers(min_value=1, max_value=16))
def test_exactly_one_shard_owns_each_appliance(ns: str, name: str, count: int) -> None:
    owners = [i for i in range(count) if Shard(i, count).owns(ns, name)]
    assert owners == [shard_of(ns, name, count)]


def test_assignment_is_stable_and_spread() -> None:
    keys = [("tenant", f"fw-{i}") for i in range(1000)]
    first = [shard_of(ns, n, 4) for ns, n in keys]
    assert first == [shard_of(ns, n, 4) for ns, n in keys]
    counts = [first.count(i) for i in range(4)]
    assert min(counts) > 150, counts  # a roughly even split, not all on one shard


@pytest.mark.parametrize("text", ["2/2", "x/2", "1", "0/0", "-1/3"])
def test_bad_shard_setting_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="VNF_SHARD"):
        Shard.parse(text)


def test_default_is_one_shard_owning_everything() -> None:
    assert Shard.parse(None).owns("a", "b")
    assert Shard.parse("1/3") == Shard(1, 3)
