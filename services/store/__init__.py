from .client import InProcessStoreClient, StoreClient
from .service import AcceptResult, StoreService

__all__ = ["AcceptResult", "StoreService", "StoreClient", "InProcessStoreClient"]
