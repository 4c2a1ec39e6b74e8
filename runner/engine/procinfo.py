"""Facts about processes that recycling needs: resident memory and usable cores, without extra packages."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(pid: int | None = None) -> int:
    """The resident set size of ``pid`` (default this process) in bytes, or 0 when it cannot be read.

    Linux reads ``/proc/<pid>/statm`` (the current size, not the peak); elsewhere ``ps`` is asked, and for this
    process the peak from ``getrusage`` is the fallback.
    """
    target = "self" if pid is None else str(pid)
    try:
        with open(f"/proc/{target}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        pass
    if pid is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    try:
        out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True, timeout=2).stdout
        return int(out.strip() or 0) * 1024
    except (OSError, ValueError, subprocess.SubprocessError):
        return 0


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def format_bytes(size: int) -> str:
    """``123456789`` as ``117.7 MiB``: memory figures in log lines."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
