"""Injected faults: ``--faults 429:0.05,500:0.01,503:0.02,reset:0.01,slow:0.02,malformed:0.01``.

Each entry is ``kind:rate`` (rate in 0..1). ``slow`` takes an optional delay, ``slow:0.05@4`` (seconds,
default 5). An optional method filter limits an entry to reads or writes: ``429:0.1/GET``,
``500:0.05/PUT+POST``. Faults draw from a seeded RNG so a run can be reproduced.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

KINDS = ("429", "500", "502", "503", "reset", "slow", "malformed")


class FaultSpecError(ValueError):
    pass


@dataclass(frozen=True)
class FaultRule:
    kind: str
    rate: float
    methods: frozenset[str] | None = None
    delay_s: float = 5.0


def parse_faults(spec: str | None) -> list[FaultRule]:
    rules: list[FaultRule] = []
    if not spec:
        return rules
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        methods = None
        if "/" in item:
            item, meth = item.split("/", 1)
            methods = frozenset(m.strip().upper() for m in meth.split("+") if m.strip())
        delay = 5.0
        if "@" in item:
            item, d = item.split("@", 1)
            try:
                delay = float(d)
            except ValueError as e:
                raise FaultSpecError(f"fault {raw!r}: delay {d!r} is not a number of seconds") from e
        kind, sep, rate_s = item.partition(":")
        kind = kind.strip().lower()
        if kind not in KINDS:
            raise FaultSpecError(f"fault {raw!r}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        if not sep:
            raise FaultSpecError(f"fault {raw!r}: expected KIND:RATE, e.g. {kind}:0.05")
        try:
            rate = float(rate_s)
        except ValueError as e:
            raise FaultSpecError(f"fault {raw!r}: rate {rate_s!r} is not a number") from e
        if not 0 <= rate <= 1:
            raise FaultSpecError(f"fault {raw!r}: rate must be between 0 and 1")
        rules.append(FaultRule(kind, rate, methods, delay))
    return rules


class FaultInjector:
    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self.rules = list(rules or [])
        self._rng = random.Random(seed)
        self.injected: dict[str, int] = {}

    def draw(self, method: str) -> FaultRule | None:
        """Roll once per rule, in order; the first hit wins."""
        for rule in self.rules:
            if rule.methods is not None and method.upper() not in rule.methods:
                continue
            if self._rng.random() < rule.rate:
                self.injected[rule.kind] = self.injected.get(rule.kind, 0) + 1
                return rule
        return None
