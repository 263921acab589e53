"""aiokafka exceptions -> Flare errors, at the adapter edge."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka import errors as kafka_errors

from services.common.errors import BackendError, BackendUnavailable, Conflict, FlareError, InvalidInput, NotFound

__all__ = ["translated"]

_UNAVAILABLE = (
    kafka_errors.KafkaConnectionError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.RequestTimedOutError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.NotLeaderForPartitionError,
    kafka_errors.LeaderNotAvailableError,
    kafka_errors.NotEnoughReplicasError,
    kafka_errors.NotEnoughReplicasAfterAppendError,
    kafka_errors.CoordinatorNotAvailableError,
    kafka_errors.NotCoordinatorError,
    kafka_errors.CoordinatorLoadInProgressError,
    kafka_errors.NoBrokersAvailable,
)


@contextmanager
def translated(what: str, **details: object) -> Iterator[None]:
    try:
        yield
    except FlareError:
        raise
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except kafka_errors.UnknownTopicOrPartitionError as exc:
        raise NotFound(f"{what}: unknown topic or partition", **details) from exc
    except (kafka_errors.InvalidTopicError, kafka_errors.InvalidPartitionsError,
            kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordTooLargeError) as exc:
        raise InvalidInput(f"{what}: {exc}", **details) from exc
    except (kafka_errors.CommitFailedError, kafka_errors.IllegalStateError,
            kafka_errors.RebalanceInProgressError) as exc:
        raise Conflict(f"{what}: {exc}", **details) from exc
    except _UNAVAILABLE as exc:
        raise BackendUnavailable(f"{what}: Kafka unavailable: {exc}", **details) from exc
    except (kafka_errors.KafkaError, OSError) as exc:
        raise BackendError(f"{what}: {exc}", **details) from exc
