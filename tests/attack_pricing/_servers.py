"""Hostile servers for the plan simulator (`_sim`): task lists by name and seed."""

from __future__ import annotations

import functools
import math
import random

from . import _sim as sim


def _uniform(a: float, b: float):
    return lambda rng: rng.uniform(a, b)


def jitter(
    seed: int,
    *,
    n: int = 1000,
    sigma: float = 0.1,
    lo: float = 2,
    hi: float = 6,
    estimates: bool = False,
) -> list[sim.Spec]:
    """Linear progress times lognormal noise at each read (never going back)."""
    return sim.make(
        n,
        seed,
        _uniform(lo, hi),
        sim.jittery,
        estimate=sim.honest_estimate if estimates else None,
        params=lambda r, d: {"sigma": sigma},
    )


def finishing(
    seed: int,
    *,
    n: int = 1000,
    share: float = 0.05,
    lo: float = 2,
    hi: float = 6,
    estimates: bool = False,
) -> list[sim.Spec]:
    """Linear to 99 % at a body of U(lo, hi) s, then 99 for an exponential tail of mean
    `share` of the body (the estimate, if any, is of the whole)."""
    rng = random.Random(seed)
    specs = []
    for k in range(n):
        body = rng.uniform(lo, hi)
        d = body * 0.995 + rng.expovariate(1 / (share * body))
        e = sim.honest_estimate(rng, d) if estimates else None
        specs.append(sim.Spec(d, e, sim.finishing_tail, seed * 100003 + k, {"body": body}))
    return specs


def pauses(seed: int, *, n: int = 1000, estimates: bool = True) -> list[sim.Spec]:
    """0-2 pauses per task, each 10-40 % of its duration, in its first 60 %."""

    def params(rng: random.Random, d: float) -> dict:
        count = rng.randint(0, 2)
        return {
            "pauses": sorted(
                (rng.uniform(0, 0.6 * d), rng.uniform(0.1, 0.4) * d) for _ in range(count)
            )
        }

    return sim.make(
        n,
        seed,
        _uniform(2, 6),
        sim.paused,
        estimate=sim.honest_estimate if estimates else None,
        params=params,
    )


def linear(
    seed: int, *, n: int = 1000, lo: float = 2, hi: float = 6, estimates: bool = True
) -> list[sim.Spec]:
    return sim.make(
        n, seed, _uniform(lo, hi), sim.linear, estimate=sim.honest_estimate if estimates else None
    )


def liar(seed: int, *, n: int = 1000, low: float = 0.3, estimates: bool = False) -> list[sim.Spec]:
    """Each task's progress reports a fixed share U(low, 1) of the truth, then jumps to
    done: its readings agree on an end up to 1 / low times too late."""
    return sim.make(
        n,
        seed,
        _uniform(2, 6),
        sim.lying_share,
        estimate=sim.honest_estimate if estimates else None,
        params=lambda r, d: {"share": r.uniform(low, 1.0)},
    )


def cohort_liar(seed: int, *, n: int = 100, estimates: bool = False) -> list[sim.Spec]:
    """A hundred started together, lognormal (median 20 s, sigma 0.5), each reporting a
    share U(0.3, 1) of the truth."""
    return sim.make(
        n,
        seed,
        lambda r: r.lognormvariate(math.log(20), 0.5),
        sim.lying_share,
        estimate=sim.honest_estimate if estimates else None,
        params=lambda r, d: {"share": r.uniform(0.3, 1.0)},
    )


def slowdown_liar(
    seed: int,
    *,
    n: int = 1000,
    at: int = 300,
    factor: float = 3.0,
    share: float = 0.5,
    estimates: bool = True,
) -> list[sim.Spec]:
    """Honest linear tasks of 2-6 s; from task `at` on the model is `factor` times slower,
    the estimates stale (of the old duration) and the progress reporting `share` of the
    truth (agreeing with itself on an end twice too late)."""
    rng = random.Random(seed)
    specs = []
    for k in range(n):
        d = rng.uniform(2, 6)
        e = sim.honest_estimate(rng, d) if estimates else None
        if k >= at:
            specs.append(
                sim.Spec(d * factor, e, sim.lying_share, seed * 100003 + k, {"share": share})
            )
        else:
            specs.append(sim.Spec(d, e, sim.linear, seed * 100003 + k))
    return specs


def slow_minority(
    seed: int, *, n: int = 1000, share: float = 0.4, frac: float = 0.15, estimates: bool = False
) -> list[sim.Spec]:
    """85 % honest linear tasks of 2-6 s; 15 % take 15-30 s and report `share` of the truth."""
    rng = random.Random(seed)
    specs = []
    for k in range(n):
        if rng.random() < frac:
            d, p, prm = rng.uniform(15, 30), sim.lying_share, {"share": share}
        else:
            d, p, prm = rng.uniform(2, 6), sim.linear, {}
        e = sim.honest_estimate(rng, d) if estimates else None
        specs.append(sim.Spec(d, e, p, seed * 100003 + k, prm))
    return specs


SERVERS = {
    "jitter10-missing": functools.partial(jitter, sigma=0.1),
    "jitter25-missing": functools.partial(jitter, sigma=0.25),
    "jitter25": functools.partial(jitter, sigma=0.25, estimates=True),
    "finishing05-missing": finishing,
    "finishing30": functools.partial(finishing, share=0.3, estimates=True),
    "pauses": pauses,
    "minutes-jitter": functools.partial(jitter, n=400, sigma=0.25, lo=60, hi=240, estimates=True),
    "minutes-jitter-missing": functools.partial(jitter, n=400, sigma=0.25, lo=60, hi=240),
    "minutes-finishing-missing": functools.partial(finishing, n=400, share=0.3, lo=60, hi=240),
    "mid-linear-missing": functools.partial(linear, n=500, lo=20, hi=60, estimates=False),
    "mid-jitter05-missing": functools.partial(jitter, n=500, sigma=0.05, lo=20, hi=60),
    "honest-linear": linear,
    "linear-missing": functools.partial(linear, estimates=False),
    "liar-missing": liar,
    "liar": functools.partial(liar, estimates=True),
    "cohort-liar": cohort_liar,
    "cohort-liar-est": functools.partial(cohort_liar, estimates=True),
    "slowdown-liar": slowdown_liar,
    "slowdown-liar-missing": functools.partial(slowdown_liar, estimates=False),
    "slow-minority-missing": slow_minority,
}


@functools.cache
def run(server: str, seed: int, variant: str, in_flight: int = 100) -> sim.Result | float:
    """`variant`: "new" (the code as it is), "no_band" (the band price undone), "loop",
    "oracle"."""
    specs = SERVERS[server](seed)
    if variant == "oracle":
        return sim.oracle(specs, in_flight=in_flight)
    if variant == "loop":
        return sim.loop(specs, in_flight=in_flight)
    band = {"new": True, "no_band": False}[variant]
    return sim.simulate(specs, band_cost=band, in_flight=in_flight)


def pooled(server: str, seeds: tuple[int, ...], variant: str) -> dict[str, float]:
    """Over `seeds`: wall / oracle (mean), reads a task, mean delay, the worst delay as a
    share of its task's duration, the worst delay (s), and wall over the loop's (worst)."""
    results = [run(server, seed, variant) for seed in seeds]
    oracles = [run(server, seed, "oracle") for seed in seeds]
    loops = [run(server, seed, "loop") for seed in seeds]
    n = len(seeds)
    return {
        "wall": sum(r.wall / o for r, o in zip(results, oracles, strict=False)) / n,
        "reads": sum(r.reads for r in results) / n,
        "delay": sum(r.delay for r in results) / n,
        "ratio": max(r.max_ratio for r in results),
        "max": max(r.max_delay for r in results),
        "vs_loop": max(r.wall / lp.wall for r, lp in zip(results, loops, strict=False)),
        "loop_delay": sum(lp.delay for lp in loops) / n,
        "loop_wall": sum(lp.wall / o for lp, o in zip(loops, oracles, strict=False)) / n,
    }


def fmt(figures: dict[str, float]) -> str:
    return (
        f"wall/oracle {figures['wall']:.4f}, reads {figures['reads']:.2f}, "
        f"delay {figures['delay']:.3f} s, worst delay {figures['max']:.2f} s "
        f"({figures['ratio']:.2f} of its duration), wall/loop {figures['vs_loop']:.4f}; "
        f"loop: wall/oracle {figures['loop_wall']:.4f}, delay {figures['loop_delay']:.3f} s"
    )
