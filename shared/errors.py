"""Our own error hierarchy. Adapters translate foreign errors (SQLAlchemy, asyncpg,
aiokafka, httpx) into it, and retry decisions are made from it in one place: a
`TransientError` may succeed on retry, a `PermanentError` never will."""


class XerosyncError(Exception):
    """Base of every error this project raises on purpose."""


class TransientError(XerosyncError):
    """A retry may succeed: a dropped connection, a timeout, a failover, a 5xx."""


class PermanentError(XerosyncError):
    """Retrying the same input cannot succeed: the input or the request is wrong."""


class DatabaseUnavailable(TransientError):
    """The database could not be reached or dropped the connection."""


class DatabaseRejected(PermanentError):
    """The database refused the statement for what it contains (constraint, bad data)."""


class BrokerUnavailable(TransientError):
    """Kafka could not be reached or did not acknowledge in time."""
