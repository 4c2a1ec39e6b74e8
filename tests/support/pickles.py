"""Objects the payload tests plant in pickles: one that runs code when unpickled, one that is plain but not data."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any


class Trap:
    """Unpickling this makes a directory: the proof that a payload ran code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.path,))


@dataclasses.dataclass
class Invoice:
    number: int


# the module a reader must allow (pickle_allow) to decode an Invoice
PLANTED = Invoice.__module__
