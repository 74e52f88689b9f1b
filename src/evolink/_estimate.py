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
MAX_DELAY = 30.0


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
        if task.estimated_time is not None and task.estimated_time > 0:
            self.estimated_time = task.estimated_time
        if task.progress > self._progress:
            self._progress = task.progress
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
        """The monotonic time at which to read the task next."""
        duration = self.predicted_duration()
        if self._progress_at is None and self._stalled_reads == 0:
            # First read: part-way through the server's estimate.
            return max(now + MIN_DELAY, self.started + PROBE_FRACTION * duration)
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
