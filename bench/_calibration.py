"""The calibration figure benches print beside their results."""

from __future__ import annotations

import time


def calibration_us() -> float:
    """Median time of a fixed pure-Python loop (~5 us on an unloaded modern core).

    This VM's speed drifts by up to 2x from minute to minute; the figure lets a
    reader compare runs taken at different times.
    """
    samples = []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        sum(range(1000))
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    return round(samples[len(samples) // 2] / 1000, 2)
