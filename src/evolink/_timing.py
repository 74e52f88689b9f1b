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
durations may do better. `ModelTiming.best` picks the narrowest among the hints a task has,
and `Schedule` plans the reads on it: the least expected cost of reads and delay together.

Pure and synchronous: no clock, no I/O (`_estimate.ReadPlan` asks it, the watcher feeds it).
"""

from __future__ import annotations

import bisect
import enum
import functools
import math
import random
from collections import deque
from collections.abc import Iterable, Sequence
from statistics import NormalDist

import attrs

from evolink import _censored_normal
from evolink._recent_tasks import Recent, Runner

#: Intervals kept per model and hint: recent tasks tell the most (a model may change).
MAX_SAMPLES = 160
#: A record that may take a fitted normal form (`Spread.smooth`) takes it unless, held out
#: (each half of its ends scored on a fit of the other), the normal predicts the ends worse
#: than Turnbull's estimate by more than this, in log-likelihood a task: a record of ends
#: in two clusters (constant estimates of bimodal durations) lose about 1; a band of
#: honest estimates, whose ends are a normal's cut by rounding, within 0.15.
FIT_MARGIN = 0.25
#: ...and not where more than this share of the intervals hold one point in common
#: (`Spread._overlapping`): a young record's first wave, every task read at the same two
#: points. (At 0.9, a model turning 2x faster over 1,000 tasks lost the fit where it
#: needed it: its ends past the turn were seen 1.6x as late as a fresh client's.)
SHARED = 0.95
#: Finished tasks of a model needed before a hint is judged on its record.
MIN_SAMPLES = 16
#: A task that follows an estimate's record moves to a progress band's only if that is
#: under this share of its width: each record's schedule spends its read budget from its
#: own start, so a move starts the spending again. On progress in steps of 25 %, the band
#: of a reading of 75 is about two thirds of the estimates' width: moving to it cost 0.34
#: reads a task for 0.008 s less delay (docs/explanation/waiting.md).
SWITCH_WIDTH = 0.5
#: Reads at progress 0 of tasks running well into their estimates before a model is taken
#: to show none (`ModelTiming.shows_none`)...
STILL = 8
#: ...and `EARLY` first reads before an estimate's end, at most `EARLY_DONE` of them
#: finding the task done: the first read part-way is what keeps a task whose estimate is
#: far too long from being seen late (noisy estimates, sigma 0.5, find about one in nine
#: done there; 32 reads all running happen 2 % of the time).
EARLY = 32
EARLY_DONE = 0.02
#: A read found a task done when its previous read was at least this share of the end
#: before: the interval's lower end (log space needs it positive).
FLOOR_SHARE = 0.1
#: The narrowest interval (log space): a point has no density.
MIN_WIDTH = 0.004
#: The schedule's own reads cannot show an early end (a task found done at its first read
#: ended somewhere before it), so a record also weighs its tasks' first reads, as a
#: CUSUM: each adds the log-likelihood ratio of its outcome (done or running at the read)
#: under "the model now ends in 1 / `FASTER` of the time" against the record; the sum,
#: floored at 0, crossing `CHANGE` means the model changed. The ends since the sum last
#: left 0 are held out of the record meanwhile (else they would move it before it is
#: judged), and go into it if the sum falls back to 0. Against so far a shift, a record's
#: own errors cost little: a read the record gives 55 % and the truth 65 % adds +0.6 if
#: done and -3.8 if running (the shifted record says 99 %), a drift of -0.9 a read.
FASTER = 3.0
#: Chances below this count as it: a record's far tail is guessed, not known...
FIRST_FLOOR = 0.01
#: ...and reads where the record gives more than this are not weighed: near its top a
#: record's error is all towards "done", and a done there says little.
WEIGHED_BELOW = 0.6
#: ...and where a progress band's record plans a read that is not the task's first
#: (`_estimate.ReadPlan`), only those where it gives under this: its reads come at the
#: end it predicts, where a done is no news (linear tasks of minutes, read where the
#: record gave 12 %, added 2 a read towards a change, and the ends held out meanwhile
#: left the record's top seconds short); a model whose progress came to mean less is
#: done where the record gives nothing.
WEIGHED_BELOW_BAND = 0.05
#: At the threshold a progress band's record starts again only if most of the ends held
#: since its suspicion began lie where it gave under this (the whole interval): else the
#: surprises were a minority it had not met yet (a slow lying sixth of the tasks, the
#: first of which end after 300 honest ones), and it takes them in instead. (Not the
#: other records: a first read that finds a task done says only that it ended before,
#: and 4x faster tasks first read where the record gave 5-10 % are a change.)
ODD_BELOW = 0.05
#: ...once this many ends have come since the suspicion began (until then it waits, its
#: sum kept): two tasks of a `tasks.wait` whose age came from the server's whole-second
#: `created` started an honest band again (attack suite 14g); at 8, a model's change
#: was seen later (helper-50's slowdown 1.015x the loop, at 4 1.001x).
ODD_MIN = 4
CHANGE = math.log(1e5)
#: From this much (odds of a hundred to one), the next `DEEP_PROBES` tasks read first
#: where the record puts `DEEP_AT` of the ends: if the model changed, most are done there.
SUSPECT = math.log(1e2)
DEEP_PROBES = 4
DEEP_AT = 0.02
#: Quantiles of a record the read schedule is planned on (`Schedule`): O(n^2) per rebuild.
#: Every 40th, and every 200th in the top tenth: a task still running there is read as
#: the rest of the record says, not at the record's last end (a bounded record's tail is
#: where its last tasks end, and a batch ends when they are seen done).
PLAN_LEVELS = (*(k / 40 for k in range(36)), *(0.9 + k / 200 for k in range(21)))
#: The hint's own word (`Spread.anchored`): while a record is young, it starts with a
#: weight far above any interval's, so that it takes the whole mass of every interval that
#: allows it (the reads have not yet said where in them the ends were)...
ANCHOR_FIRM = 1e9
#: ...and from this many ends on, with only this share of the intervals' mass: a
#: tie-breaker, not a verdict. Firm for ever, it kept a progress record whose model
#: changed its curve on the old word: every task read just after the end the hint
#: predicted, each such read "confirmed" it, and the schedule never read earlier.
ANCHOR_SOFT_FROM = 64
ANCHOR_SHARE = 0.01
#: Bisection rounds for the read cost that meets a read budget (`Spread.schedule`).
BUDGET_ROUNDS = 8
#: Halvings of the read cost, at most, to bring a schedule within a 1 s loop's delay
#: (`Spread.within_loop`): 2^-12 of the budget's price is reads a few hundredths apart.
LOOP_ROUNDS = 12
#: Rounds of self-consistency per rebuild: enough to pull wide intervals' mass onto the
#: narrow ones they overlap; more cost CPU for little.
EM_ROUNDS = 6
#: Steps of this share of [0, 1) spread tasks' draws evenly (`ModelTiming.draw`).
GOLDEN = (math.sqrt(5) - 1) / 2
#: A record's trend (`Spread.trend`) is fitted only where its readings' covariates spread
#: this much (a variance, in log space): else there is nothing to fit a slope on.
TREND_MIN_VARIANCE = 1e-4
#: ...and kept only if this many standard errors from 0 (linear progress has none)...
TREND_Z = 3.0
#: ...and held within this (progress that says the task is 10% done when it
#: is half done is a slope of 0.7).
TREND_MAX_SLOPE = 3.0
#: An interval narrower than this weighs as one this wide in the trend's fit: a read just
#: before and one just after the end do not outweigh all the others.
TREND_MIN_WIDTH = 0.02


class Source(enum.Enum):
    """What a task's predicted duration comes from."""

    PROGRESS = "progress"
    ESTIMATE = "estimate"
    DURATION = "duration"  # no hint: the model's durations themselves


#: Progress readings are judged by band, each from its lower edge: how well a reading
#: predicts depends on how far along it was read (slow-then-fast progress misleads early,
#: not late), finely where a percent says most (a reading of 1 and one of 19 do not
#: extrapolate alike).
PROGRESS_BANDS = (0, 1, 2, 3, 5, 8, 12, 18, 27, 40, 60, 80)
#: Coarse progress bands (0-19, 20-39, ...), numbered from `COARSE_BAND_BASE` up.
COARSE_BAND = 20
COARSE_BAND_BASE = 100
#: Estimates are judged by band too, a quarter of a doubling wide: an estimate in whole
#: seconds is coarse for a short task, and a server's bias may depend on the size.
ESTIMATE_BANDS_PER_DOUBLING = 4


@attrs.frozen
class Hint:
    """A source of predicted durations, and its band (by percent, or by estimate); band
    None: every estimate of the model at once."""

    source: Source
    band: int | None = None

    @classmethod
    def progress(cls, percent: int) -> Hint:
        """The hint of a progress reading of `percent` (1-99)."""
        return cls(Source.PROGRESS, bisect.bisect_right(PROGRESS_BANDS, min(percent, 99)) - 1)

    @classmethod
    def progress_all(cls, percent: int) -> tuple[Hint, Hint]:
        """The fine band of a reading of `percent`, and its coarse one (a fifth of the
        range): a fine band's record fills slowly, and until it can judge, the coarse one
        may."""
        coarse = COARSE_BAND_BASE + min(max(percent, 0), 99) // COARSE_BAND
        return cls.progress(percent), cls(Source.PROGRESS, coarse)

    def covariate(self, percent: int) -> float:
        """Where within its band a progress reading of `percent` falls, as `log(q / q_mid)`
        for the share done `q` it says and the band's middle `q_mid` (0 for other hints):
        what a record's trend (`Spread.trend`) is measured against."""
        if self.source is not Source.PROGRESS or self.band is None:
            return 0.0
        if self.band >= COARSE_BAND_BASE:
            low = (self.band - COARSE_BAND_BASE) * COARSE_BAND
            high = low + COARSE_BAND
        else:
            low = PROGRESS_BANDS[self.band]
            high = PROGRESS_BANDS[self.band + 1] if self.band + 1 < len(PROGRESS_BANDS) else 100
        return math.log((min(max(percent, 0), 99) + 0.5) / ((low + high) / 2))

    @classmethod
    def estimate(cls, seconds: float) -> Hint:
        """The hint of an estimate of `seconds` (> 0), judged among estimates of its size."""
        return cls(Source.ESTIMATE, round(ESTIMATE_BANDS_PER_DOUBLING * math.log2(seconds)))


ESTIMATE = Hint(Source.ESTIMATE)
DURATION = Hint(Source.DURATION)


@attrs.define
class Spread:
    """The distribution of `log(D / D̂)` for one model and hint, from censored intervals."""

    #: Whether ties go to the hint's own word, `x = 0` (a hint; not the raw durations).
    anchored: bool = False
    #: Whether a run of odd ends may be a minority's, not a change (`_odd`): a progress
    #: band's record holds the tasks whose readings fell in it, and a slow minority's
    #: readings fall in a few bands of their own.
    minorities: bool = False
    #: Whether a fitted normal may stand for the record (`_censored_normal`): set by
    #: `ModelTiming` on an estimate's record while the model's tasks show no progress.
    smooth: bool = attrs.field(default=False, init=False)
    #: Each task's interval, and where in the hint's band its reading fell (`covariate`).
    _intervals: deque[tuple[float, float, float]] = attrs.field(
        factory=lambda: deque(maxlen=MAX_SAMPLES)
    )
    _knots: list[float] = attrs.field(factory=list)
    _cdf: list[float] = attrs.field(factory=list)
    _built_at: int = 0  # samples taken when the CDF was last built
    _taken: int = 0
    _width: float = math.inf
    #: The CUSUM of first reads (`CHANGE`), the ends held out of the record since it
    #: last left 0, and the deep probes left to hand out.
    _evidence: float = 0.0
    _held: list[tuple[float, float, float]] = attrs.field(factory=list)
    _deep: int = 0
    #: How many times the record started again (the model changed), and came under
    #: suspicion.
    changes: int = 0
    suspicions: int = 0
    #: The model's `ended` count when the record last started again: tasks started before
    #: then do not go into it.
    since: int = 0
    #: How `log(D / D̂)` moves with the covariate: fitted at each rebuild (`trend`).
    _slope: float = 0.0
    #: The read schedule for the current record, by read cost (`schedule`).
    _schedules: dict[tuple[float, float | None], Mix] = attrs.field(factory=dict)
    #: Schedules at cheaper reads than the budget's, by read cost (`within_loop`).
    _cheaper: dict[float, Schedule] = attrs.field(factory=dict)
    #: The record's quantiles at `PLAN_LEVELS`, that every schedule is planned on.
    _points: list[float] = attrs.field(factory=list)
    #: The fitted normal the record is, as last built (None: Turnbull's estimate is).
    _normal: NormalDist | None = None
    _stale: bool = False  # rebuild at the next look (`smooth` changed)

    def __len__(self) -> int:
        return len(self._intervals)

    def add(self, low: float, high: float, covariate: float = 0.0) -> None:
        """Take one task's interval (log space, `low <= high`), for a hint whose reading
        fell at `covariate` in its band (`Hint.covariate`): into the record, or held out
        of it while its first reads weigh for a changed model (`weigh`). A record that
        may meet minorities (a progress band's) takes it in at once, and keeps it aside
        too, to start again from: held out, it lagged the minority it had to learn (a
        sixth of 60-300 s tasks reporting 40 % of the truth, 2.3 s later than the loop)."""
        interval = (min(low, high - MIN_WIDTH), high, covariate)
        if self.minorities:
            self._intervals.append(interval)
            self._taken += 1
            if self._evidence > 0:
                self._held.append(interval)
                del self._held[:-MAX_SAMPLES]
            return
        self._held.append(interval)
        if self._evidence <= 0 or len(self._held) >= MAX_SAMPLES:
            self._commit()

    def _commit(self) -> None:
        """The held ends go into the record (the CUSUM is at 0: they were chance)."""
        if self.minorities:
            self._held.clear()  # (in already)
            return
        self._intervals.extend(self._held)
        self._taken += len(self._held)
        self._held.clear()

    def weigh(self, x: float, *, done: bool, below: float = WEIGHED_BELOW) -> None:
        """Weigh a first read planned on this record, at `x`, that found the task `done`
        or not, into the CUSUM (`CHANGE`), if the record gave it no more than `below`;
        at the threshold, the record starts again from the ends held meanwhile (every
        task started before then may be of the old model: `ModelTiming.learn` keeps them
        out), unless they may be a minority's that are mostly not odd to it (`_odd`): it
        takes those in."""
        if len(self) < 2 * MIN_SAMPLES or (self.anchored and len(self) < ANCHOR_SOFT_FROM):
            # (While the hint's word is firm, the record's tail below it is not learned:
            # it holds the mass of every interval that allows it.)
            return
        chance = self.cdf(x)
        if chance > below:
            return
        now = max(chance, FIRST_FLOOR)
        faster = min(max(self.cdf(x + math.log(FASTER)), now), 1.0 - FIRST_FLOOR)
        ratio = faster / now if done else (1.0 - faster) / (1.0 - now)
        evidence = max(0.0, self._evidence + math.log(ratio))
        if self._evidence < SUSPECT <= evidence:
            self._deep = DEEP_PROBES
            self.suspicions += 1
        elif evidence < SUSPECT:
            self._deep = 0
        self._evidence = evidence
        if evidence >= CHANGE and (not self.minorities or self._odd()):
            self.restart()
        elif evidence >= CHANGE and len(self._held) >= ODD_MIN:
            self._evidence, self._deep = 0.0, 0
            self._commit()
        elif evidence <= 0:
            self._commit()

    def _odd(self) -> bool:
        """Whether most of the ends held since the suspicion began lie, whole, where the
        record gives them under `ODD_BELOW`."""
        if len(self._held) < ODD_MIN:
            return False
        odd = sum(1 for _, high, _ in self._held if self.cdf(high) < ODD_BELOW)
        return 2 * odd > len(self._held)

    def deep_probe(self, x: float) -> float | None:
        """Where (in `x`) the first read of a task now at `x` probes deep, if the record is
        under suspicion (`SUSPECT`), has deep probes left (one fewer), and the point is
        still ahead."""
        if self._deep <= 0:
            return None
        at = self.quantile(DEEP_AT) + self.trend(0.0)
        if at <= x:
            return None
        self._deep -= 1
        return at

    def restart(self) -> None:
        """Start again: the model changed. A progress band's record keeps the ends since
        its suspicion began (`add`): they are of the model as it is now, and started
        empty it planned nothing until `MIN_SAMPLES` new ends came, its tasks meanwhile
        on records that had not seen them (a slow lying sixth of a model's tasks read
        their age apart: 8 s late where the loop was 0.5 s). The others start empty: the
        first ends after a change are those its old reads found, and kept, a model turned
        10x faster was read on them (attack suite 14g: 1.009x the loop; empty, within it)."""
        self._intervals.clear()
        if self.minorities:
            self._intervals.extend(self._held)
        self._taken += 1 + len(self._held)
        self._evidence, self._deep = 0.0, 0
        self._held.clear()
        self._knots, self._cdf, self._built_at = [], [], 0
        self._normal, self._stale = None, False
        self.changes += 1

    def allow_fit(self, smooth: bool) -> None:
        """Let a fitted normal stand for the record, or not (`smooth`), from its next look."""
        if smooth != self.smooth:
            self.smooth = smooth
            self._stale = bool(self._intervals)

    def fitted(self) -> bool:
        """Whether a fitted normal stands for the record (as last built)."""
        self._fresh()
        return self._normal is not None

    def _fresh(self) -> None:
        # Rebuilding costs O(rounds x (samples + cells)): do it when an eighth is new.
        new = self._taken - self._built_at
        if self._stale or (new and (not self._knots or new * 8 >= len(self._intervals))):
            self._build()

    def _build(self) -> None:
        self._built_at, self._stale = self._taken, False
        self._slope = 0.0
        self._knots, self._cdf = self._estimate(0.0)
        self._width = self._quantile(0.9) - self._quantile(0.1)
        slope = self._fit_slope()
        if slope:
            # The trend is kept where it narrows the record: a slope fitted on a band the
            # readings barely spread over (80-99%) may be the reads' own pattern.
            plain = (self._knots, self._cdf, self._width)
            self._knots, self._cdf = self._estimate(slope)
            self._width = self._quantile(0.9) - self._quantile(0.1)
            if self._width < plain[2]:
                self._slope = slope
            else:
                self._knots, self._cdf, self._width = plain
        self._normal = self._fit_normal() if self.smooth and not self._slope else None
        if self._normal is not None:
            self._knots, self._cdf = _censored_normal.record(self._normal)
            self._width = self._quantile(0.9) - self._quantile(0.1)
        self._schedules.clear()
        self._cheaper.clear()
        self._points = [self._quantile(level) for level in PLAN_LEVELS]

    def _fit_normal(self) -> NormalDist | None:
        """The normal fitted to the intervals, unless, held out, it predicts them worse
        than Turnbull's estimate does (`FIT_MARGIN`): each half of the intervals is scored
        on the fits of the other."""
        intervals = [(low, high) for low, high, _ in self._intervals]
        if len(intervals) < MIN_SAMPLES or self._overlapping():
            return None
        halves = (list(self._intervals)[0::2], list(self._intervals)[1::2])
        score = 0.0
        for fit_on, scored in (halves, halves[::-1]):
            pairs = [(low, high) for low, high, _ in scored]
            normal = _censored_normal.fit([(low, high) for low, high, _ in fit_on], self._normal)
            turnbull = functools.partial(_cdf_on, *self._estimate(0.0, fit_on))
            score += _censored_normal.log_likelihood(normal.cdf, pairs)
            score -= _censored_normal.log_likelihood(turnbull, pairs)
        if score < -FIT_MARGIN * len(intervals):
            return None
        return _censored_normal.fit(intervals, self._normal)

    def _overlapping(self) -> bool:
        """Whether more than `SHARED` of the intervals hold one point in common: there a
        normal squeezed onto it explains them all alike, wherever it is and however
        narrow (every task read at the same two points), and the fit stops wherever EM
        started; Turnbull's estimate, tied to the hint's word, says where."""
        events = sorted(
            [(low, 1) for low, _, _ in self._intervals]
            + [(high, -1) for _, high, _ in self._intervals],
            key=lambda event: (event[0], -event[1]),
        )
        depth = deepest = 0
        for _, step in events:
            depth += step
            deepest = max(deepest, depth)
        return deepest > SHARED * len(self._intervals)

    def _estimate(
        self, slope: float, sample: Sequence[tuple[float, float, float]] | None = None
    ) -> tuple[list[float], list[float]]:
        """Knots and CDF of `log(D / D̂) - slope * covariate`, from the intervals (or
        `sample` of them)."""
        sample = self._intervals if sample is None else sample
        intervals = [(low - slope * u, high - slope * u) for low, high, u in sample]
        ends = {x for interval in intervals for x in interval}
        if self.anchored:
            ends.update((-MIN_WIDTH / 2, MIN_WIDTH / 2))  # a cell for the hint's own word
        knots = sorted(ends)
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
        weight, total = [0.0] * (cells + 1), 0.0
        for first, last in spans:
            span = knots[last] - knots[first]
            weight[first] += 1.0 / (span * span)
            weight[last] -= 1.0 / (span * span)
            total += 1.0 / span  # the interval's mass
        if self.anchored:
            # Where the reads cannot tell where in their intervals the tasks ended (all
            # read at the same two points, say), lean to the hint: start with weight on
            # the end it predicted. The rounds below keep mass there only for intervals
            # that contain it: no mass is added. A young record believes the hint where
            # the reads allow it; a mature one leaves the intervals' mass spread over
            # them, so that the schedule reads within them too, and learns if the hint
            # is wrong (a model whose progress changes its curve, say).
            at = bisect.bisect_left(knots, -MIN_WIDTH / 2)
            anchor = ANCHOR_FIRM
            if len(spans) >= ANCHOR_SOFT_FROM:
                anchor = ANCHOR_SHARE * total / widths[at]
            weight[at] += anchor
            weight[at + 1] -= anchor
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
            # (Capped: the rounding of the running sum may pass 1 before the last knot.)
            cdf.append(min(1.0, cdf[-1] + mass[cell] / total))
        cdf[-1] = 1.0
        return knots, cdf

    def _fit_slope(self) -> float:
        """The slope of `log(D / D̂)` against the covariate, by least squares on the
        intervals' upper ends (narrow ones weighing more), if it is clearly not 0.

        Upper ends, not middles: when the band's reading was the task's last before the
        end, the interval's lower end is that reading's own time, `log(q)` plus a
        constant, and the middles would follow the covariate whatever the truth.

        Progress that is not linear in time (slow at first, fast at the end, say) makes a
        band's linear extrapolation err by an amount that moves with the reading: a
        reading of 12% and one of 17% in one band extrapolate differently wrong. Fitting
        that trend leaves a narrow record where the raw one is wide: every smooth
        progress curve is, within a band, close to a power of time.
        """
        # (weight, covariate, upper end) of each interval, weighed once.
        samples = [
            (1.0 / max(high - low, TREND_MIN_WIDTH) ** 2, u, high)
            for low, high, u in self._intervals
        ]
        weights = sum(w for w, _, _ in samples)
        if weights <= 0:
            return 0.0
        mean_u = sum(w * u for w, u, _ in samples) / weights
        mean_high = sum(w * high for w, _, high in samples) / weights
        spread_u = sum(w * (u - mean_u) ** 2 for w, u, _ in samples)
        if spread_u < TREND_MIN_VARIANCE * weights:
            return 0.0
        covary = sum(w * (u - mean_u) * (high - mean_high) for w, u, high in samples)
        slope = covary / spread_u
        # Its standard error, from the residuals and the weights' effective count.
        squares = sum(w * (high - mean_high - slope * (u - mean_u)) ** 2 for w, u, high in samples)
        count = weights * weights / sum(w * w for w, _, _ in samples)
        error = math.sqrt(squares / spread_u / max(count - 2.0, 1.0))
        if abs(slope) < TREND_Z * error:
            return 0.0
        return min(max(slope, -TREND_MAX_SLOPE), TREND_MAX_SLOPE)

    def trend(self, covariate: float) -> float:
        """What the record's trend adds to `log(D / D̂)` for a reading at `covariate`: the
        record's distribution is of `log(D / D̂) - trend`."""
        self._fresh()
        return self._slope * covariate

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
        return _cdf_on(self._knots, self._cdf, x)

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

    def schedule(self, read_cost: float, reads: float | None = None, draw: float = 0.0) -> Schedule:
        """The best read schedule for this record (see `Schedule`): a read worth
        `read_cost` of the median duration, or dearer where that would cost a task more
        than `reads` reads from its start (then the least delay for that many).

        A schedule's reads jump as the read's price moves (a read more or less at some
        point), so the schedule just within the budget may spend well below it. Then the
        tasks whose `draw` (uniform in [0, 1), one per task) falls below a share follow the
        schedule just over it, so that on average the budget is spent (`Mix`).
        """
        self._fresh()
        key = (read_cost, reads)
        mix = self._schedules.get(key)
        if mix is None:
            mix = self._solve(read_cost, reads)
            self._schedules[key] = mix
        return mix.pick(draw)

    def within_loop(
        self, schedule: Schedule, delay: float, step: float, most: float | None = None
    ) -> Schedule:
        """`schedule`, or the one at the dearest read cost below its (by halvings) that
        sees a task done within `delay` on average: a 1 s loop's delay, in units of `D̂`
        (`step`: the loop's 1 s, in them). Never one that reads a task more often than
        that loop would (its reads: a task's mean duration over `step`, and a half), so
        that the schedule is the loop's better on both, as this record has it, nor more
        than `most` reads a task, if given.

        A read budget is the least delay for so many reads; on a wide record of long
        tasks (minutes, or durations spread over a decade) that delay is seconds, where
        the loop's is half of one, at many more reads. Below the budget's price the
        programme spends reads only where they buy most.
        """
        if schedule.delay() <= delay:
            return schedule
        loop_reads = schedule.moments[-1] / step + 0.5  # M at the top: the mean of D / D̂
        if most is not None:
            loop_reads = min(loop_reads, most)
        best, cost = schedule, schedule.cost
        for _ in range(LOOP_ROUNDS):
            cost /= 2.0
            trial = self._cheaper.get(cost)
            if trial is None:
                trial = self._cheaper[cost] = Schedule.solve(self._points, cost, PLAN_LEVELS)
            if trial.reads() > loop_reads:
                break
            best = trial
            if trial.delay() <= delay:
                break
        return best

    def _solve(self, read_cost: float, reads: float | None) -> Mix:
        points = self._points
        median = math.exp(self._quantile(0.5))
        schedule = Schedule.solve(points, read_cost * median, PLAN_LEVELS)
        if reads is None or schedule.reads() <= reads:
            return Mix(schedule)
        # Over the budget: bisect the read cost (in log) for it (dearer reads, fewer).
        over, within = schedule, None
        low, high = math.log(read_cost), math.log(1.0)
        for _ in range(BUDGET_ROUNDS):
            middle = (low + high) / 2
            trial = Schedule.solve(points, math.exp(middle) * median, PLAN_LEVELS)
            if trial.reads() <= reads:
                within, high = trial, middle
            else:
                over, low = trial, middle
        if within is None:
            within = Schedule.solve(points, median, PLAN_LEVELS)
        spare, extra = reads - within.reads(), over.reads() - within.reads()
        return Mix(within, over, spare / extra if extra > 0 else 0.0)


def _cdf_on(knots: Sequence[float], cdf: Sequence[float], x: float) -> float:
    """A record's CDF at `x`: linear between its knots."""
    if not knots or x <= knots[0]:
        return 0.0
    if x >= knots[-1]:
        return 1.0
    i = bisect.bisect_right(knots, x) - 1
    share = (x - knots[i]) / (knots[i + 1] - knots[i])
    return cdf[i] + share * (cdf[i + 1] - cdf[i])


@attrs.frozen
class Mix:
    """A schedule within a read budget, and the share of tasks that follow the one just
    over it instead (the two together spend the budget: neither alone may)."""

    within: Schedule
    over: Schedule | None = None
    share: float = 0.0

    def pick(self, draw: float) -> Schedule:
        """The schedule of a task whose draw (uniform in [0, 1)) is `draw`."""
        return self.over if self.over is not None and draw < self.share else self.within


@attrs.frozen
class Schedule:
    """When to read a task, given only that it is still running, to spend least in all.

    The record's distribution of `x = log(D / D̂)`, cut at its quantiles `x_k` (at the
    levels `F_k` of `PLAN_LEVELS`; evenly, `k / n`, by default). A read costs `cost` (in
    units of `D̂`); a read at `x_j` of a task known running at `x_i` finds it done with chance
    `(F_j - F_i) / (1 - F_i)`, and then it was seen late by `e^(x_j) - e^x` (in units of
    `D̂`) for its end at `x`. `left[i]` is the least expected cost, from point `i` on, of
    delay and reads (unnormalised: times `1 - F_i`), by a dynamic programme from the top
    (where every task is done) down:

        left[i] = min over j > i of  cost (1 - F_i) + late(i, j) + left[j]
        late(i, j) = e^(x_j) (F_j - F_i) - (M_j - M_i),   M(x) = the integral of e^u dF(u)

    O(n^2) once per rebuild of the record; `next_read` is O(n).
    """

    points: tuple[float, ...]
    shares: tuple[float, ...]  # F at each point
    moments: tuple[float, ...]  # M at each point
    left: tuple[float, ...]
    cost: float
    #: Reads a task costs from its start, and the mean delay in seeing it done (in units
    #: of `D̂`), on this schedule: walked once, when it is solved.
    _reads: float = attrs.field(default=0.0, eq=False)
    _delay: float = attrs.field(default=0.0, eq=False)

    @classmethod
    def solve(
        cls, points: list[float], cost: float, shares: Sequence[float] | None = None
    ) -> Schedule:
        n = len(points) - 1
        if shares is None:
            shares = [k / n for k in range(n + 1)]
        # The mass between neighbouring points, uniform in x (as the record's is).
        moments = [0.0]
        for k in range(n):
            a, b = points[k], points[k + 1]
            mean = math.exp(a) if b - a < 1e-9 else (math.exp(b) - math.exp(a)) / (b - a)
            moments.append(moments[-1] + mean * (shares[k + 1] - shares[k]))
        grown = [math.exp(x) for x in points]
        left = [0.0] * (n + 1)
        # late(i, j) + left(j) = (e^(x_j) F_j - M_j + left_j) - e^(x_j) F_i + M_i: the
        # first term, `ahead[j]`, is known once `left[j]` is; the inner loop is a min over
        # a comprehension (the programme runs at every rebuild of every record).
        ahead = [0.0] * (n + 1)
        ahead[n] = grown[n] * shares[n] - moments[n]
        for i in range(n - 1, -1, -1):
            f_i = shares[i]
            later = zip(ahead[i + 1 :], grown[i + 1 :], strict=True)
            best = min([a - g * f_i for a, g in later])
            left[i] = cost * (1.0 - f_i) + best + moments[i]
            ahead[i] = grown[i] * f_i - moments[i] + left[i]
        plain = cls(tuple(points), tuple(shares), tuple(moments), tuple(left), cost)
        reads, delay = plain._walk()
        return attrs.evolve(plain, reads=reads, delay=delay)

    def next_read(self, x: float, share: float, moment: float) -> float:
        """Where (in `x`) to read next a task still running at `x` (at which `F` is `share`
        and `M` is `moment`): the point that costs least from here on."""
        points, shares, moments, left = self.points, self.shares, self.moments, self.left
        best, at = math.inf, points[-1]
        for j in range(bisect.bisect_right(points, x), len(points)):
            value = math.exp(points[j]) * (shares[j] - share) - (moments[j] - moment) + left[j]
            if value < best:
                best, at = value, points[j]
        return at

    def reads(self) -> float:
        """Reads a task costs from its start, on this schedule (each read happens if the
        task was still running at the one before)."""
        return self._reads

    def delay(self) -> float:
        """The mean delay in seeing a task done, in units of `D̂`, on this schedule."""
        return self._delay

    def _walk(self) -> tuple[float, float]:
        """Follow the schedule from a task's start: its reads and its delay."""
        x, share, moment = -math.inf, 0.0, 0.0
        reads = delay = 0.0
        while share < 1.0:
            reads += 1.0 - share
            at = self.next_read(x, share, moment)
            if at <= x:
                break
            k = self.points.index(at)
            delay += math.exp(at) * (self.shares[k] - share) - (self.moments[k] - moment)
            x, share, moment = at, self.shares[k], self.moments[k]
        return reads, delay

    def moment(self, x: float) -> float:
        """`M(x)`, between the points as the mass is (uniform in x)."""
        points, moments = self.points, self.moments
        if x <= points[0]:
            return 0.0
        if x >= points[-1]:
            return moments[-1]
        k = bisect.bisect_right(points, x) - 1
        a, b = points[k], points[k + 1]
        if b - a < 1e-9:
            return moments[k]
        mass = self.shares[k + 1] - self.shares[k]
        return moments[k] + (math.exp(x) - math.exp(a)) / (b - a) * mass


@attrs.frozen
class Ending:
    """How one task ended, as its reads saw it: seconds from its start (the create's answer).

    `low`: the last read that saw it running (0 if none did); `high`: the read that saw it
    done; `predicted`: each hint's predicted duration for it (the estimate's, the raw
    duration's); `readings`: each progress reading's band, its predicted duration, and
    where in the band it fell (`Hint.covariate`); `born`: how many of the model's tasks had
    ended when it started (`ModelTiming.ended`).
    """

    low: float
    high: float
    predicted: tuple[tuple[Hint, float], ...]
    readings: tuple[tuple[Hint, float, float], ...] = ()
    born: int = 0
    #: The source of the record that planned the read that saw it done (None: the hints).
    planned_on: Source | None = None
    #: The number `ModelTiming.enter` gave it (-1: none).
    task: int = -1


@attrs.define
class ModelTiming:
    """What one model's ended tasks say about each hint."""

    _spreads: dict[Hint, Spread] = attrs.field(factory=dict)
    ended: int = 0
    #: How many times one of the model's records started again (the model changed), and
    #: came under suspicion (`SUSPECT`).
    changes: int = 0
    suspicions: int = 0
    #: The hints whose records started again, and whether one came under suspicion, since
    #: the engine last asked (`news`).
    _restarted: set[Hint] = attrs.field(factory=set)
    _suspected: bool = False
    _probed: int = 0
    _drawn: int = 0
    _progressed: int = 0  # ended tasks that showed progress
    #: Whether each of the last `MAX_SAMPLES` tasks seen done on a read a record planned
    #: was seen so on an estimate's record's (`ends_on_estimates`).
    _on_estimates: deque[bool] = attrs.field(factory=lambda: deque(maxlen=MAX_SAMPLES))
    _still: int = 0  # reads of running tasks, well into their estimate, at progress 0
    #: First reads on the hints alone before the estimate's end, and those that found
    #: the task done (an estimate far too long for it).
    _early: int = 0
    _early_done: int = 0
    _quiet: bool = False  # `shows_none`, when `fell_quiet` last looked
    #: Where probes fall: not secret, and the same from run to run.
    _draws: random.Random = attrs.field(factory=lambda: random.Random(14))
    #: The model's tasks still running and its recent ends (`still_running`).
    _recent: Recent[Hint] = attrs.field(factory=lambda: Recent(_predicted_for))

    def enter(self, runner: Runner) -> int:
        """Count a task of the model in as running; its number, for its `Ending`."""
        return self._recent.enter(runner)

    def unforeseen(self, hint: Hint, x: float, cap: float, now: float) -> float:
        """Of the model's recent tasks that reached `x` on `hint`'s record (and not `cap`),
        the share still running at `now` beyond what the record foresaw (`_recent_tasks`); 0
        for a progress band's (a running task's reading moves it from band to band)."""
        spread = self.spread(hint)
        if spread is None or hint.source is Source.PROGRESS:
            return 0.0
        return self._recent.unforeseen(hint, x, cap, now, lambda y: 1.0 - spread.cdf(y))

    def probes(self, every: int) -> float | None:
        """For one task in `every`, a uniform draw in [0, 1): where its first read probes
        below the record's schedule (`ReadPlan`); None for the others."""
        self._probed += 1
        return self._draws.random() if self._probed % every == 0 else None

    def draw(self) -> float:
        """A task's own draw in [0, 1), for which schedule of a `Mix` it follows: evenly
        spread over tasks in turn (golden-ratio steps), not random."""
        self._drawn += 1
        return (self._drawn * GOLDEN) % 1.0

    def learn(self, ending: Ending) -> None:
        """Take in a task's end."""
        high = max(ending.high, 1e-6)
        low = max(ending.low, FLOOR_SHARE * high)
        self.ended += 1
        self._recent.end(ending.task, high, dict(ending.predicted))
        self._progressed += bool(ending.readings)
        if ending.planned_on is not None:
            self._on_estimates.append(ending.planned_on is Source.ESTIMATE)
        hinted = [(hint, predicted, 0.0) for hint, predicted in ending.predicted]
        for hint, predicted, covariate in (*hinted, *ending.readings):
            if not (predicted > 0 and math.isfinite(predicted)):
                continue
            spread = self._spreads.setdefault(
                hint,
                Spread(
                    anchored=hint.source is not Source.DURATION,
                    minorities=hint.source is Source.PROGRESS,
                ),
            )
            if ending.born < spread.since:
                continue  # it started before its model changed: it may be of the old one
            spread.add(math.log(low / predicted), math.log(high / predicted), covariate)
        # Where the estimate's records plan the reads that see tasks done (no progress
        # shows, or the progress bands' records do not beat theirs), a fitted normal may
        # stand for them (`Spread.smooth`).
        smooth = not self.shows_progress() or self.ends_on_estimates()
        for hint, spread in self._spreads.items():
            if hint.source is Source.ESTIMATE:
                spread.allow_fit(smooth)

    def shows_progress(self) -> bool:
        """Whether a quarter or more of the model's ended tasks showed progress: a task
        read on another hint's record may yet show some, and be read on its band's."""
        return 4 * self._progressed >= max(self.ended, 1)

    def ends_on_estimates(self) -> bool:
        """Whether half or more of the model's last tasks seen done on a read a record
        planned (of `MIN_SAMPLES` or more) were seen so on an estimate's record's: there
        it plans the reads around the end, not only a first look that shows progress."""
        ends = self._on_estimates
        return len(ends) >= MIN_SAMPLES and 2 * sum(ends) >= len(ends)

    def saw_still(self) -> None:
        """Count a read of a running task, well into its estimate, at progress 0."""
        self._still += 1

    def saw_early(self, *, done: bool) -> None:
        """Count a first read, on the hints alone, before the task's estimate's end, and
        whether it found the task done."""
        self._early += 1
        self._early_done += done

    def shows_none(self) -> bool:
        """Whether the model's tasks show no progress, and its estimates are not far too
        long, as far as reads have seen: `STILL` reads at 0 of tasks running well into
        their estimates, no quarter of its ended tasks showing any, and at most
        `EARLY_DONE` of `EARLY` or more first reads before an estimate's end finding the
        task done. A first read part-way through a task's estimate is then of no use: it
        would only see 0, and it does not catch tasks far faster than their estimates."""
        return (
            self._still >= STILL
            and not self.shows_progress()
            and self._early >= EARLY
            and self._early_done <= EARLY_DONE * self._early
        )

    def fell_quiet(self) -> bool:
        """Whether the model's tasks came to show no progress (`shows_none`) since the
        last call: the engine plans again the first reads still due part-way."""
        quiet = self.shows_none()
        news = quiet and not self._quiet
        self._quiet = quiet
        return news

    def weigh(self, hint: Hint, x: float, *, done: bool, below: float = WEIGHED_BELOW) -> None:
        """Weigh a task's first read, planned on `hint`'s record at `x`, that found it
        `done` or not (`Spread.weigh`)."""
        spread = self._spreads.get(hint)
        if spread is None:
            return
        changes, suspicions = spread.changes, spread.suspicions
        spread.weigh(x, done=done, below=below)
        if spread.suspicions > suspicions:
            self.suspicions += 1
            self._suspected = True
        if spread.changes > changes:
            # Its kin change with it: an estimate's bands are judged on too few ends each
            # to weigh first reads (`ANCHOR_SOFT_FROM`), and each would be read on the old
            # word until its window turned over. Not a progress band's: each weighs its
            # own first reads (`_estimate.ReadPlan`), and one band's change may be a
            # minority's that reads in it (with the kin, a slow lying sixth emptied the
            # honest bands: 1.016x a 1 s loop over 12 seeds, alone 1.005x).
            for kin, other in self._spreads.items():
                if kin.source is hint.source and (kin == hint or kin.source is not Source.PROGRESS):
                    if other is not spread:
                        other.restart()
                    other.since = self.ended
                    self._restarted.add(kin)
                    self.changes += 1

    def news(self) -> tuple[frozenset[Hint], bool]:
        """The hints whose records started again (the model changed), and whether one came
        under suspicion, since the last call: the engine reads or plans its waiting tasks
        again (`Watcher`)."""
        news = frozenset(self._restarted), self._suspected
        self._restarted.clear()
        self._suspected = False
        return news

    def spread(self, hint: Hint) -> Spread | None:
        """The hint's record, once it has enough samples to judge."""
        spread = self._spreads.get(hint)
        return spread if spread is not None and len(spread) >= MIN_SAMPLES else None

    def best(
        self, hints: Iterable[Hint], following: Hint | None = None
    ) -> tuple[Hint, Spread] | None:
        """The hint among `hints` that has predicted this model's ends best (the narrowest
        record), if any is known; but a task `following` an estimate's record stays on it
        unless a progress band's is under `SWITCH_WIDTH` of its width."""
        hints = list(hints)
        best: tuple[Hint, Spread] | None = None
        for hint in hints:
            spread = self.spread(hint)
            if spread is not None and (best is None or spread.width() < best[1].width()):
                best = (hint, spread)
        if (
            best is None
            or following is None
            or following.source is not Source.ESTIMATE
            or best[0].source is not Source.PROGRESS
            or following not in hints
        ):
            return best
        current = self.spread(following)
        if current is None or best[1].width() < SWITCH_WIDTH * current.width():
            return best
        return following, current


def _predicted_for(hint: Hint, runner: Runner) -> float | None:
    """A running task's predicted duration on `hint`'s record, if it has one there."""
    if hint.source is Source.DURATION:
        return 1.0
    estimate = runner.estimated_time
    if hint.source is not Source.ESTIMATE or estimate is None:
        return None
    if not 0 < estimate < math.inf:
        return None  # (a plan may be made with any estimate; `observe` takes sane ones)
    if hint.band is not None and Hint.estimate(estimate) != hint:
        return None
    return estimate


@attrs.define
class Timings:
    """Every model's `ModelTiming`: one per client, shared by every wait (learned for life)."""

    _models: dict[str, ModelTiming] = attrs.field(factory=dict)

    def for_model(self, model: str | None) -> ModelTiming:
        """The model's record (tasks of no known model share one)."""
        return self._models.setdefault(model or "", ModelTiming())
