from .client import InProcessSyncClient, SyncClient
from .service import SyncService

__all__ = ["SyncService", "SyncClient", "InProcessSyncClient"]
