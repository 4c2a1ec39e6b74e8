"""The dashboard and its JSON API, as an ASGI application (Starlette, Jinja2; ``pip install 'runner-jobs[dashboard]'``).

Serve it with ``runner dashboard worker.toml``, or mount it in your own app::

    from fastapi import FastAPI
    from runner.web import dashboard_app

    app = FastAPI()
    app.mount("/jobs", dashboard_app("worker.toml"))

Parts: ``options`` (what a dashboard shows and who may use it), ``board`` (each page's data, read through
``runner.engine.browse`` and ``runner.engine.steering``), ``views`` (engine objects as plain data), ``pages`` and
``api`` (the routes), ``security`` (authentication, CSRF, headers), ``handling`` (what every request shares),
``app`` (the application and ``dashboard_app``).
"""

from __future__ import annotations

from runner._dist import DASHBOARD_HINT

try:
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - the extra is installed wherever the tests run
    raise ImportError(
        f"the runner dashboard needs Starlette and Jinja2 ({exc.name} is missing); install them with: {DASHBOARD_HINT}"
    ) from None

from runner.web.app import create_app, dashboard_app
from runner.web.options import Credentials, CronInfo, DashboardOptions, QueueInfo

__all__ = ["Credentials", "CronInfo", "DashboardOptions", "QueueInfo", "create_app", "dashboard_app"]
