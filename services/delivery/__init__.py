"""One home for delivery: fan-out, membership, pending DELIVERED, ack batching, key names.

    seam.py        what the core hands a gateway (Push records) and the GatewayClient Protocol
    client.py      DeliveryClient: how the store hands persisted batches on
    service.py     Delivery: persisted batch -> member devices; device acks -> DELIVERED
    fanout.py      frames to users' devices through their gateways, batched per gateway
    membership.py  who is in a conversation (cached reads; c2c writes)
    groups.py      group roles, join policy, history rule, membership-change events
    acks.py        device acks batched per event-loop tick (the gateway's side)
    keys.py        cache key names shared across services (L0, dedup, routes, DELIVERED)

It imports only the kernel (services.common) and the ports (services.backends); the
services (store, router, sync, gateway, session) import it.
"""

from .acks import DeliveredAcks
from .client import DeliveryClient
from .fanout import Fanout, Routes
from .groups import GroupInfo, Groups
from .membership import Membership
from .seam import GatewayClient, GatewayDirectory, Push
from .service import Delivery

__all__ = [
    "DeliveredAcks",
    "Delivery",
    "DeliveryClient",
    "Fanout",
    "GatewayClient",
    "GatewayDirectory",
    "GroupInfo",
    "Groups",
    "Membership",
    "Push",
    "Routes",
]
