"""Cache key names that more than one service reads or writes, in one place.

The store writes L0 and the dedup hints, sync reads L0 and drops recalled messages from
it, the session service owns the routes that fan-out reads through it, and routers in the
split deployment share the DELIVERED-once markers. A key renamed in one of them and not
the others would fail silently (a cache miss is not an error), hence one module.
Ids never contain ':' (services.common.model.validate_name), so the names cannot collide.
"""

from __future__ import annotations

__all__ = ["dedup_key", "delivered_key", "recent_key", "route_key"]


def recent_key(conversation_id: str, seq: int) -> str:
    """L0, the recent-message cache: one stored message (wire JSON), TTL store.l0_ttl_s."""
    return f"msg:{conversation_id}:{seq}"


def dedup_key(sender_id: str, client_msg_id: str) -> str:
    """The accept path's dedup hint: client_msg_id -> msg_id once the log has the message."""
    return f"dedup:{sender_id}:{client_msg_id}"


def route_key(user_id: str) -> str:
    """The session service's routes of one user: hash device_id -> JSON Session."""
    return f"route:{user_id}"


def delivered_key(conversation_id: str, seq: int, user_id: str) -> str:
    """Set once when `user_id` first acks (conversation, seq): DELIVERED goes out once per
    recipient even when the ack reaches another router instance than the delivering one."""
    return f"delivered:{conversation_id}:{seq}:{user_id}"
