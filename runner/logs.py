"""arq's ``arq.logs`` under runner: ``default_log_config``.

runner's engine loggers (``runner.worker``, ``runner.jobs``, …) also answer to arq's names, so logging set up on
``arq`` or ``arq.worker`` keeps working (see ``runner.engine.logs``).
"""

from __future__ import annotations

from runner.engine.logs import default_log_config

__all__ = ["default_log_config"]
