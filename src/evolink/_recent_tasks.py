"""Whether a record's ends are only the fastest of tasks still running beside them.

A record holds the model's last ends. With a thousand waits started together, those are
the fastest of the thousand, and every task still running sits just past them, read
after read, as the record moves with the clock. `Recent` keeps the model's tasks still
running and its recent ends, each with when it started, and asks, for a task now at
`x` on a record: of the tasks started long enough ago to have reached `x` (and not so
long ago that they would be past the record's top by a margin: a stuck task, or a slow
mode, is no cohort), how many still run, against how many the record foresaw would at
their ages? A record that holds the model's durations foresees them (a steady stream, or
a cohort on a client that learned the model before); one that holds only a cohort's
fastest foresees none still running past its top, where most are.
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, Protocol, TypeVar

import attrs

#: Ends kept: at least this many, and this many times the tasks running.
ENDS = 640
ENDS_PER_RUNNING = 4
#: Fewer tasks than this that reached the age say nothing (one task alone is "all
#: still running").
MIN_REACHED = 16
#: Shares are taken again once the clock moved this far (seconds), or the task's place on
#: the record this far (log): a thousand tasks of a cohort share them.
CLOCK_STEP = 0.5
PLACE_STEP = 0.1
CACHED = 512
#: Each share walks at most this many of the running tasks and of the ends, evenly spread
#: over them: a sample, so that its cost does not grow with thousands running.
WALKED = 128

K = TypeVar("K", bound=Hashable)


class Runner(Protocol):
    """A task of the model still running, as `Recent` sees it."""

    @property
    def started(self) -> float: ...  # when the create answered (the client's clock)

    @property
    def estimated_time(self) -> float | None: ...


@attrs.define
class Recent(Generic[K]):
    """One model's tasks still running and its recent ends, with when each started.

    Keys `K` name what a duration is measured against (a hint): an ended task keeps its
    predicted duration for each key it had, and `predicted` gives a running task's.
    """

    predicted: Callable[[K, Runner], float | None]
    _running: weakref.WeakValueDictionary[int, Runner] = attrs.field(
        init=False, factory=weakref.WeakValueDictionary
    )
    #: Each recent end: when its task started, its duration, and its predicted durations.
    _ended: deque[tuple[float, float, Mapping[K, float]]] = attrs.field(init=False, factory=deque)
    _entered: int = attrs.field(init=False, default=0)
    _cache: dict[tuple[K, int, int, float], float] = attrs.field(init=False, factory=dict)

    def enter(self, runner: Runner) -> int:
        """Count a task in as running (weakly: a wait given up leaves by itself); its
        number, to end it by."""
        self._entered += 1
        self._running[self._entered] = runner
        return self._entered

    def end(self, number: int, duration: float, predicted: Mapping[K, float]) -> None:
        """Task `number` ended after `duration` seconds."""
        runner = self._running.pop(number, None)
        if runner is None:
            return  # not entered, or ended before
        self._ended.append((runner.started, duration, predicted))
        while len(self._ended) > max(ENDS, ENDS_PER_RUNNING * len(self._running)):
            self._ended.popleft()

    def unforeseen(
        self, key: K, x: float, cap: float, now: float, survival: Callable[[float], float]
    ) -> float:
        """Of the tasks started between `x` and `cap` ago (log of age over the duration
        `key` predicts) that ran past `x`, the share still running at `now` beyond what
        `survival` (a record's: the share of tasks that run past a place) foresaw for
        them (0 if fewer than `MIN_REACHED` ran past `x`)."""
        slot = (key, round(x / PLACE_STEP), round(now / CLOCK_STEP), cap)
        share = self._cache.get(slot)
        if share is None:
            if len(self._cache) >= CACHED:
                self._cache.clear()
            share = self._cache[slot] = self._unforeseen(key, x, cap, now, survival)
        return share

    def _unforeseen(
        self, key: K, x: float, cap: float, now: float, survival: Callable[[float], float]
    ) -> float:
        low, high = math.exp(x), math.exp(cap)
        at_x = survival(x)
        if at_x <= 0:
            return 0.0
        # Each task walked stands for `step` of its kind (running, or ended): a sample of
        # every `step`-th, so that the walk is at most `WALKED` of each.
        reached = running = foreseen = 0.0
        counted = 0
        runners = list(self._running.values())
        step = 1 + len(runners) // WALKED
        for runner in itertools.islice(runners, 0, None, step):
            against = self.predicted(key, runner)
            if against is None:
                continue
            grown = (now - runner.started) / against
            if low <= grown <= high:
                counted += 1
                reached += step
                running += step
                foreseen += step * min(1.0, survival(math.log(grown)) / at_x)
        ended = self._ended
        step = 1 + len(ended) // WALKED
        for started, duration, predicted in itertools.islice(ended, 0, None, step):
            against = predicted.get(key)
            if against is None or duration <= low * against:
                continue
            grown = (now - started) / against
            if low <= grown <= high:
                counted += 1
                reached += step
                foreseen += step * min(1.0, survival(math.log(grown)) / at_x)
        return (running - foreseen) / reached if counted >= MIN_REACHED else 0.0
