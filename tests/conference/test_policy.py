"""Tests for sylkbox.conference.policy: allow/deny lists as in SylkServer's conference.ini."""

from __future__ import annotations

import pytest

from sylkbox.conference.policy import is_allowed
from sylkbox.config import ConferenceConfig, RoomPolicy


def policy(
    order: str = "allow,deny", allow: tuple[str, ...] = ("all",), deny: tuple[str, ...] = ()
) -> RoomPolicy:
    return RoomPolicy(access_policy=order, allow=allow, deny=deny)


def test_default_policy_allows_everyone() -> None:
    assert is_allowed(RoomPolicy(), "alice", "example.com")
    assert is_allowed(RoomPolicy(), None, "192.0.2.20")


@pytest.mark.parametrize("word", ["all", "any", "*", "ALL"])
def test_all_synonyms(word: str) -> None:
    assert is_allowed(policy(allow=(word,)), "alice", "example.com")
    assert not is_allowed(policy(allow=("all",), deny=(word,)), "alice", "example.com")


def test_allow_deny_needs_allow_and_not_deny() -> None:
    p = policy("allow,deny", allow=("example.com",), deny=("mallory@example.com",))
    assert is_allowed(p, "alice", "example.com")
    assert is_allowed(p, "Alice", "EXAMPLE.com")
    assert not is_allowed(p, "mallory", "example.com")
    assert not is_allowed(p, "bob", "example.org")


def test_allow_deny_with_none_allows_nobody() -> None:
    assert not is_allowed(policy("allow,deny", allow=("none",)), "alice", "example.com")


def test_deny_allow_refuses_only_denied_and_not_allowed() -> None:
    p = policy("deny,allow", allow=("boss@example.org",), deny=("example.org",))
    assert is_allowed(p, "alice", "example.com")
    assert is_allowed(p, "boss", "example.org")
    assert not is_allowed(p, "intern", "example.org")


def test_deny_allow_deny_all() -> None:
    p = policy("deny,allow", allow=("example.com",), deny=("all",))
    assert is_allowed(p, "alice", "example.com")
    assert not is_allowed(p, "alice", "example.org")


def test_user_item_does_not_match_other_user_or_no_user() -> None:
    p = policy(allow=("alice@example.com",))
    assert is_allowed(p, "alice", "example.com")
    assert not is_allowed(p, "bob", "example.com")
    assert not is_allowed(p, None, "example.com")


def test_domain_item_matches_ip_hosts() -> None:
    p = policy(allow=("192.0.2.20",))
    assert is_allowed(p, "alice", "192.0.2.20")
    assert not is_allowed(p, "alice", "192.0.2.21")


def test_items_are_trimmed() -> None:
    assert is_allowed(policy(allow=(" example.com ",)), "a", "example.com")


def test_per_room_policy_overrides_defaults() -> None:
    strict = RoomPolicy(allow=("example.com",), max_participants=3)
    config = ConferenceConfig(rooms={"board@sylkbox.local": strict})
    assert config.policy_for("Board@sylkbox.local") is strict
    assert config.policy_for("other@sylkbox.local") == RoomPolicy()
