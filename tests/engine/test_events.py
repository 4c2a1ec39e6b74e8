"""Job events (runner/engine/events.py): observers get every event in order, whatever the log level."""

from __future__ import annotations

import logging

import pytest

from runner.engine.events import JobCounts, JobEvent, JobEventKind, JobEvents, JobLog


class Recorder:
    def __init__(self) -> None:
        self.kinds: list[JobEventKind] = []

    def job_event(self, event: JobEvent) -> None:
        self.kinds.append(event.kind)


class Broken:
    def job_event(self, event: JobEvent) -> None:
        raise RuntimeError("observer bug")


def event(kind: JobEventKind, **details: object) -> JobEvent:
    return JobEvent(kind, "q", "id1", "f", 1, **details)  # type: ignore[arg-type]


def test_observers_get_every_event_and_a_broken_one_harms_none(caplog: pytest.LogCaptureFixture) -> None:
    counts, recorder = JobCounts(), Recorder()
    events = JobEvents([Broken(), counts])
    events.subscribe(recorder)
    events.subscribe(recorder)  # once only
    kinds = [JobEventKind.STARTED, JobEventKind.COMPLETE, JobEventKind.FAILED, JobEventKind.ABORTED]
    kinds += [JobEventKind.RETRIED, JobEventKind.REQUEUED]
    with caplog.at_level(logging.ERROR, logger="runner.worker"):
        for kind in kinds:
            events.publish(event(kind))
    assert recorder.kinds == kinds
    assert (counts.complete, counts.failed, counts.retried) == (1, 2, 2)
    assert sum("observer" in r.getMessage() for r in caplog.records) == len(kinds)
    events.unsubscribe(recorder)
    events.publish(event(JobEventKind.COMPLETE))
    assert len(recorder.kinds) == len(kinds)


def test_the_log_lines_follow_arqs_levels(caplog: pytest.LogCaptureFixture) -> None:
    log = JobLog(log_results=False)
    with caplog.at_level(logging.INFO, logger="runner.worker"):
        log.job_event(event(JobEventKind.STARTED, args=(1,), since_enqueue_s=0.5))
        log.job_event(event(JobEventKind.COMPLETE, duration_s=0.1, result={"secret": 1}))
        log.job_event(event(JobEventKind.FAILED, detail="expired before it ran"))
        log.job_event(event(JobEventKind.FAILED, duration_s=0.2, detail="failed", error=ValueError("bad")))
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines[0] == (logging.INFO, "  0.50s → id1:f(1)")
    assert lines[1] == (logging.INFO, "  0.10s ← id1:f ● ")  # log_results=False keeps the result out
    assert lines[2] == (logging.WARNING, "  0.00s ! id1:f expired before it ran")
    assert lines[3] == (logging.ERROR, "  0.20s ! id1:f failed, ValueError: bad")
    assert caplog.records[3].exc_info is not None
    assert caplog.records[0].__dict__["outcome"] == "started"
