"""The distribution's name on PyPI, written once: ``pip install runner-jobs``, then ``import runner``.

The name ``runner`` on PyPI belongs to an unrelated project, so the distribution is ``runner-jobs``; the import
package and the command stay ``runner``.
"""

from __future__ import annotations

DISTRIBUTION = "runner-jobs"


def install_hint(extra: str, package: str) -> str:
    """How to install what an optional feature needs: ``pip install "runner-jobs[metrics]"``."""
    return f'pip install "{DISTRIBUTION}[{extra}]" (or just {package})'


DASHBOARD_HINT = install_hint("dashboard", "starlette jinja2 uvicorn")
