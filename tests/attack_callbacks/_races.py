"""One task, one genuine callback, one waiting party: when does the party learn the end?

`race(...)` runs a scenario on a fresh virtual clock and says when the party woke, and the
latest it may wake by the docs' promise: a callback makes the task due at once, the one
read in flight (never two of a task) finishes first, then one read confirms it, plus at
most a batch request's wait for company (0.25 s) and a little slack. So

    bound = max(start, the end of a read of the task in flight at start) + latency + 0.3

where `start` is when the party can first know of both the task and the callback (the
callback's arrival, or the create's answer if that comes later). Not "at the next planned
read plus `callback_grace`", which is tens of seconds away in these scenarios (the tasks'
`estimated_time` is 60 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evolink.testing import VirtualClock

from ._harness import PUBLIC, app, plain
from ._server import FakeEvolink, Fate

#: A batch request may wait this long for others to join a due read (BATCH spacing), plus slack.
SLACK = 0.3
MODES = ("wait-id", "wait-task", "client-wait", "client-wait-id", "feed", "start-batch")


@dataclass
class Race:
    mode: str
    end: float
    callback_at: float
    created_at: float
    woke_at: float
    bound: float
    status: str
    reads: list[tuple[float, float | None, str | None]] = field(default_factory=list)

    @property
    def late(self) -> bool:
        return self.woke_at > self.bound + 1e-9

    def __str__(self) -> str:
        return (
            f"{self.mode}: task ended {self.end:.3f}, callback {self.callback_at:.3f}, create "
            f"answered {self.created_at:.3f}, woke {self.woke_at:.3f} > bound {self.bound:.3f}; "
            f"reads (sent, answered, saw) {self.reads}"
        )


async def race(
    mode: str,
    *,
    end: float,
    delay: float = 0.02,
    create_latency: float = 0.05,
    first_latency: float = 0.3,
    latency: float = 0.3,
    batch_endpoint: bool = True,
) -> Race:
    """Run one scenario: the task ends at `end`, its callback lands `delay` later."""
    server: FakeEvolink

    def read_latency(read: object) -> float:
        return first_latency if server.reads and read is server.reads[0] else latency

    server = FakeEvolink(
        VirtualClock(),
        fate=Fate(duration=end, estimated_time=60),
        read_latency=read_latency,
        create_latency=create_latency,
        batch_endpoint=batch_endpoint,
    )
    callback_at = end + delay
    woke: dict[str, float] = {}
    status = "?"
    if mode == "feed":
        async with plain(server) as env:
            async with env.client.batch(
                callback_url=f"{PUBLIC}/hooks",
                on_outcome=lambda o: woke.setdefault("at", env.now()),
            ) as batch:

                def on_create(task: object) -> None:
                    async def deliver() -> None:
                        await env.sleep_until(callback_at)
                        batch.feed(server.final_body(server.order[0]))

                    env.tg.start_soon(deliver)

                server.on_create.append(on_create)
                await batch.submit_all(["a lighthouse"])
            outcome = batch.report().outcomes[0]
            status = outcome.kind.value
    else:
        async with app(server) as env:
            env.genuine_callbacks(delay=delay)
            if mode == "start-batch":
                assert env.integration is not None
                batch_id = env.integration.start_batch(
                    ["a lighthouse"], on_outcome=lambda o: woke.setdefault("at", env.now())
                )
                batch = env.integration.batch(batch_id)
                while not batch.finished:
                    await env.clock.sleep(0.05)
                status = batch.report().outcomes[0].kind.value
            else:
                assert env.integration is not None
                task = await env.client.images.generate(
                    "a lighthouse", callback_url=env.integration.callback_url()
                )
                waits = {
                    "wait-id": lambda: env.integration.wait(task.id),
                    "wait-task": lambda: env.integration.wait(task),
                    "client-wait": lambda: env.client.tasks.wait(task),
                    "client-wait-id": lambda: env.client.tasks.wait(task.id),
                }
                done, woke["at"] = await env.timed(waits[mode]())
                status = done.status.value
    task_id = server.order[0]
    created_at = server.creates[0][0] + create_latency
    start = max(callback_at, created_at)
    in_flight = [
        r.answered
        for r in server.reads_of(task_id)
        if r.sent <= start and r.answered is not None and r.answered > start
    ]
    bound = max([start, *in_flight]) + latency + SLACK
    return Race(
        mode=mode,
        end=end,
        callback_at=callback_at,
        created_at=created_at,
        woke_at=woke.get("at", float("inf")),
        bound=bound,
        status=status,
        reads=[
            (
                round(r.sent, 3),
                None if r.answered is None else round(r.answered, 3),
                r.statuses.get(task_id),
            )
            for r in server.reads_of(task_id)
        ],
    )
