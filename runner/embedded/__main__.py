"""``python -m runner.embedded serve DIR …``: the supervisor that ``acquire()`` starts; not meant to be run by hand."""

from __future__ import annotations

import sys

from runner.embedded.supervisor import main

sys.exit(main(sys.argv[1:]))
