"""Words in messages, shared by every layer (it imports nothing of runner's)."""

from __future__ import annotations


def plural(count: int, word: str) -> str:
    """``1 job``, ``2 jobs``: the count and the word, with an ``s`` unless the count is one."""
    return f"{count} {word}{'' if count == 1 else 's'}"
