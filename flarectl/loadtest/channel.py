"""A multiprocessing Pipe end, usable from an asyncio loop.

A reader thread does the blocking `recv()` and hands each message to the loop. (Watching
the fd with `loop.add_reader` is not safe: uvloop switches the fd to non-blocking, and a
large pickled result then fails half-written with EAGAIN.)
"""

from __future__ import annotations

import asyncio
import threading
from multiprocessing.connection import Connection

__all__ = ["PipeChannel", "EOF"]

EOF = ("eof", None)


class PipeChannel:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.queue: asyncio.Queue[tuple] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_forever, name="loadtest-pipe", daemon=True)
        self._reader.start()

    def _read_forever(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError, ValueError):
                message = EOF
            try:
                self._loop.call_soon_threadsafe(self.queue.put_nowait, message)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                return
            if message == EOF:
                return

    def send(self, message: tuple) -> bool:
        try:
            with self._send_lock:
                self.conn.send(message)
            return True
        except (OSError, ValueError):
            return False

    async def recv(self) -> tuple:
        return await self.queue.get()

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass
