"""The engine's loggers answer to arq's logger names too, so logging set up for arq keeps working after a move.

runner logs under ``runner.worker``, ``runner.jobs``, ``runner.connections``, ``runner.cron`` and ``runner.utils``.
Each of these is tied to its arq name (``arq.worker``, ``arq.jobs``, …):

* level: the first level set on the runner chain (``runner.worker``, then ``runner``) decides; when none is set
  there, the first level set on the arq chain (``arq.worker``, then ``arq``); else the root logger's;
* handlers: a record goes to the runner chain's handlers and the root's as usual, and also to the handlers of the
  arq chain (not the root a second time), so ``dictConfig({'loggers': {'arq': {...}}})`` sees runner's records;
* disabled: a runner logger counts as disabled only if its arq twin is disabled too, so a ``dictConfig`` that
  names ``arq`` (and disables every logger it does not name) does not silence runner.

Configure one of the two names, not both with handlers, or each record is written twice. Python's last-resort
output (warnings to stderr when nothing is configured at all) is kept.
"""

from __future__ import annotations

import logging
from typing import Any

ALIASED = ("worker", "jobs", "connections", "cron", "utils")


def twin_name(name: str) -> str:
    """The arq logger name of a runner logger: ``runner.worker`` -> ``arq.worker``."""
    return "arq" + name[len("runner") :]


def _chain(logger: logging.Logger) -> list[logging.Logger]:
    """``logger`` and its ancestors below the root."""
    out = []
    current: logging.Logger | None = logger
    while current is not None and current is not logging.root:
        out.append(current)
        current = current.parent
    return out


class _TwinLogger(logging.Logger):
    """A runner logger that also honours the configuration of its arq twin (see the module docstring)."""

    @property
    def twin(self) -> logging.Logger:
        twin: logging.Logger | None = self.__dict__.get("_twin")
        if twin is None:
            twin = self.__dict__["_twin"] = logging.getLogger(twin_name(self.name))
        return twin

    @property
    def disabled(self) -> bool:
        return bool(self.__dict__.get("_own_disabled", False)) and self.twin.disabled

    @disabled.setter
    def disabled(self, value: bool) -> None:
        self.__dict__["_own_disabled"] = value

    def getEffectiveLevel(self) -> int:
        for chain in (_chain(self), _chain(self.twin)):
            for logger in chain:
                if logger.level:
                    return logger.level
        return logging.root.level

    def callHandlers(self, record: logging.LogRecord) -> None:
        # dictConfig clears the handlers of the children of a logger it configures ("runner"): put the forwarder
        # back, so configuring runner's logger never cuts the arq twin off
        forwarder: _TwinForwarder | None = self.__dict__.get("_forwarder")
        if forwarder is None:
            forwarder = self.__dict__["_forwarder"] = _TwinForwarder(self)
        if forwarder not in self.handlers:
            self.addHandler(forwarder)
        super().callHandlers(record)


class _TwinForwarder(logging.Handler):
    """Attached to each runner logger (again whenever it goes missing): hands its records to the arq twin's
    handlers."""

    def __init__(self, owner: logging.Logger) -> None:
        super().__init__()
        self.owner = owner

    def handle(self, record: logging.LogRecord) -> bool:
        # no lock and no formatting here: each handler it passes the record to does its own
        found = 0
        for logger in _chain(logging.getLogger(twin_name(self.owner.name))):
            for handler in logger.handlers:
                found += 1
                if record.levelno >= handler.level:
                    handler.handle(record)
            if not logger.propagate:
                break
        if not found and not self._others_handle(record):
            # this handler hides "no handlers at all" from logging, so it does what logging then does
            last = logging.lastResort
            if last is not None and record.levelno >= last.level:
                last.handle(record)
        return True

    def _others_handle(self, record: logging.LogRecord) -> bool:
        current: logging.Logger | None = self.owner
        while current is not None:
            if any(handler is not self for handler in current.handlers):
                return True
            if not current.propagate:
                return False
            current = current.parent
        return False

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does the work
        pass


def install_arq_twins() -> None:
    """Make ``runner.<name>`` answer to ``arq.<name>`` for each name in ``ALIASED``; safe to call again.

    A runner logger that already exists (someone configured it before importing runner) is converted in place,
    so the object every module holds stays the same one.
    """
    for suffix in ALIASED:
        name = f"runner.{suffix}"
        logger = logging.getLogger(name)
        logging.getLogger(twin_name(name))  # created now, so a later dictConfig naming "arq" keeps it enabled
        if not isinstance(logger, _TwinLogger):
            own_disabled = logger.__dict__.pop("disabled", False)
            logger.__class__ = _TwinLogger
            logger.disabled = own_disabled
    logging.Logger.manager._clear_cache()  # type: ignore[attr-defined]  # levels may read differently now


def default_log_config(verbose: bool) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict that writes runner's log lines to stderr as ``HH:MM:SS: message``.

    arq's function of the same name, for runner's logger: DEBUG when ``verbose``, else INFO.
    """
    level = "DEBUG" if verbose else "INFO"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "runner.standard": {"level": level, "class": "logging.StreamHandler", "formatter": "runner.standard"}
        },
        "formatters": {"runner.standard": {"format": "%(asctime)s: %(message)s", "datefmt": "%H:%M:%S"}},
        "loggers": {"runner": {"handlers": ["runner.standard"], "level": level}},
    }
