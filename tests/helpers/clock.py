"""A fake monotonic clock for the sans-I/O cores (they take `now` as an argument)."""

from __future__ import annotations

from typing import Protocol


class TimerCore(Protocol):
    """What a sans-I/O core with timers offers (aioquic shape)."""

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class FakeClock:
    """Time that moves only when told to; `run` fires a core's timers at their deadlines."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time forward without firing anything; returns the new time."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.now += seconds
        return self.now

    def run(self, core: TimerCore, seconds: float) -> list[float]:
        """Advance by `seconds`, calling `core.handle_timer` at each deadline on the way.

        Returns the times (relative to the start of the run) at which timers fired.
        """
        start, end = self.now, self.now + seconds
        fired: list[float] = []
        while (deadline := core.get_timer()) is not None and deadline <= end:
            self.now = max(self.now, deadline)
            core.handle_timer(self.now)
            fired.append(round(self.now - start, 6))
        self.now = end
        return fired
