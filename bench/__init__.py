"""Snapclass benchmarks: `make bench` (python -m bench [NAME ...]).

Each module in BENCHES has `run() -> list[Figure]`. Every figure is measured beside a
baseline in the same run, and reported as a ratio against a target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Figure:
    name: str
    value: float
    baseline: float
    unit: str
    better: str  # "higher" or "lower"
    target_ratio: float | None = None
    notes: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    @property
    def meets_target(self) -> bool | None:
        if self.target_ratio is None:
            return None
        if self.better == "higher":
            return self.ratio >= self.target_ratio
        return self.ratio <= self.target_ratio

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "ratio": round(self.ratio, 4),
            "meets_target": self.meets_target,
        }


# Run order; each name is a module bench/<name>.py.
BENCHES = ["ingest", "scrape", "training", "predict", "browser", "quality"]
