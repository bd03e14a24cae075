"""Log configuration: every record, Autopack's and its libraries' (uvicorn's included), rendered
one way — a readable console line or one JSON object a line (``AUTOPACK_LOG_FORMAT``).

Autopack's code logs through the standard library (``logging.getLogger(__name__)``); structlog is
only the formatter (``ProcessorFormatter``), so no module has to change how it logs and
third-party records come out in the same format. What is bound with :func:`bound_log_context`
(``request_id`` in a request, ``run_id`` and ``phase_id`` in the executor) is added to every
record logged in that context, and secret values are redacted from every record.

Configuration happens in one function, :func:`configure_logging`, called by the CLI entry and
``autopack serve``, and by the app's start-up through :func:`ensure_logging` only when nothing
configured logging before (an embedding application, uvicorn's ``--log-config``, pytest). Never
at import time.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from autopack.executor.artifacts import redact, secret_values
from autopack.settings import Settings

LogFormat = Literal["console", "json"]

# Our handler on the root logger is found (and replaced) by this name, never by its type.
HANDLER_NAME = "autopack"
# uvicorn configures these itself (own handlers, no propagation); taken over, they go through
# the root logger and so through our formatter.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# The access log of uvicorn repeats the request line RequestIdMiddleware writes (which also has
# the request id, the route and the duration), so a taken-over uvicorn.access is quietened.
UVICORN_ACCESS = "uvicorn.access"

Restore = Callable[[], None]


class _Redactor:
    """Replaces secret values (and strings shaped like API keys) in every value of a record.
    Values that are not JSON scalars are made strings first, so that nothing reaches the
    output through a ``repr`` that redaction did not see."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = [secret for secret in secrets if secret]

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        return {key: self._clean(value) for key, value in event_dict.items()}

    def _clean(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {str(key): self._clean(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(item) for item in value]
        return redact(value if isinstance(value, str) else str(value), self.secrets)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when it was built: a
    command run in-process (tests, Rich's live display) swaps the stream, and a handler that
    kept the old one would write to a closed file."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self._stream if self._stream is not None else sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def _drop_formatter_leftovers(
    logger: WrappedLogger, method: str, event_dict: EventDict
) -> EventDict:
    # ``message`` and ``asctime`` are put on a record by any other handler's formatter that saw
    # it first; ExtraAdder would take them for extras (``extra`` may not use these names).
    # uvicorn adds ``color_message``, its message with terminal escape codes.
    for key in ("message", "asctime", "color_message"):
        event_dict.pop(key, None)
    return event_dict


def _shared_processors() -> list[Processor]:
    # Run for every record, in the thread (and context) that logged it: that is where the
    # context variables (request_id, run_id, phase_id) are read.
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_formatter_leftovers,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def build_formatter(
    log_format: LogFormat, secrets: Iterable[str] = (), *, colors: bool = False
) -> logging.Formatter:
    """The formatter of every record: ``json`` (one object a line, the message under
    ``message``) or ``console`` (aligned, readable)."""
    renderer: list[Processor]
    if log_format == "json":
        renderer = [
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(sort_keys=False),
        ]
    else:
        renderer = [
            structlog.dev.ConsoleRenderer(
                colors=colors,
                # A plain traceback: the rich one shows local variables, which may hold secrets.
                exception_formatter=structlog.dev.plain_traceback,
            )
        ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks become text before redaction, so a secret in an exception's message
            # is redacted like any other.
            structlog.processors.format_exc_info,
            _Redactor(secrets),
            *renderer,
        ],
    )


def configure_logging(
    settings: Settings, *, level: str | None = None, stream: TextIO | None = None
) -> Restore:
    """Send every record to standard error (or ``stream``) in ``settings.log_format`` at
    ``level`` (``settings.log_level`` unless given), uvicorn's included. Calling it again
    replaces the previous configuration. Returns a function that puts logging back as it was
    before this call."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved_uvicorn = {name: _logger_state(logging.getLogger(name)) for name in UVICORN_LOGGERS}

    target = stream if stream is not None else sys.stderr
    colors = settings.log_format == "console" and _is_terminal(target)
    handler = _StderrHandler(stream)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(
        build_formatter(settings.log_format, secret_values(settings), colors=colors)
    )
    for existing in list(root.handlers):
        if existing.get_name() == HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel((level or settings.log_level).upper())
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.WARNING if name == UVICORN_ACCESS else logging.NOTSET)

    def restore() -> None:
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        for name, state in saved_uvicorn.items():
            _restore_logger(logging.getLogger(name), state)

    return restore


def command_log_level(configured: str) -> str:
    """The level of a CLI command other than the server: warnings and errors only, unless
    debugging. A command's progress is its output; info records (migrations, the executor's
    steps, which its live view already shows) would only repeat it."""
    if configured == "debug":
        return configured
    return max(configured, "warning", key=lambda name: logging.getLevelName(name.upper()))


def logging_is_configured() -> bool:
    """True when the root logger has a handler: someone (us, an embedding application, uvicorn's
    ``--log-config``, pytest) decided where records go."""
    return bool(logging.getLogger().handlers)


def ensure_logging(settings: Settings) -> bool:
    """Configure logging unless something else did (the app's start-up under a plain
    ``uvicorn autopack.main:app``). True when it configured."""
    if logging_is_configured():
        return False
    configure_logging(settings)
    return True


@contextmanager
def bound_log_context(**values: str) -> Iterator[None]:
    """Add ``values`` to every record logged inside the block (in this thread or task, and in
    the threads and tasks it starts through anyio or asyncio); put back as they were after."""
    with structlog.contextvars.bound_contextvars(**values):
        yield


def log_context() -> dict[str, Any]:
    """What is bound for logs here and now."""
    return structlog.contextvars.get_contextvars()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_LoggerState = tuple[list[logging.Handler], bool, int]


def _logger_state(logger: logging.Logger) -> _LoggerState:
    return (list(logger.handlers), logger.propagate, logger.level)


def _restore_logger(logger: logging.Logger, state: _LoggerState) -> None:
    logger.handlers[:] = state[0]
    logger.propagate = state[1]
    logger.setLevel(state[2])
