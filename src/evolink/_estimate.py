"""When to read a task next: close to when it is likely done, not on a fixed beat.

Every read of an unfinished task costs the service an upstream query, so the plan aims
for few reads per task, the last just after the end. Until the engine has seen how a
model's hints hold up (`_timing`), it trusts them: one read part-way, whose progress tells
how fast the task runs, and one just after the end that progress predicts; with no hint
at all, reads come a bounded share of the task's age apart. Once tasks of the model have
ended, reads come where the best schedule for the end's distribution (`_timing.Schedule`,
from the hint that has predicted best) puts them, given the task's age; one task in a few
probes earlier (see docs/explanation/waiting.md).
"""

from __future__ import annotations

import math

import attrs

from evolink._models import Task, TaskStatus
from evolink._timing import (
    DURATION,
    ESTIMATE,
    WEIGHED_BELOW_BAND,
    Ending,
    Hint,
    ModelTiming,
    Source,
    Spread,
)

#: Without an estimate from the server, a task is assumed to take this long.
DEFAULT_DURATION = 20.0
#: The first read comes at this fraction of the server's estimate: early enough that a
#: task faster than estimated is not read late, late enough that progress says something.
PROBE_FRACTION = 0.55
#: A read of a running task at progress 0 from this share of its estimate on counts
#: towards its model showing none (`ModelTiming.shows_none`): queued tasks show 0 too,
#: and so may the first part of one whose progress starts slowly.
STILL_FROM = 0.3
#: Read this long after the predicted end (a fraction of the duration), so the read that
#: was meant to find the task done does.
END_MARGIN = 0.01
MIN_DELAY = 0.02
#: The longest wait for a read that is not aimed at a predicted end (a backoff, a first
#: read whatever the estimate says).
MAX_DELAY = 30.0
#: The longest wait between two reads of a task, whatever is predicted.
MAX_WAIT = 300.0
#: An estimate beyond this is no estimate (a server's 86400, 1e9 or Infinity).
MAX_ESTIMATE = 6 * 3600.0
#: A read after the first comes at most this share of the task's age later: a prediction
#: drawn from slow or stuck progress can delay seeing the end by at most about the age.
AGE_SHARE = 1.0
#: ...and at least this share of its age later (and `MIN_DELAY`): progress that makes no
#: sense (above 100 while processing) must not turn into a storm of reads.
MIN_AGE_SHARE = 0.02
#: Two progress readings whose predicted ends agree within this share are trusted to that
#: end (within `MAX_WAIT`), past the age bound, where nothing says otherwise: progress
#: that runs steadily (`ReadPlan._corroborated`)...
AGREE_SHARE = 0.1
#: ...once the model's records judge its progress, only where the server's estimate puts
#: the end within this share of where they do.
CORROBORATE = 0.25

#: Knowing nothing of a model and given no hint: the first read this long after the
#: create, then each a share of the task's age later (`ReadCosts.cold_share`).
COLD_FIRST = 1.0
#: A probe (`ReadCosts.probe_every`) reads up to the record's 10-90 % range below the
#: schedule's first read, and at least this far (in log: about a tenth of the duration).
PROBE_SPAN = 0.1
#: A record of fewer ends than this is probed wherever a task first plans on it.
PROBE_YOUNG = 64
#: Past this quantile of the end, a task is in the tail the record has hardly seen: read a
#: bounded share of its age apart.
TOP = 0.995
#: A record a task outlived plans it again once it gives the task this many times the
#: chance of running on that it gave then (`ReadPlan._outlived`).
READMIT = 4.0
#: ...and outlives one only where it still places the task in its body: in its tail the
#: next reads come soon anyway, and a record that wobbles (the last 160 ends of a steady
#: stream) does not send a task nearly done to reads a share of its age apart.
OUTLIVED_BELOW = 0.9
#: A record is passed over for a task where, of the model's recent tasks that reached the
#: task's place on it, this share or more still run beyond what it foresaw for them
#: (`ReadPlan._unknown`): its ends are the fastest of a cohort...
UNFORESEEN = 0.5
#: ...counting those up to this far past its top (log): not stuck tasks, nor a slow mode.
COHORT_SPAN = 0.3
#: A progress band's record this narrow (10-90 % of its ends within about 10 %) prices a
#: read at `ReadCosts.band_cost`: there a read before the end buys little, and most of
#: the record's width is cells no read has split (`GET_COSTS`). Where a band's spread is
#: real (noisy progress, a random tail after 99 %), a read keeps the common price: priced
#: so, noisy progress lost 1.3 % of wall and a finishing tail 1.0 % (helper-50).
BAND_COST_WIDTH = 0.1
#: The hand-written loop a user would otherwise write reads every `LOOP_STEP` seconds, so
#: it sees a task done half of one late on average. Where a hint says where to read, a
#: learned schedule whose mean delay would be over `LOOP_DELAY` (a margin below that: the
#: record is an estimate, and a read takes its latency) reads more: never more often than
#: the loop, nor more than `LOOP_READS` times the read budget (`Spread.within_loop`).
LOOP_STEP = 1.0
LOOP_DELAY = 0.4
LOOP_READS = 3.0
#: ...and its reads within the record may come this close (under `MIN_AGE_SHARE` of an age
#: past 25 s): a task of minutes whose end a progress reading puts within a second is
#: not read 2 s apart there. Past the record's top the age floor holds again.
NEAR_FLOOR = 0.5


@attrs.frozen
class ReadCosts:
    """How dear a read is, which sets how finely the learned schedule cuts the end's range.

    `read_cost`: what a read is worth in delay, as a share of the median duration (the
    learned schedule spends least on reads and delay together, `_timing.Schedule`);
    `reads`: reads a task may cost on the learned schedule, from its start (reads are
    made dearer until it does); `tail_share`: past the record, or with nothing known
    (`cold_share`), the wait before a re-read as a share of the task's age;
    `probe_every`: one task in this many reads first below the schedule, so that the
    record learns how early tasks end; `longest`: the longest wait between two reads,
    if any, or `tail_share` of the age once that is longer; `loop`: whether the learned
    schedule is held within a 1 s loop's delay (`LOOP_DELAY`); `band_cost`: the price
    of a read on a progress band's record, if not `read_cost` (`ReadPlan._price`).
    """

    read_cost: float
    reads: float | None
    tail_share: float
    cold_share: float
    probe_every: int
    longest: float | None = None
    loop: bool = True
    band_cost: float | None = None


#: One GET per read: each read is a request. A read priced at 0.8 % of the median (0.5 %
#: until 2026-12-04) spends fewer reads at no cost in wall on the matrix's servers: the
#: progress records' schedules no longer read just before an end they predict to the
#: percent, then once more after it (docs/explanation/waiting.md).
#: On a narrow progress band's record a read is priced three times as high (since
#: 2026-12-05, `BAND_COST_WIDTH`): such a record is cut into cells only where reads fell,
#: and it spreads the mass of a cell no read has split evenly over it, so that a band
#: whose readings predict the end to the percent (linear progress, in whole percents)
#: still holds a few percent of its ends well before it; at the lower price its schedule
#: read there, before the end, on a third of the tasks (estimates missing: 2.50 reads a
#: task to 2.42, no wall lost, in the plan simulator).
GET_COSTS = ReadCosts(
    read_cost=0.008,
    reads=2.3,
    tail_share=0.25,
    cold_share=0.5,
    probe_every=4,
    band_cost=0.024,
)
#: Batch reads: reads ride along in shared requests, so they can come closer together.
BATCH_COSTS = ReadCosts(
    read_cost=0.003,
    reads=None,
    tail_share=0.1,
    cold_share=0.2,
    probe_every=2,
)
#: A batch's last few tasks, with nothing left to create: the batch ends when the last of
#: them is seen done, so a second of delay there costs the whole batch a second, not a
#: slot's share of one; reads are priced that much lower, and come at least once a second,
#: as a 1 s loop's do, or a twentieth of the age apart once that is longer (from 20 s on:
#: a stuck last task is no storm); see docs/explanation/waiting.md.
HURRY_COSTS = ReadCosts(
    read_cost=0.002,
    reads=None,
    tail_share=0.05,
    cold_share=0.1,
    probe_every=2,
    longest=1.0,
)


@attrs.define
class ReadPlan:
    """What the SDK has seen of one task, and when it should read it next.

    Times are on the client's monotonic clock; `started` is when the create answered.
    """

    started: float
    estimated_time: float | None = None
    #: The model's record; None: the hints are trusted as they are (no learning).
    timing: ModelTiming | None = None
    costs: ReadCosts = GET_COSTS
    _progress: int = 0
    _progress_at: float | None = None
    _stalled_reads: int = 0
    _observed: bool = False
    _reads: int = 0  # reads after the first look (the create's answer, or the first read)
    _running_at: float | None = None  # the last read that saw the task running
    #: Every progress reading's bands, predicted duration, and where in the band it fell
    #: (`Hint.covariate`), for the records at the end: each reading is judged, not only a
    #: band's last (which, nearest the end, would make the band look better than it is).
    _readings: list[tuple[Hint, float, float]] = attrs.field(init=False, factory=list)
    #: Each record the task has planned on, and its read count when it first did.
    _planned_on: dict[Hint, int] = attrs.field(init=False, factory=dict)
    _reads_probed: int = attrs.field(init=False, default=-9)  # the read count at a probe
    _agreed: bool = False  # the last two progress readings predicted the same end
    #: For a task that probes: where its first read falls below the schedule's (0-1).
    _probe: float | None = attrs.field(init=False, default=None)
    #: The task's own draw, for which of the record's schedules it follows (`Mix`).
    _draw: float = attrs.field(init=False, default=0.0)
    #: The hint whose record planned the next read (None: no record did).
    _on: Hint | None = attrs.field(init=False, default=None)
    #: Whether the first read after the first look came (the record that planned it
    #: weighs it: `_timing.Spread.weigh`).
    _first_seen: bool = attrs.field(init=False, default=False)
    #: The progress band whose record planned the next read, where it is the first read
    #: that record planned for the task, with the duration it predicted and the point
    #: (its `x`) below which it gave a done under `WEIGHED_BELOW_BAND`, as it planned:
    #: the record weighs a read that falls there (`observe`).
    _judging: tuple[Hint, float, float] | None = attrs.field(init=False, default=None)
    #: How many of the model's tasks had ended when this one started (`Ending.born`).
    _born: int = attrs.field(init=False, default=0)
    #: Where a deep probe puts the task's first read (`Spread.deep_probe`), once granted.
    _deep: float | None = attrs.field(init=False, default=None)
    #: The task's survival as each record it planned on has told it, read by read
    #: (`_outlived`): the age last seen running (as the record's `x`), the product, and
    #: the record's own survival at the age when the task outlived it (None: it has not).
    _told: dict[Hint, tuple[float, float, float | None]] = attrs.field(init=False, factory=dict)
    #: The number its model gave it as it started (`ModelTiming.enter`).
    _number: int = attrs.field(init=False, default=-1)

    def __attrs_post_init__(self) -> None:
        if self.timing is not None:
            self._number = self.timing.enter(self)
            self._born = self.timing.ended
            self._probe = self.timing.probes(self.costs.probe_every)
            self._draw = self.timing.draw()

    def observe(self, task: Task, now: float) -> None:
        """Take in a read of the task made at `now`."""
        if self._observed and not self._first_seen:
            self._first_seen = True
            self._judge_first_read(task, now)
        elif self._judging is not None and self.timing is not None:
            hint, predicted, below = self._judging
            x = math.log(max(now - self.started, 1e-9) / predicted)
            if x < below:
                self.timing.weigh(hint, x, done=task.is_terminal, below=WEIGHED_BELOW_BAND)
        self._judging = None
        if task.is_terminal:
            self._learn_end(now)
            return
        self._running_at = now
        self._reads += self._observed
        estimate = task.estimated_time
        if estimate is not None and 0 < estimate <= MAX_ESTIMATE:
            self.estimated_time = estimate
        self._count_still(task, now)
        # A task still running is at most 99% done, whatever it says. A reading at age 0
        # (a create's answer already part-way: a replayed create) says nothing of its
        # speed: progress counts only from `MIN_DELAY` of age on.
        progress = min(max(task.progress, 0), 99)
        if progress > self._progress and now - self.started >= MIN_DELAY:
            before = self.predicted_duration() if self._progress else None
            self._progress = progress
            self._progress_at = now
            self._stalled_reads = 0
            after = self.predicted_duration()
            self._agreed = before is not None and abs(after - before) <= AGREE_SHARE * after
            for hint in Hint.progress_all(progress):
                self._readings.append((hint, after, hint.covariate(progress)))
        elif self._observed and progress <= self._progress:
            # Only a read after the first can stall: the first (often the create's
            # answer, at progress 0) is where the plan starts from.
            self._stalled_reads += 1
        self._observed = True

    def _judge_first_read(self, task: Task, now: float) -> None:
        """The first read after the first look: the record that planned it weighs it; one
        planned on the hints alone before the estimate's end tells the model whether it
        caught the task done early (`ModelTiming.shows_none`). Later reads are weighed
        only where a progress band's record plans its first for the task (`_judging`):
        the band's own first look at it, as this is the estimate's."""
        if self._on is not None:
            self._weigh(_pooled(self._on), now, done=task.is_terminal)
            return
        estimate = self.estimated_time
        if self.timing is not None and estimate is not None and now - self.started < estimate:
            self.timing.saw_early(done=task.is_terminal)

    def _count_still(self, task: Task, now: float) -> None:
        """A read of the task running at 0 well into its estimate counts towards its model
        showing no progress (`ModelTiming.shows_none`)."""
        if (
            self.timing is not None
            and self._observed
            and task.status is TaskStatus.PROCESSING
            and task.progress <= 0
            and self.estimated_time is not None
            and now - self.started >= STILL_FROM * self.estimated_time
        ):
            self.timing.saw_still()

    def _weigh(self, hint: Hint, now: float, *, done: bool) -> None:
        """Let the record of `hint`, which planned this read, weigh what it found."""
        timing = self.timing
        spread = None if timing is None else timing.spread(hint)
        if timing is None or spread is None:
            return
        x = math.log(max(now - self.started, 1e-9) / self._predicted(hint, spread))
        timing.weigh(hint, x, done=done)

    def _predicted(self, hint: Hint, spread: Spread) -> float:
        """The duration `hint` predicts for the task, as its record's `x` is measured."""
        if hint.source is Source.DURATION:
            return 1.0
        if hint.source is Source.ESTIMATE:
            return self.estimated_time or 1.0
        # The band's trend: how its linear extrapolation errs at this reading.
        return self.predicted_duration() * math.exp(spread.trend(hint.covariate(self._progress)))

    def earliest(self, now: float) -> float:
        """The soonest the task may be read again: never a storm (see `next_read_at`)."""
        last = self.started if self._running_at is None else self._running_at
        return max(now, last + max(MIN_DELAY, MIN_AGE_SHARE * (last - self.started)))

    def looks_part_way(self) -> bool:
        """Whether the next read is the hints' look part-way through the estimate, to see
        the task's progress (`PROBE_FRACTION`): no record planned it, and it is the
        first after the first look."""
        return (
            self._observed
            and not self._first_seen
            and self._on is None
            and self._progress_at is None
            and self.estimated_time is not None
        )

    def follows(self, hints: frozenset[Hint]) -> bool:
        """Whether the task's next read was planned on the record of one of `hints`."""
        return self._on in hints

    def predicted_duration(self) -> float:
        """The task's likely total duration, from progress where seen, else the estimate."""
        if self._progress_at is not None and self._progress > 0:
            # Servers report whole percents, rounded down: p means [p, p+1), centred on p+0.5.
            return (self._progress_at - self.started) * 100.0 / (self._progress + 0.5)
        return self.estimated_time or DEFAULT_DURATION

    def _learn_end(self, now: float) -> None:
        if self.timing is None:
            return
        predicted = [(DURATION, 1.0)]
        if self.estimated_time is not None:
            predicted.append((ESTIMATE, self.estimated_time))
            predicted.append((Hint.estimate(self.estimated_time), self.estimated_time))
        low = 0.0 if self._running_at is None else self._running_at - self.started
        ending = Ending(
            low=low,
            high=now - self.started,
            predicted=tuple(predicted),
            readings=tuple(self._readings),
            born=self._born,
            planned_on=None if self._on is None else self._on.source,
            task=self._number,
        )
        self.timing.learn(ending)
        self.timing = None  # one end per task

    def _hints(self) -> list[Hint]:
        hints = [DURATION]
        if self.estimated_time is not None:
            hints.extend((ESTIMATE, Hint.estimate(self.estimated_time)))
        if self._progress_at is not None and self._progress > 0:
            hints.extend(Hint.progress_all(self._progress))
        return hints

    def next_read_at(self, now: float, status: TaskStatus = TaskStatus.PENDING) -> float:
        """The monotonic time at which to read the task next.

        Whatever the hints or the record say, the wait is bounded: the first read comes
        within `MAX_DELAY`, and every later one within `AGE_SHARE` of the task's age (within
        `MAX_WAIT` where the last two progress readings agree on the end and nothing says
        otherwise: `_corroborated`), always within
        `MAX_WAIT`, but no sooner than `MIN_AGE_SHARE` of the age (and `MIN_DELAY`); and
        within `ReadCosts.longest`, where the costs have one, or their `tail_share` of the
        age once that is longer.
        """
        at = self._next_read_at(now, status)
        longest = self.costs.longest
        if longest is not None:
            age = max(0.0, now - self.started)
            at = min(at, now + max(longest, MIN_DELAY, self.costs.tail_share * age))
        return at

    def _next_read_at(self, now: float, status: TaskStatus) -> float:
        self._judging = None
        trusted = self._trusted(now, status)
        if self.timing is None:
            return trusted
        age = max(0.0, now - self.started)
        choice, outlived = self._choose(now)
        self._on = None if choice is None else choice[0]
        if choice is None:
            if self.estimated_time is None and not self._progress:
                # Nothing known and no hint: a bounded share of the age apart (the hints'
                # own plan, with nothing to go on, would read at fixed steps for ever).
                cold = self.started + max(COLD_FIRST, (1.0 + self.costs.cold_share) * age)
                trusted = max(now + MIN_DELAY, min(cold, now + MAX_WAIT))
            return trusted
        hint, spread = choice
        at, near = self._learned(now, age, hint, spread, trusted, outlived=outlived)
        return self._bounded(now, age, at, near=near)

    def _bounded(self, now: float, age: float, at: float, *, near: bool = False) -> float:
        if self._reads == 0 and self._progress_at is None:
            return min(max(at, now + MIN_DELAY), now + MAX_DELAY)
        latest = now + self._longest_wait(age)
        floor = MIN_AGE_SHARE * age
        if near:
            floor = min(floor, NEAR_FLOOR)
        earliest = now + max(MIN_DELAY, floor)
        return min(latest, max(earliest, at))

    def _learned(
        self,
        now: float,
        age: float,
        hint: Hint,
        spread: Spread,
        trusted: float,
        *,
        outlived: bool = False,
    ) -> tuple[float, bool]:
        """At the point the record's best schedule (`Schedule`) reads next, given the age
        (past the record, as below; `trusted`: the hints' own plan), and whether that
        schedule is held to a 1 s loop's delay (its reads may come `NEAR_FLOOR` apart)."""
        predicted = self._predicted(hint, spread)
        costs = self.costs
        x = math.log(max(age, 1e-9) / predicted)
        done = spread.cdf(x)
        schedule = spread.schedule(self._price(hint, spread), costs.reads, self._draw)
        held = costs.loop and self._held_to_loop(hint)
        if held:
            most = None if costs.reads is None else LOOP_READS * costs.reads
            schedule = spread.within_loop(
                schedule, LOOP_DELAY / predicted, LOOP_STEP / predicted, most
            )
        at = schedule.next_read(x, done, schedule.moment(x))
        tail = now + costs.tail_share * age
        if outlived:
            at = x  # the record has not described this task: as past its top
        if held and done >= TOP:
            # Held to the loop, past the record's top: a wait of the time since it (from
            # half a second), so that a task just past it is seen within its overrun,
            # not a quarter of its age later (minutes, on a task of minutes).
            top = self.started + predicted * math.exp(spread.quantile(TOP))
            tail = min(tail, now + max(NEAR_FLOOR, now - top))
        if at <= x:
            # Past what the record has seen: a bounded share of the age, or sooner where
            # the task's own progress predicts its end (a young record's top may be below
            # a task whose progress says it is nearly done).
            if self._progress_at is not None and self._stalled_reads == 0:
                tail = min(tail, trusted)
            return tail, held
        if done >= TOP:
            # Near the top: a bounded share of the age, or the record's last end if
            # sooner (a task near the top of a bounded record is nearly done).
            return min(tail, self.started + predicted * math.exp(at)), held
        # The read count at which the task first planned on this record.
        first = self._planned_on.setdefault(hint, self._reads)
        self._judging = self._judged_by(hint, spread, first, predicted)
        again = len(spread) < PROBE_YOUNG and self._reads == first == self._reads_probed + 1
        if self._reads == 0 and self._deep is None and not self._first_seen:
            pooled = self.timing.spread(_pooled(hint)) if self.timing is not None else None
            self._deep = None if pooled is None else pooled.deep_probe(x)
        if self._deep is not None and self._reads == 0 and self._deep > x:
            # The record is under suspicion: this task reads first where it puts only a
            # few of the ends (if the model changed, it is done there).
            at = min(at, self._deep)
        elif self._probe is not None and (self._reads == 0 or again) and not spread.fitted():
            self._reads_probed = self._reads
            # A probing task reads first somewhere below the schedule's first read:
            # only reads that early can tell the record how early tasks end (the
            # schedule's own reads cannot), so that it does not drift late. At least
            # `PROBE_SPAN` below: a sharp record is not thereby blind to earlier ends.
            # A young record is probed where a task first plans on it, not only at the
            # task's first read: a progress band's is reached after a read or two, and
            # unprobed it may settle on the hint's word while the ends are far earlier
            # (every task read just after the predicted end, every interval holding it).
            lowest = max(x, at - max(spread.width(), PROBE_SPAN))
            at = lowest + self._probe * (at - lowest)
        return self.started + predicted * math.exp(at), held

    def _judged_by(
        self, hint: Hint, spread: Spread, first: int, predicted: float
    ) -> tuple[Hint, float, float] | None:
        """The band whose record weighs the next read (`_judging`): `hint`'s, where its
        record plans its first read of the task (`first`: the read count when the task
        first planned on it), after the task's first. Where the read falls is judged on
        the record as it planned it: asked again at the read, it would be rebuilt at
        other times than it is now, and its fits with it.

        So a model whose progress comes to mean less (3x slower, its progress now
        reporting half the truth) is seen to have changed. Unweighed, each band's record
        kept its old ends until 160 new ones pushed them out, the tasks meanwhile read up
        to their age apart: 1.062x a 1 s loop over 12 seeds (helper-50's
        slowdown-liar-missing); weighed, 1.001x."""
        if hint.source is Source.PROGRESS and self._reads == first > 0:
            return hint, predicted, spread.quantile(WEIGHED_BELOW_BAND)
        return None

    def _price(self, hint: Hint, spread: Spread) -> float:
        """What a read on `hint`'s record costs: `ReadCosts.band_cost` on a narrow progress
        band's (`BAND_COST_WIDTH`)."""
        costs = self.costs
        if hint.source is not Source.PROGRESS or costs.band_cost is None:
            return costs.read_cost
        return costs.band_cost if spread.width() < BAND_COST_WIDTH else costs.read_cost

    def _choose(self, now: float) -> tuple[tuple[Hint, Spread] | None, bool]:
        """The record to plan on (`ModelTiming.best`), passing over those the task has
        outlived (`_outlived`) and those that have seen only a cohort's fastest
        (`_unknown`), and whether the one chosen is outlived (no other is left). A record
        passed over as a cohort's is planned on where no other is left: reads a share of
        the age apart instead lost more than they saved (a rare slow mode's first ends)."""
        if self.timing is None:
            return None, False
        hints = self._hints()
        choice = self.timing.best(hints, self._on)
        age = max(0.0, now - self.started)
        seen = age if self._running_at is None else self._running_at - self.started
        outlived: tuple[Hint, Spread] | None = None
        unknown: tuple[Hint, Spread] | None = None
        while choice is not None:
            hint, spread = choice
            hints = [h for h in hints if h != hint]
            after = self.timing.best(hints, self._on)
            if self._outlived(hint, spread, seen):
                outlived = outlived or choice
            elif after is not None and self._unknown(hint, spread, age, now):
                unknown = unknown or choice  # (with no other record, asked for nothing)
            else:
                return choice, False
            choice = after
        if unknown is not None:
            return unknown, False
        return outlived, outlived is not None

    def _outlived(self, hint: Hint, spread: Spread, seen: float) -> bool:
        """Whether the task, seen running at age `seen`, has outlived what the record of
        `hint` gave it, read by read.

        The task's survival, as the record told it, is the product over its reads of
        each step's chance of surviving (from one read that saw it running to the
        next). On a record that stays put the product is the record's own survival at
        the age, never under 10 % below `OUTLIVED_BELOW`: no task outlives it. On one that
        moves with the clock it is not: with many tasks started together, the record of
        the recent ends holds durations just above each running task's age, read after
        read; it says "ends within a moment" each time (reads 2 % of the age apart:
        1,000 waits read each task 12-14 times), and the task lives on.

        An outlived record is taken up again once it gives the task `READMIT` times the
        chance of running on that it gave when the task outlived it: it has learned
        longer tasks since (a model that slowed down), and no longer moves with the task."""
        x = math.log(max(seen, 1e-9) / self._predicted(hint, spread))
        done = spread.cdf(x)
        if done >= TOP:
            # Past the top the record says nothing (`_learned` reads a share of the age
            # apart): should it grow past the task again, its word starts afresh.
            self._told.pop(hint, None)
            return False
        told = self._told.get(hint)
        survival, floor = 1.0 - done, None
        if told is not None and told[0] <= x:
            before = spread.cdf(told[0])
            step = 1.0 if before >= 1.0 else (1.0 - done) / (1.0 - before)
            survival, floor = told[1] * min(1.0, max(0.0, step)), told[2]
        if floor is not None and 1.0 - done >= READMIT * floor:
            survival, floor = 1.0 - done, None
        outlived = survival < 1.0 - TOP and done < OUTLIVED_BELOW
        if outlived and floor is None:
            floor = 1.0 - done
        self._told[hint] = (x, survival, floor)
        return outlived

    def _unknown(self, hint: Hint, spread: Spread, age: float, now: float) -> bool:
        """Whether the record of `hint` has seen only the fastest of the tasks like this
        one, now `age` old: of the model's recent tasks that reached its place on the
        record, `UNFORESEEN` or more still run beyond what the record foresaw for them at
        their ages (`ModelTiming.unforeseen`).

        A thousand waits started together end fastest first: the record of the last ends
        holds durations just above every running task's age, and reads of each chased it
        (2-3 % of the age apart). In a steady stream few of the tasks that reached a
        place still run: those started just before."""
        timing = self.timing
        if timing is None or age <= 0:
            return False
        x = math.log(age / self._predicted(hint, spread))
        top = spread.quantile(TOP)
        if x >= top:
            return False  # past the top: read a share of the age apart anyway
        cap = round(top + COHORT_SPAN, 2)  # one per record's build, not per task
        # Asked from the record's median at most: tasks started together all reach a
        # place together, and at their own place the record foresees them all running.
        since = min(x, spread.quantile(0.5))
        return timing.unforeseen(hint, since, cap, now) >= UNFORESEEN

    def _held_to_loop(self, hint: Hint) -> bool:
        """Whether the schedule on `hint`'s record is held within a 1 s loop's delay: a
        progress band's, or an estimate's where the task has shown progress or the model's
        tasks show none (else the next read may show some, and the band's record plans
        from there: the delay that counts is its). Not the raw durations': with no hint
        to aim by, a loop's delay costs about a loop's reads (docs/explanation/waiting.md)."""
        if hint.source is Source.PROGRESS:
            return True
        if hint.source is not Source.ESTIMATE:
            return False
        timing = self.timing
        shown = self._progress_at is not None  # its bands were weighed, and lost to this
        return shown or timing is None or not timing.shows_progress()

    def _trusted(self, now: float, status: TaskStatus) -> float:
        """The plan from the hints as they are (before anything is learned)."""
        duration = self.predicted_duration()
        if self._progress_at is None and self._stalled_reads == 0:
            # First read: part-way through the server's estimate, to see its progress,
            # or just past its end where the model's tasks show none.
            probe = self.started + PROBE_FRACTION * duration
            timing = self.timing
            if self.estimated_time is not None and timing is not None and timing.shows_none():
                probe = self.started + duration * (1.0 + END_MARGIN) + MIN_DELAY
            return min(max(now + MIN_DELAY, probe), now + MAX_DELAY)
        age = max(0.0, now - self.started)
        latest = now + self._longest_wait(age)
        earliest = now + max(MIN_DELAY, MIN_AGE_SHARE * age)
        return min(latest, max(earliest, self._after_first(now, duration, status)))

    def _longest_wait(self, age: float) -> float:
        """The longest wait for the next read: `AGE_SHARE` of the age, or `MAX_WAIT` where
        the last two progress readings agree on the end and nothing says otherwise
        (`_corroborated`)."""
        if self._agreed and self._stalled_reads == 0 and self._corroborated():
            return MAX_WAIT
        return min(MAX_WAIT, max(MIN_DELAY, AGE_SHARE * age))

    def _corroborated(self) -> bool:
        """Whether two agreeing progress readings are trusted past the age bound: no
        record judges the task's progress bands yet (the hints as they are: a task of
        minutes first read at 30 s is not read at 60, 120, 240 and 480 s), or the server's
        estimate puts the end where they do (`CORROBORATE`).

        Readings that agree with each other say nothing of the truth: a task's progress
        may report a steady share of it (a stage counter that jumps to done), and a read
        at the end the readings predict finds such a task done whenever it ended, so
        that their bands' records never learn the lie. Trusted on their own word, a slow
        sixth of the tasks whose progress said 2.5 times their duration were seen 1.45
        durations late and the batch ran at 1.47x a 1 s loop (helper-50); held to the
        age, 1.01x."""
        timing = self.timing
        if timing is None:
            return True
        if all(timing.spread(h) is None for h in Hint.progress_all(self._progress)):
            return True
        estimate = self.estimated_time
        if estimate is None:
            return False
        predicted = self.predicted_duration()
        return abs(predicted - estimate) <= CORROBORATE * predicted

    def _after_first(self, now: float, duration: float, status: TaskStatus) -> float:
        end = self.started + duration * (1.0 + END_MARGIN) + MIN_DELAY
        ahead = end > now + MIN_DELAY
        if self._stalled_reads == 0:
            # Progress moved on the last read: aim just past the end it predicts, or, if
            # that is already behind us, at the latest end the progress allows.
            if ahead:
                return end
            left = (100 - self._progress) / 100.0 * duration
            return now + max(MIN_DELAY, min(left, MAX_DELAY))
        if ahead and status is TaskStatus.PROCESSING and self._progress == 0:
            # Running but never showing progress (a server that reports none): the
            # estimate is all there is, so read at its end before backing off.
            return end
        # No progress since the last read (queued, or stalled): back off gently.
        step = max(MIN_DELAY, 0.05 * duration)
        if status is TaskStatus.PROCESSING:
            step = max(MIN_DELAY, 0.02 * duration)
        return now + min(MAX_DELAY, step * 2.0 ** min(self._stalled_reads - 1, 8))


def _pooled(hint: Hint) -> Hint:
    """The record that weighs first reads planned on `hint`'s (`_timing.Spread.weigh`): an
    estimate's bands hold too few ends each to weigh them, the model's estimates together
    do (with the same predicted duration, so the same `x`)."""
    return ESTIMATE if hint.source is Source.ESTIMATE else hint
