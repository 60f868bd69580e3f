"""Who is asking: the client address behind the trusted proxies, and rate limits.

The counters live in Django's cache (Redis in production), so every web process
on every host shares one budget per client.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or what the trusted proxies saw.

    Each trusted proxy appends the address it was reached from to
    X-Forwarded-For, so the client is the entry SNAPCLASS_TRUSTED_PROXIES from
    the right; whatever the client wrote itself lies further left and is ignored.
    """
    meta = getattr(request, "META", request)
    remote = meta.get("REMOTE_ADDR", "") or ""
    proxies = settings.SNAPCLASS_TRUSTED_PROXIES
    if proxies <= 0:
        return remote
    forwarded = [
        part.strip()
        for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if part.strip()
    ]
    if not forwarded:
        return remote
    return forwarded[-min(proxies, len(forwarded))]


def parse_rate(rate: str) -> tuple[int, int] | None:
    """ "60/min" -> (60, 60); "" -> None. Periods: s, m(in), h(our), d(ay)."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]
    return int(count), seconds


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    wait: float  # seconds until a retry can succeed (0 when allowed)


class RateLimit:
    """A sliding-window counter per (scope, client) in the shared cache.

    Two fixed windows are kept; the count is the current window's plus the part
    of the previous one that still overlaps the sliding window. Increments are
    atomic in Redis (INCRBY), so concurrent processes never lose a hit. `cost`
    lets one request count as several (a request with 16 images costs 16).
    """

    def __init__(self, scope: str, rate: str) -> None:
        self.scope = scope
        self.parsed = parse_rate(rate)

    def _keys(self, ident: str, now: float) -> tuple[str, str, float]:
        limit, period = self.parsed  # type: ignore[misc]
        window = int(now // period)
        elapsed = (now % period) / period
        base = f"rate:{self.scope}:{ident}:"
        return base + str(window), base + str(window - 1), elapsed

    def _used(self, current: int, previous: int, elapsed: float) -> float:
        return current + previous * (1.0 - elapsed)

    def _wait(self, used: float, previous: int, elapsed: float) -> float:
        limit, period = self.parsed  # type: ignore[misc]
        if previous:
            # The previous window's weight shrinks linearly over this one.
            excess = used - limit + 1
            return max(1.0, math.ceil(excess / previous * period))
        return max(1.0, math.ceil((1.0 - elapsed) * period))

    def peek(self, ident: str) -> Verdict:
        """Whether any budget is left, without spending it."""
        if self.parsed is None:
            return Verdict(True, 0.0)
        limit, _ = self.parsed
        key, previous_key, elapsed = self._keys(ident, time.time())
        values = cache.get_many([key, previous_key])
        current, previous = values.get(key, 0), values.get(previous_key, 0)
        used = self._used(current, previous, elapsed)
        if used + 1 > limit:
            return Verdict(False, self._wait(used, previous, elapsed))
        return Verdict(True, 0.0)

    def hit(self, ident: str, cost: int = 1) -> Verdict:
        """Spend `cost`; refused (and refunded) when it would exceed the limit."""
        if self.parsed is None:
            return Verdict(True, 0.0)
        limit, period = self.parsed
        key, previous_key, elapsed = self._keys(ident, time.time())
        cache.add(key, 0, timeout=2 * period + 1)
        try:
            current = cache.incr(key, cost)
        except ValueError:  # expired between add and incr, or the cache is down
            cache.add(key, cost, timeout=2 * period + 1)
            current = cost
        if current is None:  # the cache is unreachable: let the request through
            return Verdict(True, 0.0)
        previous = cache.get(previous_key, 0) or 0
        used = self._used(current, previous, elapsed)
        if used > limit:
            try:
                cache.decr(key, cost)
            except ValueError:
                pass
            return Verdict(False, self._wait(used - cost, previous, elapsed))
        return Verdict(True, 0.0)
