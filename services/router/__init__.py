from .client import InProcessRouterClient, RouterClient
from .service import RouterService, SendResult

__all__ = ["RouterService", "SendResult", "RouterClient", "InProcessRouterClient"]
