"""Statistics for the listening tests: Student's t quantile and the MOS interval (no SQL here).

Written out because the 95% interval is the only statistic Cadenza needs and scipy is a large
dependency for one function.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (p in [0.5, 1)), by bisection on the exact CDF.

    Written out because the 95% interval is the only statistic Cadenza needs and scipy is
    a large dependency for one function.
    """
    if not 0.5 <= p < 1.0 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 <= p < 1 and df >= 1 (got {p}, {df})")
    lo, hi = 0.0, 1.0
    while 1.0 - 0.5 * _betainc(df / 2.0, 0.5, df / (df + hi * hi)) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if 1.0 - 0.5 * _betainc(df / 2.0, 0.5, df / (df + mid * mid)) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


def mos_interval(votes: int, total: float, total_sq: float) -> tuple[float | None, float | None,
                                                                     float | None]:
    """(mean, sample sd, 95% CI half-width) of star votes given their count, sum, sum of squares."""
    if votes <= 0:
        return None, None, None
    mean = total / votes
    if votes < 2:
        return mean, None, None
    # max(): rounding can make the variance of identical votes a hair negative.
    var = max(0.0, (total_sq - votes * mean * mean) / (votes - 1))
    sd = math.sqrt(var)
    return mean, sd, t_quantile(0.975, votes - 1) * sd / math.sqrt(votes)
