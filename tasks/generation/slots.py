"""Which strategy each variant slot tries: slot k starts with the k-th preferred strategy; a blocked slot is
regenerated with the next strategy its segment has not used, avoiding the documents its blocked copy cited,
until it passes or runs out of attempts."""
from __future__ import annotations

from dataclasses import dataclass, field

from tasks.generation import first_strategies, next_strategy


@dataclass
class SlotPlan:
    strategies: list[str]
    variants_per_segment: int
    max_attempts: int
    segments: list[str]
    used: dict[str, set[str]] = field(default_factory=dict)
    avoid: dict[str, dict[int, set[str]]] = field(default_factory=dict)

    def first(self) -> dict[str, dict[int, tuple[str, int]]]:
        """segment -> {slot: (strategy, attempt 1)}."""
        first = first_strategies(self.strategies, self.variants_per_segment)
        self.used = {s: set(first.values()) for s in self.segments}
        self.avoid = {s: {} for s in self.segments}
        return {s: {slot: (strategy, 1) for slot, strategy in first.items()} for s in self.segments}

    def spare(self, segment: str) -> list[str]:
        """Strategies the segment has not used, for a slot whose strategy no retrieved document can serve."""
        return [s for s in self.strategies if s not in self.used[segment]]

    def written(self, variants) -> None:
        for v in variants:
            self.used[v.segment].add(v.strategy)

    def after(self, screened) -> dict[str, dict[int, tuple[str, int]]]:
        """The slots to regenerate after screening: each blocked one, with the next unused strategy."""
        pending: dict[str, dict[int, tuple[str, int]]] = {}
        for v in screened:
            if v.status == "blocked" and v.attempt < self.max_attempts:
                strategy = next_strategy(self.strategies, self.used[v.segment])
                if strategy:
                    self.used[v.segment].add(strategy)
                    pending.setdefault(v.segment, {})[v.slot] = (strategy, v.attempt + 1)
                    self.avoid[v.segment].setdefault(v.slot, set()).update(v.citations)
        return pending
