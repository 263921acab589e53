"""`flarectl chat USER --to PEER`: a small interactive client for trying Flare by hand.

Type a line to send it. Commands: /recall MSG_ID, /delete MSG_ID, /read, /sync, /quit
(a line starting with // sends the rest, starting with /). Incoming messages are acked
like a real client does (docs/protocol.md), so the sender sees DELIVERED; heartbeats go
out at the interval the server's hello advertises, so an idle chat is not cut off.
stdin is read by a daemon thread, so Ctrl-C ends the chat at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import uuid
from pathlib import Path

import typer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI

from flarectl.console import fail, out
from flarectl.exitcodes import ExitCode
from services.common import codec
from services.common.auth import issue_token
from services.common.model import c2c_conversation_id, group_conversation_id, validate_name
from services.common.paths import DEFAULT_DATA_DIR, read_secret, token_secret_path

__all__ = ["COMMANDS", "chat"]

_COMMANDS = ("/recall", "/delete", "/read", "/sync", "/quit")
_RECALLED = 1  # the `flags` bit of a recalled message


def _describe_message(message: dict) -> str:
    where = f"[dim]({message['conversation_id']}, {message['msg_id']})[/]"
    if message.get("flags", 0) & _RECALLED:
        return f"[bold]{message['sender_id']}[/] #{message['seq']} {where}: [yellow](recalled)[/]"
    return f"[bold]{message['sender_id']}[/] #{message['seq']} {where}: {message['body']}"


def _describe(frame: dict) -> str | None:
    kind = frame.get("type")
    if kind == "message":
        return _describe_message(frame)
    if kind == "ack":
        if frame["level"] == "read":
            return f"[dim]  ✓ read up to #{frame['seq']} by {frame.get('user_id', '')}[/]"
        seq = f" #{frame['seq']}" if "seq" in frame else ""
        return f"[dim]  ✓ {frame['level']}{seq} {frame.get('msg_id', '')} {frame.get('user_id', '')}[/]"
    if kind == "event":
        if frame["sync_type"] == "read":
            return f"[dim]  {frame['actor_id']} read up to #{frame['seq']}[/]"
        if frame["sync_type"] == "member":
            payload = frame.get("payload", {})
            role = f" ({payload['role']})" if "role" in payload else ""
            return (f"[cyan]  {frame['conversation_id']}: {payload.get('change')} "
                    f"{', '.join(payload.get('user_ids', []))}{role} by {frame['actor_id']}[/]")
        return f"[yellow]  {frame['sync_type']} of #{frame['seq']} by {frame['actor_id']}[/]"
    if kind == "error":
        return f"[red]  error {frame['code']}: {frame['message']}[/]"
    if kind == "hello":
        return f"[green]connected as {frame['user_id']}/{frame['device_id']}[/]"
    return None


def _read_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """A daemon thread: a pending readline never keeps the process from exiting."""
    def forever() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: the chat is over
            for line in sys.stdin:  # a full queue blocks this thread, not the chat
                asyncio.run_coroutine_threadsafe(lines.put(line), loop).result()
            asyncio.run_coroutine_threadsafe(lines.put(None), loop).result()

    threading.Thread(target=forever, name="chat-stdin", daemon=True).start()


def _command_frame(text: str, conversation_id: str, last_seq: dict[str, int]) -> dict | None:
    """The frame a typed line becomes; None (and a hint printed) for an unknown /command."""
    if text.startswith("//"):
        text = text[1:]
    elif text.startswith("/"):
        command, _, arg = text.partition(" ")
        if command in ("/recall", "/delete"):
            return {"type": command[1:], "msg_id": arg.strip()}
        if command == "/sync":
            return {"type": "sync"}
        if command == "/read":
            return {"type": "read", "conversation_id": conversation_id, "seq": last_seq.get(conversation_id, 1)}
        out.print(f"[red]unknown command {command}; commands: {', '.join(_COMMANDS)} "
                  "(start a line with // to send text that begins with /)[/]", highlight=False)
        return None
    return {"type": "send", "client_msg_id": uuid.uuid4().hex, "conversation_id": conversation_id, "body": text}


async def _on_sync_result(ws: ClientConnection, frame: dict, last_seq: dict[str, int]) -> None:
    more = False
    for conversation_id, page in frame["conversations"].items():
        for message in page["messages"]:
            out.print(_describe_message(message), highlight=False)
            last_seq[conversation_id] = max(last_seq.get(conversation_id, 0), message["seq"])
        for event in page["events"]:
            line = _describe({"type": "event", **event})
            if line:
                out.print(line, highlight=False)
        ack: dict = {"type": "ack", "conversation_id": conversation_id}  # the page's `next`
        for field in ("seq", "event_id"):
            if page["next"][field] > page["after"][field]:
                ack[field] = page["next"][field]
        if len(ack) > 2:
            await ws.send(codec.dumps(ack), text=True)
        more = more or page["has_more"]
    if more:
        await ws.send(codec.dumps({"type": "sync"}), text=True)


async def _session(url: str, conversation_id: str, quiet_acks: bool) -> None:
    last_seq: dict[str, int] = {}
    async with connect(url, max_size=None) as ws:
        hello = codec.loads(await ws.recv())
        out.print(_describe(hello) or f"[red]unexpected first frame: {hello}[/]", highlight=False)
        if hello.get("type") != "hello":
            return
        interval = float(hello.get("heartbeat_interval_s", 30))

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(interval)
                await ws.send(codec.dumps({"type": "heartbeat"}), text=True)

        async def receive() -> None:
            async for raw in ws:
                frame = codec.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    last_seq[frame["conversation_id"]] = max(last_seq.get(frame["conversation_id"], 0), frame["seq"])
                    await ws.send(codec.dumps({"type": "ack", "conversation_id": frame["conversation_id"],
                                               "seq": frame["seq"]}), text=True)
                if kind == "sync_result":
                    await _on_sync_result(ws, frame, last_seq)
                    continue
                if kind in ("heartbeat_ack",) or (quiet_acks and kind == "ack"):
                    continue
                line = _describe(frame)
                if line:
                    out.print(line, highlight=False)

        lines: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1000)
        _read_stdin(asyncio.get_running_loop(), lines)
        tasks = [asyncio.create_task(receive()), asyncio.create_task(heartbeat())]
        try:
            await ws.send(codec.dumps({"type": "sync"}), text=True)
            while not tasks[0].done():
                getter = asyncio.ensure_future(lines.get())
                await asyncio.wait([getter, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                line = getter.result()
                if line is None or line.strip() == "/quit":
                    break
                text = line.rstrip("\n")
                if not text:
                    continue
                frame = _command_frame(text, conversation_id, last_seq)
                if frame is not None:
                    await ws.send(codec.dumps(frame), text=True)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task
        if tasks[0].done() and not tasks[0].cancelled():
            out.print(f"[red]the server closed the connection ({ws.close_code} {ws.close_reason or ''})[/]",
                      highlight=False)


def chat(
    user: str = typer.Argument(..., help="Who you are."),
    to: str | None = typer.Option(None, "--to", help="Chat 1:1 with this user."),
    group: str | None = typer.Option(None, "--group", help="Chat in this group (create it with members first)."),
    members: str = typer.Option("", "--members", help="With --group: comma-separated members to create it with."),
    device: str = typer.Option("cli", "--device"),
    gateway: str = typer.Option("ws://127.0.0.1:8700/ws", "--gateway"),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Where the token secret is."),
    quiet_acks: bool = typer.Option(False, "--quiet-acks", help="Hide ack lines."),
) -> None:
    """Chat interactively through a running gateway (`flarectl up`)."""
    try:
        validate_name(user, "user")
        if (to is None) == (group is None):
            raise ValueError("give exactly one of --to or --group")
        conversation_id = c2c_conversation_id(user, validate_name(to, "--to")) if to else \
            group_conversation_id(validate_name(group, "--group"))
    except ValueError as exc:
        fail(str(exc), ExitCode.USAGE)
    secret = read_secret(data_dir)
    if secret is None:
        fail(f"no token secret at {token_secret_path(data_dir)}", ExitCode.NOT_FOUND, hint="start `flarectl up` first")
    token = issue_token(secret, user)
    url = f"{gateway}?token={token}&device_id={device}&device_type=desktop"

    async def run() -> None:
        if group and members:
            async with connect(url) as ws:
                await ws.recv()  # hello
                await ws.send(codec.dumps({"type": "group_create", "id": "create", "group_id": group,
                                           "members": [m for m in members.split(",") if m]}), text=True)
                async for raw in ws:  # wait for the answer, so the chat below sees the group
                    answer = codec.loads(raw)
                    if answer.get("ref") == "create":
                        out.print(_describe(answer) or f"[green]group {group} created[/]", highlight=False)
                        break
        await _session(url, conversation_id, quiet_acks)

    try:
        asyncio.run(run())
    except (OSError, InvalidURI) as exc:
        fail(f"cannot reach the gateway at {gateway}: {exc}", ExitCode.UNAVAILABLE)
    except ConnectionClosed as exc:
        fail(f"connection closed: {exc}", ExitCode.FAILURE)
    except KeyboardInterrupt:
        out.print("[dim]bye[/]", highlight=False)
        raise typer.Exit(ExitCode.INTERRUPTED) from None


COMMANDS = {"chat": chat}
