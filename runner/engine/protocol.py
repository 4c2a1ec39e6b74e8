"""What the worker's scripts take and give back, named: the claim reply, the outcome kinds, the finish message.

The Lua side is ``scripts/claim.lua`` and ``scripts/finish.lua``; this module is the one place Python reads the
one and writes the other, so a change of either shape is a change here and in the script, nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


@dataclass(slots=True)
class Claim:
    """One job the claim script handed to this worker (read-only by convention; not frozen, which costs per job).

    Attributes:
        job_id: the job's id.
        score: the score the job had when it was claimed (the script moves it to now + lease meanwhile).
        payload: the serialized job, ``b""`` when its job key had expired.
        job_try: the try counter after this claim's increment.
        abort_ms: when an abort was asked for this id (unix ms), 0 when none or aborts are off.
        token: the holder token the claim wrote in the job's in-progress key; every later write to the claim
            (heartbeat, outcome) acts only while the key still holds it.
        flow: the job holds flow-control slots (runner/engine/flow.py), which its outcome gives back.
    """

    job_id: str
    score: int
    payload: bytes
    job_try: int
    abort_ms: int
    token: str = "1"
    flow: bool = False


@dataclass(slots=True)
class ClaimReply:
    """The claim script's whole reply: the jobs claimed and, when it claimed fewer than asked, the next due time."""

    claims: list[Claim]
    next_due_ms: int | None


def parse_claim_reply(raw: list[Any], token: str) -> ClaimReply:
    """Read ``claim.lua``'s reply: ``{next_due_ms or -1, then per job: id, score, payload, try, abort_ms, flow}``;
    every job of one call holds the call's ``token``."""
    next_due = int(float(raw[0]))
    claims = [
        Claim(
            raw[i].decode(),
            int(float(raw[i + 1])),
            raw[i + 2],
            int(raw[i + 3]),
            int(float(raw[i + 4])),
            token,
            raw[i + 5] == 1,
        )
        for i in range(1, len(raw), 6)
    ]
    return ClaimReply(claims, None if next_due < 0 else next_due)


class OutcomeKind(StrEnum):
    """What ``finish.lua`` does with one job; the value is the code the script reads.

    The first letter is the action (``f`` finish: store the result and remove the job; ``q`` queue again: release
    the claim and set the score), the second the stats count it adds to (``c`` complete, ``f`` failed,
    ``r`` retried; none for a job requeued by a stop).
    """

    COMPLETE = "fc"
    FAILED = "ff"
    RETRY = "qr"
    REQUEUE = "q"

    @property
    def finishes(self) -> bool:
        """The job leaves the queue (its result, if kept, is stored)."""
        return self.value[0] == "f"


@dataclass(slots=True)
class Outcome:
    """One job's outcome, as the outcome writer hands it to ``finish.lua``.

    Attributes:
        job_id: the job.
        kind: what to do with it.
        result: the serialized result (finishing kinds; ``b""`` when none is stored).
        keep_ms: how long to keep the result: ms, -1 forever, 0 not at all (finishing kinds).
        score: the job's new score, unix ms (requeueing kinds).
        token: the claim's holder token: the outcome is applied only while the claim is still this worker's
            (``""``: unchecked).
        flow: the job holds flow-control slots: flow_release.lua gives them back in the same transaction.
    """

    job_id: str
    kind: OutcomeKind
    result: bytes = b""
    keep_ms: int = 0
    score: int = 0
    token: str = ""
    flow: bool = False

    def script_args(self) -> tuple[str, str, bytes, int, int, str]:
        """The six ``finish.lua`` values of this outcome."""
        return self.job_id, self.kind.value, self.result, self.keep_ms, self.score, self.token


class ClaimLoss(StrEnum):
    """Why a worker's write to a claim was refused (``heartbeat.lua``, ``finish.lua``)."""

    TAKEN = "taken"  # another worker holds the claim now: this one stalled past the lease
    GONE = "gone"  # the job is no longer queued: finished or removed elsewhere


def parse_losses(raw: list[Any]) -> list[tuple[str, ClaimLoss]]:
    """Pairs of ``id, 'taken' | 'gone'`` as the scripts return them."""
    text = [value.decode() if isinstance(value, bytes) else str(value) for value in raw]
    return [(text[i], ClaimLoss(text[i + 1])) for i in range(0, len(text) - 1, 2)]


def finished_ids(message: bytes) -> list[str]:
    """The job ids of one done-channel message: ``<byte length>:<id>`` each, back to back (finish.lua publishes them).

    A message that is not in that form came from an older runner worker, which sent the ids space-separated.
    """
    ids: list[str] = []
    at = 0
    while at < len(message):
        colon = message.find(b":", at)
        length = message[at:colon]
        if colon < 0 or not length.isdigit() or colon + 1 + int(length) > len(message):
            return [raw.decode(errors="replace") for raw in message.split()]
        end = colon + 1 + int(length)
        ids.append(message[colon + 1 : end].decode(errors="replace"))
        at = end
    return ids
