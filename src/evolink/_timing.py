"""What the engine has learned of how long a model's tasks take, and how well hints predict it.

Each hint (`Hint`) gives a task a predicted duration `D̂`: the server's `estimated_time`,
the end that the last progress read extrapolates, or 1 (the raw duration, for "no hint").
As a task ends, the engine knows its true duration `D` only within an interval: after the
last read that saw it running (`low`), no later than the read that saw it done (`high`).
For every hint the task had, `log(D / D̂)` is then known within
`(log(low / D̂), log(high / D̂)]`, and `Spread` keeps those intervals of the model's last
`MAX_SAMPLES` tasks.

From them `Spread` estimates the distribution of `log(D / D̂)`: Turnbull's self-consistency
(EM) on the intervals' end points, a few rounds, with mass uniform between end points. A
read that found a task done long after the one before says little on its own; EM lets the
narrow intervals of other tasks say where in it the end most likely was.

A hint whose distribution is narrow predicts well (honest estimates, linear progress); one
whose is wide does not (noisy or missing estimates, progress that stays 0), and the raw
durations may do better. `ModelTiming.best` picks the narrowest among the hints a task has.

Pure and synchronous: no clock, no I/O (`_estimate.ReadPlan` asks it, the watcher feeds it).
"""

from __future__ import annotations

import bisect
import enum
import math
from collections import deque
from collections.abc import Iterable

import attrs

#: Intervals kept per model and hint: recent tasks tell the most (a model may change).
MAX_SAMPLES = 160
#: Finished tasks of a model needed before a hint is judged on its record.
MIN_SAMPLES = 16
#: A read found a task done when its previous read was at least this share of the end
#: before: the interval's lower end (log space needs it positive).
FLOOR_SHARE = 0.1
#: The narrowest interval (log space): a point has no density.
MIN_WIDTH = 0.004
#: A record is resolved when its exploring tasks' intervals (median width) are at most this
#: share of the
#: distribution's 10-90% range: the reads pinned the ends down, the spread is the hint's.
RESOLVED_SHARE = 0.6
#: Exploring tasks needed before a record can be judged resolved.
MIN_EXPLORED = 4
#: A hint misleads when this share of the exploring tasks ended well away from its end.
MISLEAD_SHARE = 0.25
#: Rounds of self-consistency per rebuild: enough to pull wide intervals' mass onto the
#: narrow ones they overlap; more cost CPU for little.
EM_ROUNDS = 6


class Source(enum.Enum):
    """What a task's predicted duration comes from."""

    PROGRESS = "progress"
    ESTIMATE = "estimate"
    DURATION = "duration"  # no hint: the model's durations themselves


#: Progress readings are judged by band (0-19%, 20-39%, ...): how well a reading predicts
#: depends on how far along it was read (slow-then-fast progress misleads early, not late).
PROGRESS_BAND = 20


@attrs.frozen
class Hint:
    """A source of predicted durations; for progress, the band the reading was in."""

    source: Source
    band: int = 0

    @classmethod
    def progress(cls, percent: int) -> Hint:
        """The hint of a progress reading of `percent` (1-99)."""
        return cls(Source.PROGRESS, min(max(percent, 0), 99) // PROGRESS_BAND)


ESTIMATE = Hint(Source.ESTIMATE)
DURATION = Hint(Source.DURATION)


@attrs.define
class Spread:
    """The distribution of `log(D / D̂)` for one model and hint, from censored intervals."""

    _intervals: deque[tuple[float, float]] = attrs.field(factory=lambda: deque(maxlen=MAX_SAMPLES))
    _knots: list[float] = attrs.field(factory=list)
    _cdf: list[float] = attrs.field(factory=list)
    _built_at: int = 0  # samples taken when the CDF was last built
    _taken: int = 0
    _width: float = math.inf
    #: Intervals of the tasks that read on the record's schedule (explored).
    _explored: deque[tuple[float, float]] = attrs.field(factory=lambda: deque(maxlen=MAX_SAMPLES))
    _resolved: bool = False

    def __len__(self) -> int:
        return len(self._intervals)

    def add(self, low: float, high: float, *, explored: bool = True) -> None:
        """Take one task's interval (log space, `low <= high`); `explored`: the task read
        on the record's schedule (its interval says how finely the record can resolve)."""
        low = min(low, high - MIN_WIDTH)
        self._intervals.append((low, high))
        if explored:
            self._explored.append((low, high))
        self._taken += 1

    def _fresh(self) -> None:
        # Rebuilding costs O(rounds x (samples + cells)): do it when an eighth is new.
        new = self._taken - self._built_at
        if new and (not self._knots or new * 8 >= len(self._intervals)):
            self._build()

    def _build(self) -> None:
        self._built_at = self._taken
        intervals = list(self._intervals)
        knots = sorted({x for interval in intervals for x in interval})
        cells = len(knots) - 1
        spans = [
            (bisect.bisect_left(knots, low), bisect.bisect_left(knots, high))
            for low, high in intervals
        ]
        widths = [knots[i + 1] - knots[i] for i in range(cells)]
        # Start from each interval's mass spread evenly over it, narrow ones weighing more
        # (they say more), then let the intervals that overlap decide where within a wide
        # one the end most likely was. Each round is O(intervals + cells): an interval's
        # total from prefix sums, and each cell's share of every interval covering it from
        # a difference array.
        weight = [0.0] * (cells + 1)
        for first, last in spans:
            span = knots[last] - knots[first]
            weight[first] += 1.0 / (span * span)
            weight[last] -= 1.0 / (span * span)
        mass = self._spread_over(weight, widths)
        for _ in range(EM_ROUNDS):
            prefix = [0.0]
            for cell_mass in mass:
                prefix.append(prefix[-1] + cell_mass)
            share = [0.0] * (cells + 1)
            for first, last in spans:
                total = prefix[last] - prefix[first]
                if total > 0:
                    share[first] += 1.0 / total
                    share[last] -= 1.0 / total
            mass = self._spread_over(share, mass)
        total = sum(mass) or 1.0
        cdf = [0.0]
        for cell in range(cells):
            cdf.append(cdf[-1] + mass[cell] / total)
        self._knots, self._cdf = knots, cdf
        self._width = self._quantile(0.9) - self._quantile(0.1)

    @staticmethod
    def _spread_over(steps: list[float], cells: list[float]) -> list[float]:
        """Each cell times the running sum of `steps` (a difference array) at it."""
        out, running = [], 0.0
        for step, cell in zip(steps, cells, strict=False):
            running += step
            out.append(cell * running if running > 0 else 0.0)
        return out

    def cdf(self, x: float) -> float:
        """P(log(D / D̂) <= x)."""
        self._fresh()
        return self._cdf_at(x)

    def _cdf_at(self, x: float) -> float:
        knots, cdf = self._knots, self._cdf
        if not knots or x <= knots[0]:
            return 0.0
        if x >= knots[-1]:
            return 1.0
        i = bisect.bisect_right(knots, x) - 1
        share = (x - knots[i]) / (knots[i + 1] - knots[i])
        return cdf[i] + share * (cdf[i + 1] - cdf[i])

    def quantile(self, p: float) -> float:
        """The `p` quantile of `log(D / D̂)` (0 <= p <= 1)."""
        self._fresh()
        return self._quantile(p)

    def _quantile(self, p: float) -> float:
        knots, cdf = self._knots, self._cdf
        if not knots:
            return 0.0
        p = min(max(p, 0.0), 1.0)
        i = min(max(bisect.bisect_left(cdf, p) - 1, 0), len(knots) - 2)
        step = cdf[i + 1] - cdf[i]
        share = 0.0 if step <= 0 else (p - cdf[i]) / step
        return knots[i] + share * (knots[i + 1] - knots[i])

    def width(self) -> float:
        """The 10-90% range of `log(D / D̂)`: how well the hint predicts (smaller: better)."""
        self._fresh()
        return self._width

    def resolved(self) -> bool:
        """Whether the reads pinned the ends down well enough for the spread to be the hint's.

        Once resolved, a record stays so: reads on its schedule keep it resolved, and
        falling back to the hints as they are would throw away what it knows.
        """
        self._fresh()
        if not self._resolved and len(self._explored) >= MIN_EXPLORED:
            widths = sorted(high - low for low, high in self._explored)
            self._resolved = widths[len(widths) // 2] <= RESOLVED_SHARE * self._width
        return self._resolved

    def misleads(self, margin: float) -> bool:
        """Whether the tasks that explored often ended `margin` (log) or more away from the
        predicted end: before it (they were done by a read that early), or after it.

        Only explorers tell: a task read as the hint says is read at the predicted end, so
        its interval cannot show that it ended long before.
        """
        explored = self._explored
        if len(explored) < MIN_EXPLORED:
            return False
        early = sum(1 for _, high in explored if high < -margin)
        late = sum(1 for low, _ in explored if low > margin)
        return max(early, late) >= MISLEAD_SHARE * len(explored)


@attrs.frozen
class Ending:
    """How one task ended, as its reads saw it: seconds from its start (the create's answer).

    `low`: the last read that saw it running (0 if none did); `high`: the read that saw it
    done; `predicted`: each hint's predicted duration for it, as last seen; `explored`:
    whether it was read on the record's schedule.
    """

    low: float
    high: float
    predicted: tuple[tuple[Hint, float], ...]
    explored: bool = True


@attrs.define
class ModelTiming:
    """What one model's ended tasks say about each hint."""

    _spreads: dict[Hint, Spread] = attrs.field(factory=dict)
    ended: int = 0
    _started: int = 0

    def explores(self, every: int) -> bool:
        """Whether the task starting now is one in `every` to follow an unresolved record."""
        self._started += 1
        return self._started % every == 0

    def learn(self, ending: Ending) -> None:
        """Take in a task's end."""
        high = max(ending.high, 1e-6)
        low = max(ending.low, FLOOR_SHARE * high)
        self.ended += 1
        for hint, predicted in ending.predicted:
            if not (predicted > 0 and math.isfinite(predicted)):
                continue
            spread = self._spreads.setdefault(hint, Spread())
            spread.add(
                math.log(low / predicted), math.log(high / predicted), explored=ending.explored
            )

    def spread(self, hint: Hint) -> Spread | None:
        """The hint's record, once it has enough samples to judge."""
        spread = self._spreads.get(hint)
        return spread if spread is not None and len(spread) >= MIN_SAMPLES else None

    def best(self, hints: Iterable[Hint]) -> tuple[Hint, Spread] | None:
        """The hint among `hints` that has predicted this model's ends best, if any is known."""
        best: tuple[Hint, Spread] | None = None
        for hint in hints:
            spread = self.spread(hint)
            if spread is not None and (best is None or spread.width() < best[1].width()):
                best = (hint, spread)
        return best


@attrs.define
class Timings:
    """Every model's `ModelTiming`: one per client, shared by every wait (learned for life)."""

    _models: dict[str, ModelTiming] = attrs.field(factory=dict)

    def for_model(self, model: str | None) -> ModelTiming:
        """The model's record (tasks of no known model share one)."""
        return self._models.setdefault(model or "", ModelTiming())
