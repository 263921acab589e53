from .client import GatewayClient, GatewayDirectory
from .service import GatewayService, InProcessGatewayClient

__all__ = ["GatewayService", "GatewayClient", "GatewayDirectory", "InProcessGatewayClient"]
