"""runner's engine loggers answer to arq's logger names (runner/engine/logs.py)."""

from __future__ import annotations

import logging
import logging.config
import subprocess
import sys
from collections.abc import Iterator

import pytest

from runner.engine.logs import ALIASED, default_log_config, install_arq_twins


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname}:{record.getMessage()}")


@pytest.fixture(autouse=True)
def _clean_loggers() -> Iterator[None]:
    """Each test starts with the runner and arq loggers unconfigured, and leaves them so."""
    names = ["runner", "arq", *(f"{p}.{s}" for p in ("runner", "arq") for s in ALIASED)]

    def reset() -> None:
        for name in names:
            logger = logging.getLogger(name)
            logger.handlers = [h for h in logger.handlers if type(h).__name__ == "_TwinForwarder"]
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
            logger.disabled = False

    # a dictConfig disables every logger it does not name: put each one's flag back, or later tests lose their logs
    disabled = {
        name: logger.disabled
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    reset()
    yield
    reset()
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.disabled = disabled.get(name, False)


def test_a_handler_and_level_on_arq_get_runners_records() -> None:
    collect = Collect()
    arq = logging.getLogger("arq")
    arq.addHandler(collect)
    arq.setLevel(logging.INFO)  # root stays at WARNING
    logging.getLogger("runner.worker").info("job started")
    logging.getLogger("runner.worker").debug("not at INFO")
    logging.getLogger("runner.jobs").warning("result not serializable")
    assert collect.messages == ["INFO:job started", "WARNING:result not serializable"]


def test_a_level_on_arq_silences_runner() -> None:
    collect = Collect()
    logging.getLogger().addHandler(collect)
    try:
        logging.getLogger("arq.worker").setLevel(logging.ERROR)
        logging.getLogger("runner.worker").warning("quiet")
        logging.getLogger("runner.worker").error("loud")
    finally:
        logging.getLogger().removeHandler(collect)
    assert collect.messages == ["ERROR:loud"]


def test_runners_own_level_wins_over_arqs() -> None:
    collect = Collect()
    logging.getLogger("arq").addHandler(collect)
    logging.getLogger("arq").setLevel(logging.ERROR)
    logging.getLogger("runner").setLevel(logging.INFO)
    logging.getLogger("runner.worker").info("shown")
    assert collect.messages == ["INFO:shown"]


def test_each_handler_sees_a_record_once() -> None:
    on_root, on_arq = Collect(), Collect()
    logging.getLogger().addHandler(on_root)
    logging.getLogger("arq").addHandler(on_arq)
    try:
        logging.getLogger("runner.worker").warning("once")
    finally:
        logging.getLogger().removeHandler(on_root)
    assert (on_root.messages, on_arq.messages) == (["WARNING:once"], ["WARNING:once"])


def test_a_dict_config_naming_arq_keeps_runner_enabled() -> None:
    collect = Collect()
    logging.config.dictConfig({"version": 1, "loggers": {"arq": {"level": "INFO"}}})  # disables unnamed loggers
    logging.getLogger("arq").addHandler(collect)
    logging.getLogger("runner.worker").info("still here")
    assert collect.messages == ["INFO:still here"]


def test_a_dict_config_naming_neither_disables_runner_as_it_disables_arq() -> None:
    collect = Collect()
    logging.getLogger().addHandler(collect)
    try:
        logging.config.dictConfig({"version": 1, "incremental": False, "loggers": {"other": {}}})
        logging.getLogger("runner.worker").error("gone")
    finally:
        logging.getLogger().removeHandler(collect)
    assert logging.getLogger("arq.worker").disabled
    assert collect.messages == []


def test_configuring_runner_does_not_cut_the_arq_twin_off() -> None:
    # dictConfig empties the handlers of the children of a logger it configures
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False, "loggers": {"runner": {}}})
    collect = Collect()
    logging.getLogger("arq").addHandler(collect)
    logging.getLogger("runner.worker").warning("forwarded")
    assert collect.messages == ["WARNING:forwarded"]


def test_nothing_configured_prints_warnings_once_as_python_does() -> None:
    # pytest configures the root logger, so this runs where nothing is configured: a fresh interpreter
    code = (
        "import logging, runner; log = logging.getLogger('runner.worker'); "
        "log.warning('to stderr'); log.info('not shown')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stderr == "to stderr\n"


def test_install_is_idempotent_and_keeps_the_logger_objects() -> None:
    before = logging.getLogger("runner.worker")
    install_arq_twins()
    install_arq_twins()
    assert logging.getLogger("runner.worker") is before
    collect = Collect()
    logging.getLogger("arq").addHandler(collect)
    logging.getLogger("runner.worker").warning("one copy")
    assert collect.messages == ["WARNING:one copy"]


def test_default_log_config_writes_runner_lines(capsys: pytest.CaptureFixture[str]) -> None:
    logging.config.dictConfig(default_log_config(verbose=False))
    logging.getLogger("runner.worker").info("hello")
    logging.getLogger("runner.worker").debug("hidden")
    err = capsys.readouterr().err
    assert err.endswith(": hello\n") and "hidden" not in err
    assert default_log_config(verbose=True)["loggers"]["runner"]["level"] == "DEBUG"
