"""Per-room access control: allow/deny lists as in SylkServer's conference.ini.

List items are `all` (also `any`, `*`), `none`, a domain (`example.com`) or `user@domain`.
`access_policy` is the order of evaluation, as in Apache: with `allow,deny` a caller must match
`allow` and not `deny`; with `deny,allow` a caller is refused only when it matches `deny` and not
`allow`.
"""

from __future__ import annotations

from sylkbox.config import RoomPolicy

__all__ = ["is_allowed"]

_ALL = frozenset({"all", "any", "*"})


def _matches(items: tuple[str, ...], user: str | None, host: str) -> bool:
    host = host.lower()
    identity = f"{user}@{host}".lower() if user else None
    for raw in items:
        item = raw.strip().lower()
        if item in _ALL:
            return True
        if item == "none":
            continue
        if "@" in item:
            if item == identity:
                return True
        elif item == host:
            return True
    return False


def is_allowed(policy: RoomPolicy, user: str | None, host: str) -> bool:
    """Whether the caller `user@host` may join a room with this policy."""
    allowed = _matches(policy.allow, user, host)
    denied = _matches(policy.deny, user, host)
    if policy.access_policy == "allow,deny":
        return allowed and not denied
    return allowed or not denied
