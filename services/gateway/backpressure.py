"""A client that does not read stops being read.

websockets answers every ping with a pong and every close with a close, writing straight to
the transport: none of that goes through a ClientConnection's bounded queue. A client that
sent pings and never read would have the server buffer the pongs without end (an outsider
probe grew a gateway worker by ~200 MiB per million pings). asyncio tells the protocol when
the transport's write buffer passes its high-water mark (pause_writing) and when it drained
(resume_writing); the connection stops reading the client in between. What the server holds
for it is then that mark plus one read's worth of answers, and the client's own socket
fills up instead. Frames Flare pushes meanwhile still go to the ClientConnection's queue,
whose cap closes the connection with 4008 (services/gateway/connection.py).
"""

from __future__ import annotations

import contextlib

from websockets.asyncio.server import ServerConnection

__all__ = ["BackpressuredConnection"]


class BackpressuredConnection(ServerConnection):
    def pause_writing(self) -> None:
        super().pause_writing()
        with contextlib.suppress(AttributeError, RuntimeError):  # closing, or not connected yet
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        with contextlib.suppress(AttributeError, RuntimeError):
            self.transport.resume_reading()
