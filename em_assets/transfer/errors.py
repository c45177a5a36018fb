"""Transfer failures, each carrying what a user needs to act: the URL, the status, the attempts."""

from __future__ import annotations


class TransferError(RuntimeError):
    """A transfer failed; nothing was written at its final path."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        attempts: int = 1,
    ) -> None:
        status_text = f"last status {status}" if status is not None else "no HTTP status"
        super().__init__(f"{message} [{url}; {status_text}; {attempts} attempt(s)]")
        self.url = url
        self.status = status
        self.attempts = attempts


class PermanentHTTPError(TransferError):
    """The server refused in a way that retrying cannot fix (401, 403, 404, other 4xx)."""


class RetriesExhaustedError(TransferError):
    """Transient failures continued past the retry budget."""


class UnexpectedContentError(TransferError):
    """The server answered with something other than what was asked for (e.g. an HTML page)."""


class IntegrityError(TransferError):
    """The received bytes do not match the expected size or checksum."""


class IncompleteBodyError(IOError):
    """Fewer bytes arrived than the server announced: transient, the transfer resumes."""
