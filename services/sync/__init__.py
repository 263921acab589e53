from .client import SyncClient
from .service import SyncService
from .types import ConversationNews, SyncResult

__all__ = ["ConversationNews", "SyncService", "SyncClient", "SyncResult"]
