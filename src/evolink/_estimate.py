"""When to read a task next: close to when it is likely done, not on a fixed beat.

Every read of an unfinished task costs the service an upstream query, so the estimator
aims for two reads per task: one part-way, whose progress tells how fast the task really
runs, and one just after the end that progress predicts.
"""

from __future__ import annotations

import attrs

from evolink._models import Task, TaskStatus

#: Without an estimate from the server, a task is assumed to take this long.
DEFAULT_DURATION = 20.0
#: The first read comes at this fraction of the server's estimate: early enough that a
#: task faster than estimated is not read late, late enough that progress says something.
PROBE_FRACTION = 0.55
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


@attrs.define
class ReadPlan:
    """What the SDK has seen of one task, and when it should read it next.

    Times are on the client's monotonic clock; `started` is when the create answered.
    """

    started: float
    estimated_time: float | None = None
    _progress: int = 0
    _progress_at: float | None = None
    _stalled_reads: int = 0
    _observed: bool = False

    def observe(self, task: Task, now: float) -> None:
        """Take in a read of the task made at `now`."""
        estimate = task.estimated_time
        if estimate is not None and 0 < estimate <= MAX_ESTIMATE:
            self.estimated_time = estimate
        # A task still running is at most 99% done, whatever it says.
        progress = min(max(task.progress, 0), 99)
        if progress > self._progress:
            self._progress = progress
            self._progress_at = now
            self._stalled_reads = 0
        elif self._observed:
            # Only a read after the first can stall: the first (often the create's
            # answer, at progress 0) is where the plan starts from.
            self._stalled_reads += 1
        self._observed = True

    def predicted_duration(self) -> float:
        """The task's likely total duration, from progress where seen, else the estimate."""
        if self._progress_at is not None and self._progress > 0:
            # Servers report whole percents, rounded down: p means [p, p+1), centred on p+0.5.
            return (self._progress_at - self.started) * 100.0 / (self._progress + 0.5)
        return self.estimated_time or DEFAULT_DURATION

    def next_read_at(self, now: float, status: TaskStatus = TaskStatus.PENDING) -> float:
        """The monotonic time at which to read the task next.

        Whatever the hints say, the wait is bounded: the first read comes within
        `MAX_DELAY`, and every later one within `AGE_SHARE` of the task's age (and
        `MAX_WAIT`), but no sooner than `MIN_AGE_SHARE` of it.
        """
        duration = self.predicted_duration()
        if self._progress_at is None and self._stalled_reads == 0:
            # First read: part-way through the server's estimate.
            probe = self.started + PROBE_FRACTION * duration
            return min(max(now + MIN_DELAY, probe), now + MAX_DELAY)
        age = max(0.0, now - self.started)
        latest = now + min(MAX_WAIT, max(MIN_DELAY, AGE_SHARE * age))
        earliest = now + max(MIN_DELAY, MIN_AGE_SHARE * age)
        return min(latest, max(earliest, self._after_first(now, duration, status)))

    def _after_first(self, now: float, duration: float, status: TaskStatus) -> float:
        if self._stalled_reads == 0:
            # Progress moved on the last read: aim just past the end it predicts, or, if
            # that is already behind us, at the latest end the progress allows.
            end = self.started + duration * (1.0 + END_MARGIN) + MIN_DELAY
            if end > now + MIN_DELAY:
                return end
            left = (100 - self._progress) / 100.0 * duration
            return now + max(MIN_DELAY, min(left, MAX_DELAY))
        # No progress since the last read (queued, or stalled): back off gently.
        step = max(MIN_DELAY, 0.05 * duration)
        if status is TaskStatus.PROCESSING:
            step = max(MIN_DELAY, 0.02 * duration)
        return now + min(MAX_DELAY, step * 2.0 ** min(self._stalled_reads - 1, 8))
