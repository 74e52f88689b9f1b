"""`python -m evolink.cli._reference`: the command-line reference's option tables, generated.

docs/reference/cli.md is prose written by hand around generated blocks: between
`<!-- generated: evolink batch -->` and `<!-- end generated -->` stand the command's usage
line and its options table, made here from the click commands themselves, so the page cannot
name an option that does not exist or miss one that does. Run it after changing a command;
`--check` exits 1 when the page is stale (the test suite checks the same).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import click

from evolink.cli._app import main as cli

PAGE = Path("docs/reference/cli.md")
_BLOCK = re.compile(
    r"(?P<open><!-- generated: (?P<name>[a-z -]+) -->\n).*?(?P<close><!-- end generated -->)",
    re.DOTALL,
)
_EXTRA = re.compile(r"^(?P<help>.*?)\s*\[(?P<extra>[^\[\]]*)\]$", re.DOTALL)


def commands(
    group: click.Group = cli, prefix: str = "evolink"
) -> Iterator[tuple[str, click.Command]]:
    """Every command under `group`, by its full name (`evolink task get`), in page order."""
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from commands(command, path)
        else:
            yield path, command


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def options_block(name: str, command: click.Command) -> str:
    """The usage line and the options table of one command, as Markdown."""
    ctx = click.Context(command, info_name=name)
    usage = " ".join([name, *command.collect_usage_pieces(ctx)])
    lines = [f"`{usage}`", "", "| Option | Default, range | Meaning |", "|---|---|---|"]
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if not isinstance(param, click.Option) or record is None or "--help" in param.opts:
            continue
        names, help_text = record
        default = ""
        found = _EXTRA.match(help_text)
        if found is not None:
            help_text, default = found["help"], found["extra"].removeprefix("default: ")
        lines.append(f"| `{_cell(names)}` | {_cell(default)} | {_cell(help_text)} |")
    return "\n".join(lines) + "\n"


def render(page: str) -> str:
    """`page` with every generated block made anew from the commands.

    Raises:
        ValueError: a command has no block on the page, or a block names no command.
    """
    known = dict(commands())
    named = [found["name"] for found in _BLOCK.finditer(page)]
    missing = [name for name in known if name not in named]
    unknown = [name for name in named if name not in known]
    if missing or unknown:
        raise ValueError(
            f"blocks missing for {missing or 'none'};"
            f" blocks for unknown commands {unknown or 'none'}"
        )
    return _BLOCK.sub(
        lambda found: (
            found["open"] + options_block(found["name"], known[found["name"]]) + found["close"]
        ),
        page,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the page (or, with `--check`, say whether it is current); the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    page = Path(paths[0]) if paths else PAGE
    text = page.read_text(encoding="utf-8")
    fresh = render(text)
    if fresh == text:
        return 0
    if check:
        print(f"{page} is stale: run python -m evolink.cli._reference", file=sys.stderr)  # noqa: T201
        return 1
    page.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover - run by hand
    sys.exit(main())
