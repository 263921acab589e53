"""A multiprocessing Pipe end, read from an asyncio loop without a thread."""

from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection

__all__ = ["PipeChannel", "EOF"]

EOF = ("eof", None)


class PipeChannel:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.queue: asyncio.Queue[tuple] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._open = True
        self._loop.add_reader(conn.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            while self._open and self.conn.poll():
                self.queue.put_nowait(self.conn.recv())
        except (EOFError, OSError):
            self.close()
            self.queue.put_nowait(EOF)

    def send(self, message: tuple) -> bool:
        try:
            self.conn.send(message)
            return True
        except (OSError, ValueError):
            return False

    async def recv(self) -> tuple:
        return await self.queue.get()

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self._loop.remove_reader(self.conn.fileno())
            except (OSError, ValueError):
                pass
