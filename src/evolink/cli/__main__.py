"""`python -m evolink.cli`: the same as the `evolink` command."""

from evolink.cli._app import main

main(prog_name="evolink")
