"""The scripts' wire shapes (runner/engine/protocol.py): the claim reply, the outcome kinds, lost claims."""

from __future__ import annotations

from runner.engine.protocol import Claim, ClaimLoss, Outcome, OutcomeKind, parse_claim_reply, parse_losses


def test_a_claim_reply_is_read_in_one_place() -> None:
    raw = [b"-1", b"a", b"1700000000000", b"pa", 1, 0, 0, b"b", b"17.0", b"", 3, b"1700000000001", 1]
    reply = parse_claim_reply(raw, "tok")
    assert reply.next_due_ms is None
    assert reply.claims == [
        Claim("a", 1700000000000, b"pa", 1, 0, "tok"),
        Claim("b", 17, b"", 3, 1700000000001, "tok", flow=True),
    ]
    assert parse_claim_reply([b"1700000000500"], "tok").next_due_ms == 1700000000500


def test_outcome_kinds_are_the_codes_finish_lua_reads() -> None:
    assert [kind.value for kind in OutcomeKind] == ["fc", "ff", "qr", "q"]
    assert [kind.finishes for kind in OutcomeKind] == [True, True, False, False]
    outcome = Outcome("a", OutcomeKind.RETRY, score=5, token="t")
    assert outcome.script_args() == ("a", "qr", b"", 0, 5, "t")


def test_losses_are_pairs() -> None:
    assert parse_losses([b"a", b"taken", "b", "gone"]) == [("a", ClaimLoss.TAKEN), ("b", ClaimLoss.GONE)]
