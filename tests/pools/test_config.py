"""PoolConfig and the rejection policies: validation and parsing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aimax.errors import ConfigurationError
from aimax.pools import (
    DEFAULT_POOL_CONFIGS,
    BlockPolicy,
    CallerRunsPolicy,
    PoolConfig,
    Reject,
    RejectionPolicy,
    RejectPolicy,
    RunInCaller,
    Wait,
    parse_policy,
)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"max_size": 0}, "max_size must be a positive integer, got 0"),
        ({"max_size": -3}, "max_size"),
        ({"max_size": 2.0}, "max_size"),
        ({"min_size": -1}, "min_size"),
        ({"min_size": 5, "max_size": 4}, "min_size"),
        ({"queue_size": 0}, "queue_size"),
        ({"size": 0}, "size"),
        ({"size": 9, "max_size": 8}, "size"),
        ({"size": 1, "min_size": 2, "max_size": 4}, "size"),
        ({"keep_alive": 0}, "keep_alive"),
        ({"keep_alive": "1s"}, "keep_alive"),
        ({"policy": "drop_oldest"}, "unknown rejection policy 'drop_oldest'"),
        ({"policy": 3}, "unknown rejection policy"),
        ({"policy": "block:soon"}, "block policy timeout"),
        ({"policy": "reject:1"}, "takes no argument"),
        ({"autoscale": {"interval": 1}}, "autoscale"),
    ],
)
def test_bad_pool_configs_name_the_bad_value(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        PoolConfig(**kw)  # type: ignore[arg-type]


def test_policies_parse_and_decide() -> None:
    assert parse_policy("block") == BlockPolicy()
    assert parse_policy("block:2.5") == BlockPolicy(2.5)
    assert parse_policy("Caller-Runs") == CallerRunsPolicy()
    assert parse_policy("reject") == RejectPolicy()
    custom = BlockPolicy(timedelta(seconds=3))
    assert parse_policy(custom) is custom
    assert custom.timeout == 3.0
    assert BlockPolicy(1.0).on_full("io", 5) == Wait(1.0)
    assert RejectPolicy().on_full("io", 5) == Reject("queue of pool io is full (5 queued)")
    assert CallerRunsPolicy().on_full("io", 5) == RunInCaller()
    for policy in (BlockPolicy(), RejectPolicy(), CallerRunsPolicy()):
        assert isinstance(policy, RejectionPolicy)
    with pytest.raises(ConfigurationError):
        BlockPolicy(-1)


def test_custom_policy_object_is_used() -> None:
    class Always:
        name = "always-reject"

        def on_full(self, pool: str, queued: int) -> Reject:
            return Reject(f"custom says no to {pool}")

    config = PoolConfig(policy=Always())
    assert config.rejection_policy.name == "always-reject"


def test_defaults_per_name_and_durations() -> None:
    assert DEFAULT_POOL_CONFIGS["market_data"].rejection_policy.name == "reject"
    assert DEFAULT_POOL_CONFIGS["strategy"].rejection_policy.name == "caller_runs"
    assert DEFAULT_POOL_CONFIGS["orders"].rejection_policy == BlockPolicy(5.0)
    assert DEFAULT_POOL_CONFIGS["io"].initial_size == 8
    config = PoolConfig(keep_alive=timedelta(minutes=2), max_size=4)
    assert config.keep_alive_seconds == 120.0
    assert config.initial_size == 4
    with pytest.raises(TypeError):
        DEFAULT_POOL_CONFIGS["io"] = PoolConfig()  # type: ignore[index]
    with pytest.raises(AttributeError):
        config.max_size = 3  # type: ignore[misc]
