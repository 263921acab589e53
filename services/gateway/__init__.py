from .client import GatewayClient, GatewayDirectory
from .local import InProcessGatewayClient, LocalGateways
from .service import GatewayService

__all__ = ["GatewayService", "GatewayClient", "GatewayDirectory", "InProcessGatewayClient", "LocalGateways"]
