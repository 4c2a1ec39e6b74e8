"""Item 16: ``ARQ_TIMEZONE`` / ``TIMEZONE`` set the zone of the datetimes read back from Redis.

arq honours them only when pytz is installed, and the arq venv of these tests has none, so arq's datetimes stay
in UTC there; runner reads them with the standard library's zoneinfo, always.
"""

from __future__ import annotations

import os
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.constants import timezone_env_vars
from arq.utils import get_tz, ms_to_datetime

DIFFERENCES = {
    "zone set": {"arq": None, "runner": {"repr": "zoneinfo.ZoneInfo(key='Asia/Tokyo')"}, "doc": "timezone-env"},
    "enqueue_time offset": {"arq": 0.0, "runner": 32400.0, "doc": "timezone-env"},
    "ms_to_datetime": {
        "arq": {"datetime": "2023-11-14T22:13:20+00:00"},
        "runner": {"datetime": "2023-11-15T07:13:20+09:00"},
        "doc": "timezone-env",
    },
}


async def scenario(env: Any) -> None:
    env.observe("variables", timezone_env_vars)
    get_tz.cache_clear()
    env.observe("zone unset", get_tz())
    env.observe("utc by default", ms_to_datetime(1_700_000_000_000))
    os.environ["ARQ_TIMEZONE"] = "Asia/Tokyo"
    get_tz.cache_clear()
    try:
        env.observe("zone set", get_tz())
        env.observe("ms_to_datetime", ms_to_datetime(1_700_000_000_000))
        redis = await create_pool(RedisSettings.from_dsn(env.url))
        job = await redis.enqueue_job("f")
        info = await job.info()
        env.observe("enqueue_time offset", info.enqueue_time.utcoffset().total_seconds())
        await redis.aclose()
    finally:
        del os.environ["ARQ_TIMEZONE"]
        get_tz.cache_clear()
