"""`python -m evolink.testing`: serve the simulator over HTTP."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from evolink.testing._faults import Faults
from evolink.testing._serve import serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evolink.testing",
        description="Serve the Evolink simulator (any sk-evo-... key works).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--balance", default="10000", help="credits")
    parser.add_argument(
        "--durations",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        default=(8.0, 30.0),
        help="task durations, seconds",
    )
    parser.add_argument("--max-concurrent-tasks", type=int)
    parser.add_argument("--max-requests-per-second", type=float)
    parser.add_argument("--retry-after", type=float)
    parser.add_argument("--result-ttl", type=float, default=86_400.0)
    parser.add_argument("--no-batch-endpoint", action="store_true")
    parser.add_argument("--no-idempotency", action="store_true")
    parser.add_argument("--allow-local-callbacks", action="store_true")
    parser.add_argument("--log-level", default="info")
    faults = parser.add_argument_group("faults (probabilities, 0-1)")
    for name in (
        "rate_limit",
        "create_errors",
        "read_errors",
        "lost_create_response",
        "slow_response",
        "malformed_json",
        "task_failure",
        "cancellation",
        "partial_completion",
        "callback_drop",
        "callback_duplicate",
        "callback_late",
        "callback_out_of_order",
    ):
        faults.add_argument(f"--{name.replace('_', '-')}", type=float, default=0.0, dest=name)
    faults.add_argument("--slow-delay", type=float, default=30.0)
    faults.add_argument("--callback-late-by", type=float, default=30.0)
    return parser


def knobs_from_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Parse the command line into serve options and `Simulator` knobs."""
    args = _parser().parse_args(argv)
    fault_names = [field.name for field in Faults.__attrs_attrs__]
    faults = Faults(**{name: getattr(args, name) for name in fault_names if hasattr(args, name)})
    knobs: dict[str, Any] = {
        "seed": args.seed,
        "balance": args.balance,
        "durations": tuple(args.durations),
        "max_concurrent_tasks": args.max_concurrent_tasks,
        "max_requests_per_second": args.max_requests_per_second,
        "retry_after": args.retry_after,
        "result_ttl": args.result_ttl,
        "batch_endpoint": not args.no_batch_endpoint,
        "idempotency": not args.no_idempotency,
        "allow_local_callbacks": args.allow_local_callbacks,
        "faults": faults,
    }
    return args, knobs


def main(argv: Sequence[str] | None = None) -> None:
    args, knobs = knobs_from_args(argv)
    serve(host=args.host, port=args.port, log_level=args.log_level, **knobs)


if __name__ == "__main__":  # pragma: no cover - exercised as a subprocess
    main()
