"""Issue 9's scenarios, run by a client written from docs/protocol.md alone (client.py), in
test_outsider_*.py by area: sync, groups, messages, errors and limits.

Only the deployment fixture (`flare`, tests/e2e/conftest.py) is Flare's: it starts the
monolith (what `flarectl up` runs) or the split shape and gives the gateway URLs. The token
key is read from the `token.secret` file in the deployment's data directory, as §2 says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .client import Client, key_from_secret_file


@pytest.fixture
def app(flare, tmp_path: Path):
    """A new app's view of a deployment: gateway URLs, the token key from token.secret, clients."""
    secrets = sorted(tmp_path.rglob("token.secret"))
    assert secrets, f"no token.secret under {tmp_path}"
    return App(flare.gateway_urls, key_from_secret_file(secrets[0]))


class App:
    def __init__(self, urls: list[str], key: bytes) -> None:
        self.urls, self.key = urls, key
        self.clients: list[Client] = []
        self._gateway: dict[str, int] = {}

    def url(self, user: str) -> str:  # spread users over the gateways, so deliveries cross them
        return self.urls[self._gateway.setdefault(user, len(self._gateway)) % len(self.urls)]

    async def client(self, user: str, device: str = "phone", **kwargs) -> Client:
        c = Client(self.url(user), self.key, user, device, **kwargs)
        self.clients.append(c)
        await c.connect()
        return c

    async def close(self) -> None:
        for c in self.clients:
            await c.close()


@pytest.fixture
async def outsider(app):
    yield app
    await app.close()
