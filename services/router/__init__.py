from .client import RouterClient
from .service import RouterService
from .types import SendResult

__all__ = ["RouterService", "SendResult", "RouterClient"]
