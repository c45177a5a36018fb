"""`Logger`: what the library parts need of a log (Dagster's `context.log`, a `logging.Logger`,
or a test's recorder). Its own module, below every package, so that storage, transfer, crops
and images can all log without importing one another."""

from typing import Protocol


class Logger(Protocol):
    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...
