"""`--max-credits` across `--resume`: the budget bounds the whole input, not each run."""

from __future__ import annotations

import json

from click.testing import CliRunner

from evolink.cli import main


def test_the_budget_holds_across_a_resume(tmp_path):
    """`--max-credits` bounds the whole input: a resume does not spend it a second time."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\nan owl\na heron\n")
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["batch", str(prompts), "--out", str(out), "--simulate", "--plain", "--json"]
    first = runner.invoke(main, [*args, "--max-credits", "3"])
    assert 1 == first.exit_code, first.output  # one done, two skipped for budget
    second = runner.invoke(main, [*args, "--max-credits", "3", "--resume"])
    charged = json.loads(second.stdout)["credits"]["charged"]
    assert 2.5 >= float(charged)
