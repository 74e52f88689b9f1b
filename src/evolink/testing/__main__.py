"""`python -m evolink.testing`: serve the simulator over HTTP."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from evolink.testing._serve import SERVE_OPTIONS, clock_note, serve, simulator_knobs

_GROUPS = {"server": None, "simulator": None, "faults": "faults (probabilities, 0-1)"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evolink.testing",
        description="Serve the Evolink simulator (any sk-evo-... key works).",
    )
    groups = {
        name: parser if title is None else parser.add_argument_group(title)
        for name, title in _GROUPS.items()
    }
    for option in SERVE_OPTIONS:
        group = groups[option.group]
        if option.kind is None:
            group.add_argument(option.flag, action="store_true", help=option.help)
            continue
        group.add_argument(
            option.flag,
            type=option.kind,
            default=option.default,
            nargs=option.nargs if option.nargs > 1 else None,
            choices=option.choices,
            metavar=_metavar(option.metavar),
            help=option.help,
            dest=option.name,
        )
    return parser


def _metavar(names: tuple[str, ...] | None) -> tuple[str, ...] | str | None:
    if names is None:
        return None
    return names if len(names) > 1 else names[0]


def knobs_from_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Parse the command line into serve options and `Simulator` knobs."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        knobs = simulator_knobs(vars(args))
    except ValueError as exc:
        parser.error(str(exc))
    return args, knobs


def main(argv: Sequence[str] | None = None) -> None:
    args, knobs = knobs_from_args(argv)
    note = clock_note(knobs)
    if note is not None:
        print(note)  # noqa: T201 - the command's one line of its own
    serve(host=args.host, port=args.port, log_level=args.log_level, record=args.record, **knobs)


if __name__ == "__main__":  # pragma: no cover - exercised as a subprocess
    main()
