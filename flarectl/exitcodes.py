"""flarectl's exit codes: stable, documented in the README, used by CI scripts."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # the operation ran and failed (a check failed, a job failed)
    USAGE = 2  # bad arguments or options (Typer/Click's own code for usage errors)
    INVALID = 3  # input refused by validation (a document, a parameter)
    UNAVAILABLE = 4  # a server or backend could not be reached
    UNAUTHORIZED = 5  # no token, bad token, or the token's role may not do this
    CONFLICT = 6  # compare-and-swap lost (someone else changed it first)
    NOT_FOUND = 7
    THRESHOLD = 8  # a load test or check breached a threshold the caller set
    ABORTED = 9  # the user declined a confirmation
    LOCKED = 10  # another migration held the lock for longer than --lock-timeout
    REFUSED = 11  # refused as unsafe: a destructive migration without --allow-destructive, no undo file
    TIMEOUT = 12  # waited for instances (config apply --wait) and some never answered
    INTERRUPTED = 130
