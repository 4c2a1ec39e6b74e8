"""``python -m runner.cli``: the same as the ``runner`` command (the supervisor starts its children this way)."""

from runner.cli import main

main()
