"""What one connection has sent per conversation, so an ack can be turned into a held range.

A device acks a seq (or an event id); the cursor may only advance over what the device
really holds (docs/protocol.md, "Cursors"). The connection is a FIFO: when the device acks
seq N, it has received the first frame that carried N and every frame queued before it.
So per conversation we keep the frames in queue order, each as a range: a run of live
messages (after, to] (live seqs only grow on a connection) or a sync page, which covers
(after, next] for seqs and for event ids at once. An ack confirms the earliest frame that
carries it plus everything before; those ranges go to message-sync, which moves the
stored cursor only over ranges that start where it already is.

Matching the earliest frame is always safe: a device that skips an ack (it already had
the message) only confirms less than it has, which costs a resend, never a message.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["HeldFrames", "HeldRanges"]

_MAX_FRAMES = 256  # per conversation; the oldest are forgotten (only a resend is lost)
_MAX_CONVERSATIONS = 4096  # per connection


@dataclass(slots=True)
class _Frame:
    after_seq: int
    to_seq: int
    after_event: int = 0
    to_event: int = 0
    page: bool = False  # a sync page is received whole; a live run only up to the acked seq


@dataclass(slots=True)
class HeldRanges:
    seqs: list[tuple[int, int]]  # (after, to] pairs, in queue order
    events: list[tuple[int, int]]


class HeldFrames:
    __slots__ = ("_frames",)

    def __init__(self) -> None:
        self._frames: OrderedDict[str, list[_Frame]] = OrderedDict()

    def _list(self, conversation_id: str) -> list[_Frame]:
        frames = self._frames.get(conversation_id)
        if frames is None:
            frames = self._frames[conversation_id] = []
            if len(self._frames) > _MAX_CONVERSATIONS:
                self._frames.popitem(last=False)
        return frames

    def live(self, conversation_id: str, seq: int) -> None:
        frames = self._list(conversation_id)
        last = frames[-1] if frames else None
        if last is not None and not last.page and last.to_seq == seq - 1:
            last.to_seq = seq
            return
        frames.append(_Frame(seq - 1, seq))
        del frames[:-_MAX_FRAMES]

    def page(self, conversation_id: str, *, after_seq: int, next_seq: int, after_event: int, next_event: int) -> None:
        frames = self._list(conversation_id)
        frames.append(_Frame(after_seq, next_seq, after_event, next_event, page=True))
        del frames[:-_MAX_FRAMES]

    def ack(self, conversation_id: str, *, seq: int = 0, event_id: int = 0) -> HeldRanges:
        """The ranges an ack of `seq` / `event_id` proves held (removed from what is tracked).
        An ack of something this connection never sent proves only that one seq / event."""
        held = HeldRanges([], [])
        frames = self._frames.get(conversation_id, [])
        for wanted, is_seq in ((seq, True), (event_id, False)):
            if wanted <= 0:
                continue
            index = next((i for i, f in enumerate(frames) if _carries(f, wanted, is_seq)), None)
            if index is None:
                (held.seqs if is_seq else held.events).append((wanted - 1, wanted))
                continue
            for frame in frames[:index]:
                _confirm(held, frame)
            matched = frames[index]
            if matched.page or not is_seq or matched.to_seq == wanted:
                _confirm(held, matched)
                del frames[:index + 1]
            else:  # a live run: only up to the acked seq
                held.seqs.append((matched.after_seq, wanted))
                matched.after_seq = wanted
                del frames[:index]
        return held


def _carries(frame: _Frame, wanted: int, is_seq: bool) -> bool:
    if is_seq:
        return frame.after_seq < wanted <= frame.to_seq
    return frame.page and frame.after_event < wanted <= frame.to_event


def _confirm(held: HeldRanges, frame: _Frame) -> None:
    if frame.to_seq > frame.after_seq:
        held.seqs.append((frame.after_seq, frame.to_seq))
    if frame.page and frame.to_event > frame.after_event:
        held.events.append((frame.after_event, frame.to_event))
