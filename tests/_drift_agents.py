"""Synthetic agents for the behavioral-drift tests (deterministic, seeded).

A :class:`SteadyAgent` works 09:00-17:00 UTC every day, calls tools as a Poisson process
(mean gap 20 s), picks tools from a fixed mix of eight (3 % to 30 %), has log-normal
latencies around a per-tool median, and draws each tool's arguments from a fixed pool built
from that tool's schema (strings of log-normal length, categorical values, numbers, optional
keys, nested filters). Its knobs (``gap``, ``tools``/``weights``, ``hours``,
``latency_factor``, ``pools``) are what the drift scenarios change.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

DAY = 86400.0
TOOLS = (
    "search",
    "db_query",
    "send_email",
    "read_file",
    "calc",
    "fetch_url",
    "summarize",
    "escalate",
)
WEIGHTS = (0.30, 0.20, 0.15, 0.10, 0.10, 0.07, 0.05, 0.03)
LATENCY_MEDIAN = {
    "search": 80.0,
    "db_query": 40.0,
    "send_email": 120.0,
    "read_file": 15.0,
    "calc": 2.0,
    "fetch_url": 300.0,
    "summarize": 900.0,
    "escalate": 50.0,
}
WORDS = ("alpha", "beta", "gamma", "delta", "report", "sales", "q3", "customer", "invoice")

Call = tuple[str, float, dict[str, Any], float, float]


def _text(rnd: random.Random, mu: float, sigma: float) -> str:
    n = max(1, int(rnd.lognormvariate(mu, sigma)))
    return ("lorem ipsum " * (n // 12 + 1))[:n]


def make_args(rnd: random.Random, tool: str) -> dict[str, Any]:
    """One argument dict of ``tool``'s schema."""
    if tool == "search":
        return {
            "query": " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 6))),
            "limit": rnd.choice((10, 20, 50)),
        }
    if tool == "db_query":
        return {
            "table": rnd.choice(("sales", "orders", "customers")),
            "limit": int(rnd.lognormvariate(4, 1)) + 1,
            "filters": {rnd.choice(WORDS): rnd.randint(0, 100) for _ in range(rnd.randint(0, 3))},
        }
    if tool == "send_email":
        a: dict[str, Any] = {
            "to": f"user{rnd.randint(1, 5000)}@example.com",
            "subject": _text(rnd, 3.0, 0.4),
            "body": _text(rnd, 6.0, 0.6),
        }
        if rnd.random() < 0.2:
            a["cc"] = f"team{rnd.randint(1, 20)}@example.com"
        return a
    if tool == "read_file":
        return {"path": f"/data/{rnd.choice(WORDS)}/{rnd.randint(1, 999)}.txt", "encoding": "utf-8"}
    if tool == "calc":
        return {"expression": f"{rnd.randint(1, 10**4)} * {rnd.random():.4f}"}
    if tool == "fetch_url":
        return {
            "url": f"https://api.example.com/v1/{rnd.choice(WORDS)}?id={rnd.randint(1, 10**6)}",
            "timeout": rnd.choice((5, 10, 30)),
        }
    if tool == "summarize":
        return {"text": _text(rnd, 7.0, 0.8), "max_words": rnd.choice((50, 100, 200))}
    return {"ticket": rnd.randint(1, 10**6), "priority": rnd.choice(("low", "normal", "high"))}


class SteadyAgent:
    """A steady agent; mutate its attributes to make it drift."""

    def __init__(self, seed: int = 7, gap: float = 20.0, pool: int = 500) -> None:
        self.rnd = random.Random(seed)
        self.gap = gap
        self.mono = 1000.0
        self.wall = 19000 * DAY + 9 * 3600.0
        self.pools: dict[str, list[dict[str, Any]]] = {
            t: [make_args(self.rnd, t) for _ in range(pool)] for t in TOOLS
        }
        self.tools: tuple[str, ...] = TOOLS
        self.weights: tuple[float, ...] = WEIGHTS
        self.hours = (9.0, 17.0)
        self.latency_factor = 1.0

    def _advance(self) -> None:
        dt = self.rnd.expovariate(1.0 / self.gap)
        self.mono += dt
        self.wall += dt
        start, end = self.hours
        day = math.floor(self.wall / DAY)
        tod = self.wall - day * DAY
        nxt = None
        if tod >= end * 3600.0:
            nxt = (day + 1) * DAY + start * 3600.0 + self.rnd.random() * 60
        elif tod < start * 3600.0:
            nxt = day * DAY + start * 3600.0
        if nxt is not None:
            self.mono += nxt - self.wall
            self.wall = nxt

    def calls(self, n: int) -> Iterator[Call]:
        """The agent's next ``n`` calls as ``(tool, latency_ms, arguments, mono, wall)``."""
        rnd = self.rnd
        for _ in range(n):
            self._advance()
            tool = rnd.choices(self.tools, self.weights)[0]
            median = LATENCY_MEDIAN.get(tool, 50.0)
            lat = median * self.latency_factor * rnd.lognormvariate(0.0, 0.35)
            args = rnd.choice(self.pools[tool]) if tool in self.pools else {}
            yield (tool, lat, args, self.mono, self.wall)
