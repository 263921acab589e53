"""`flarectl chat USER --to PEER`: a small interactive client for trying Flare by hand.

Type a line to send it. Commands: /recall MSG_ID, /delete MSG_ID, /read, /sync, /quit.
Incoming messages are acked like a real client does, so the sender sees DELIVERED.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import typer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidURI

from flarectl.console import fail, out
from flarectl.exitcodes import ExitCode
from services.common import codec
from services.common.auth import issue_token
from services.common.model import c2c_conversation_id, group_conversation_id, validate_name
from services.common.paths import DEFAULT_DATA_DIR, read_secret, token_secret_path

__all__ = ["COMMANDS", "chat"]


def _describe(frame: dict) -> str | None:
    kind = frame.get("type")
    if kind == "message":
        return f"[bold]{frame['sender_id']}[/] #{frame['seq']} [dim]({frame['conversation_id']}, {frame['msg_id']})[/]: {frame['body']}"
    if kind == "ack":
        return f"[dim]  ✓ {frame['level']} {frame.get('msg_id', '')} {frame.get('user_id', '')}[/]"
    if kind == "event":
        return f"[yellow]  {frame['sync_type']} of #{frame['seq']} by {frame['actor_id']}[/]"
    if kind == "error":
        return f"[red]  error {frame['code']}: {frame['message']}[/]"
    if kind == "hello":
        return f"[green]connected as {frame['user_id']}/{frame['device_id']}[/]"
    if kind == "sync_result":
        total = sum(len(c["messages"]) for c in frame["conversations"].values())
        return f"[dim]  synced {total} messages[/]"
    return None


async def _session(url: str, conversation_id: str, quiet_acks: bool) -> None:
    last_seq: dict[str, int] = {}
    async with connect(url, max_size=None) as ws:
        async def receive() -> None:
            async for raw in ws:
                frame = codec.loads(raw)
                if frame.get("type") == "message":
                    last_seq[frame["conversation_id"]] = frame["seq"]
                    await ws.send(codec.dumps({"type": "ack", "conversation_id": frame["conversation_id"],
                                               "seq": frame["seq"]}), text=True)
                if frame.get("type") == "sync_result":
                    for conv, data in frame["conversations"].items():
                        for message in data["messages"]:
                            out.print(_describe({"type": "message", **message}), highlight=False)
                            last_seq[conv] = message["seq"]
                        if data["messages"]:
                            await ws.send(codec.dumps({"type": "ack", "conversation_id": conv,
                                                       "seq": data["messages"][-1]["seq"]}), text=True)
                line = _describe(frame)
                if line and not (quiet_acks and frame.get("type") == "ack"):
                    out.print(line, highlight=False)

        receiver = asyncio.create_task(receive())
        await ws.send(codec.dumps({"type": "sync"}), text=True)
        loop = asyncio.get_running_loop()
        while not receiver.done():
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() == "/quit":
                break
            text = line.rstrip("\n")
            if not text:
                continue
            command, _, arg = text.partition(" ")
            if command in ("/recall", "/delete"):
                frame = {"type": command[1:], "msg_id": arg.strip()}
            elif command == "/sync":
                frame = {"type": "sync"}
            elif command == "/read":
                frame = {"type": "read", "conversation_id": conversation_id, "seq": last_seq.get(conversation_id, 1)}
            else:
                frame = {"type": "send", "client_msg_id": uuid.uuid4().hex, "conversation_id": conversation_id,
                         "body": text}
            await ws.send(codec.dumps(frame), text=True)
        receiver.cancel()


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
                await ws.send(codec.dumps({"type": "group_create", "group_id": group,
                                           "members": [m for m in members.split(",") if m]}), text=True)
        await _session(url, conversation_id, quiet_acks)

    try:
        asyncio.run(run())
    except (OSError, InvalidURI) as exc:
        fail(f"cannot reach the gateway at {gateway}: {exc}", ExitCode.UNAVAILABLE)
    except ConnectionClosed as exc:
        fail(f"connection closed: {exc}", ExitCode.FAILURE)
    except KeyboardInterrupt:
        pass


COMMANDS = {"chat": chat}
