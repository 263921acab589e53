from .client import StoreClient
from .service import StoreService
from .types import AcceptResult

__all__ = ["AcceptResult", "StoreService", "StoreClient"]
