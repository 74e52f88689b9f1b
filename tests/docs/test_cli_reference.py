"""The command-line reference names every command and option the `evolink` command has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from evolink.cli import main

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli.md"


def _commands(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from _commands(command, path)
        else:
            yield path, command


COMMANDS = sorted(_commands(main, "evolink"))


@pytest.mark.parametrize("command", [pytest.param(c, id=name) for name, c in COMMANDS])
def test_command_and_options_documented(command: click.Command) -> None:
    """Each command has a section, and each of its options is named on the page."""
    text = PAGE.read_text(encoding="utf-8")
    name = next(path for path, c in COMMANDS if c is command)
    assert f"## `{name}" in text, f"no section for {name}"
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            longest = max(param.opts, key=len)
            assert longest in text, f"{name}: {longest} is not documented"
