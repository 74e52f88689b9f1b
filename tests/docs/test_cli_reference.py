"""The command-line reference is generated from the click commands and kept current."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from evolink.cli._reference import commands, main, options_block, render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli.md"
COMMANDS = list(commands())


def test_the_checked_in_page_is_current():
    """docs/reference/cli.md is what `python -m evolink.cli._reference` writes: it fails
    when a command or option changed and the page was not regenerated."""
    text = PAGE.read_text(encoding="utf-8")
    assert render(text) == text, "stale: run `python -m evolink.cli._reference`"


@pytest.mark.parametrize("command", [pytest.param(c, id=name) for name, c in COMMANDS])
def test_command_and_options_documented(command: click.Command) -> None:
    """Each command has a section, and each of its options is named on the page."""
    text = PAGE.read_text(encoding="utf-8")
    name = next(path for path, c in COMMANDS if c is command)
    assert f"## `{name}" in text, f"no section for {name}"
    for param in command.params:
        if isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            assert longest in text, f"{name}: {longest} is not documented"


def test_a_stale_page_is_found_and_rewritten(tmp_path, capsys):
    """`--check` fails on a stale page (an option hand-added, as `--durations` once was
    for a command without it); without it, the page is rewritten from the commands."""
    page = tmp_path / "cli.md"
    stale = PAGE.read_text(encoding="utf-8").replace(
        "| `--port INTEGER RANGE`",
        "| `--no-such-option N` | 1 | Made up. |\n| `--port INTEGER RANGE`",
    )
    page.write_text(stale, encoding="utf-8")
    assert 1 == main(["--check", str(page)])
    assert "stale" in capsys.readouterr().err
    assert 0 == main([str(page)])
    assert PAGE.read_text(encoding="utf-8") == page.read_text(encoding="utf-8")
    assert 0 == main(["--check", str(page)])


def test_every_command_needs_its_block():
    """A page without a command's generated block (or with a block for no command) is refused."""
    text = PAGE.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="blocks missing"):
        render(text.replace("<!-- generated: evolink credits -->", "<!-- gone -->"))
    extra = text + "\n<!-- generated: evolink nothing -->\n<!-- end generated -->\n"
    with pytest.raises(ValueError, match="evolink nothing"):
        render(extra)


def test_blocks_show_usage_and_defaults():
    """A block has the usage line and each option's default (or that it is required)."""
    block = options_block("evolink batch", dict(COMMANDS)["evolink batch"])
    assert block.startswith("`evolink batch [OPTIONS] FILE`")
    assert "| `--out DIRECTORY` | required |" in block
    assert "| `--model TEXT` | gpt-image-2 |" in block
