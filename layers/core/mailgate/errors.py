"""One root exception, split by what the caller must do about it.

A *permanent* failure will fail again the same way (a malformed request, a 5xx reply, a missing
configuration item): it is recorded and reported, never retried. A *transient* failure may pass
(a 4xx reply, throttling, a timeout): the caller retries it, for SQS by leaving the record in the
queue (partial batch failure).
"""


class MailgateError(Exception):
    """Root of every error this package raises on purpose."""

    #: a short machine-readable code, e.g. "auth-failed"; shown in events and CLI --json output
    code = "error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code


class PermanentError(MailgateError):
    """Retrying will not help; record the failure with its reason."""

    code = "permanent"


class TransientError(MailgateError):
    """Retrying later may succeed."""

    code = "transient"


class ConfigError(PermanentError):
    """A setting or configuration item is missing or wrong; the message says which and how to fix it."""

    code = "config"


class NotFound(PermanentError):
    code = "not-found"


class InvalidInput(PermanentError, ValueError):
    """A name someone typed (domain, local part, address, host) is not valid; the message says why
    in one line. The `mailgate` command reports it as bad usage (exit status 2)."""

    code = "invalid-input"
