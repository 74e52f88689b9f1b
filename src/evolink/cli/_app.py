"""The `evolink` commands (click): demo, batch, generate, task get, credits, simulator,
and for runs on many machines, worker and status."""

from __future__ import annotations

import functools
import json
import math
import sys
import warnings
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import anyio
import attrs
import click
from rich.console import Console
from rich.markup import escape

from evolink._converter import unstructure
from evolink._cost import CostEstimate, combine, estimate_each, fitting
from evolink._errors import (
    AuthenticationError,
    ConfigurationError,
    EvolinkError,
    JournalError,
    ValidationError,
)
from evolink._idempotency import check_idempotency_key
from evolink._journal import DEFAULT_RUN, check_run_name
from evolink._journal_postgres import PostgresJournal
from evolink._models import DEFAULT_IMAGE_MODEL, GenerationRequest, MediaKind
from evolink._postgres import display_url, is_postgres_url
from evolink._validation import validate
from evolink._version import __version__
from evolink.cli._backend import Target, open_backend
from evolink.cli._demo import DEMO_FAILURES, DemoFolderError, clear_previous_demo, demo_rows
from evolink.cli._distributed import DEFAULT_CHUNK, RunStatus, enqueue, read_status
from evolink.cli._input import Defaults, InputError, PromptFile, read_prompt_file, rows_from_fields
from evolink.cli._run import RunConfig, RunSummary, run_batch
from evolink.cli._run_journal import RunRefusedError
from evolink.cli._simulator import simulator_options, simulator_settings
from evolink.cli._summary import dumps, print_summary, summary_json
from evolink.cli._view import amount, make_view
from evolink.cli._worker import WorkerConfig, run_worker

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_MAX_ERRORS_SHOWN = 20

T = TypeVar("T")


def _fail(message: str, *, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def auth_message(exc: AuthenticationError) -> str:
    """What to say when the API refuses the key (its status once, and where keys come from)."""
    return f"authentication failed: {exc.message} — check EVOLINK_API_KEY (or --api-key)"


def _show_warning(message: Warning | str, *_where: Any, **_file: Any) -> None:
    """A warning as a line for a person (`warning: ...`), not Python's source dump."""
    click.echo(f"warning: {message}", err=True)


def _run(main: Callable[[], Awaitable[T]]) -> T:
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return anyio.run(main)
    except AuthenticationError as exc:  # a usage problem: the same key fails every call
        _fail(auth_message(exc))
    except ConfigurationError as exc:
        _fail(f"{exc}\n  (or add --simulate to try it against the built-in simulator)")
    except (InputError, RunRefusedError, JournalError) as exc:
        _fail(str(exc))
    except OSError as exc:  # the output folder cannot be made, read or written
        _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    except EvolinkError as exc:
        _fail(str(exc), code=EXIT_SOME_FAILED)


def _credits(_: click.Context, __: click.Parameter, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        budget = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a number") from None
    if not budget.is_finite() or budget < 0:
        raise click.BadParameter("must be a number, 0 or more")
    return budget


def _target_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--simulate, --api-key and --base-url, shared by every command that calls the API."""
    function = click.option(
        "--base-url",
        envvar="EVOLINK_BASE_URL",
        metavar="URL",
        help="The API's address (default https://api.evolink.ai). Env: EVOLINK_BASE_URL.",
    )(function)
    function = click.option(
        "--api-key",
        envvar="EVOLINK_API_KEY",
        metavar="KEY",
        show_default=False,
        help="Your sk-evo-... key. Env: EVOLINK_API_KEY (preferred: a flag shows in `ps`).",
    )(function)
    return click.option(
        "--simulate",
        is_flag=True,
        help="Use the built-in simulator instead of the API (no key, no credits).",
    )(function)


def _finite(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter("must be a number of seconds, at least 0.1")
    return value


#: --max-poll-interval, for the commands that wait for tasks.
_max_poll_interval = click.option(
    "--max-poll-interval",
    type=click.FloatRange(min=0.1),
    callback=_finite,
    metavar="SECONDS",
    help="Read every running task at least this often (1: never seen later than a 1 s"
    " polling loop would, at up to its reads). Default: when the task is likely done.",
)


def _console(*, json_output: bool, plain: bool) -> Console:
    """Progress goes to stderr when stdout is for JSON."""
    return Console(stderr=json_output, no_color=plain or None, highlight=False)


def _exit_code(summary: RunSummary) -> int:
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.ok else EXIT_SOME_FAILED


def _report_invalid(prompts: PromptFile, source: str, *, skip_invalid: bool) -> None:
    """List a file's invalid rows; stop unless `--skip-invalid` (never on a malformed file)."""
    invalid = prompts.invalid
    if not invalid:
        return
    for row in invalid[:_MAX_ERRORS_SHOWN]:
        click.echo(f"{source}:{row.line}: {row.error}", err=True)
    if len(invalid) > _MAX_ERRORS_SHOWN:
        click.echo(f"... and {len(invalid) - _MAX_ERRORS_SHOWN} more invalid rows", err=True)
    malformed = prompts.malformed
    if malformed:
        # A broken line says nothing reliable about the rows: skipping it is no fix.
        _fail(
            f"{len(malformed)} malformed line(s) in {source} (first at line"
            f" {malformed[0].line}); nothing was sent. Fix the file: --skip-invalid skips"
            " only rows whose values are invalid."
        )
    if not skip_invalid:
        _fail(
            f"{len(invalid)} invalid row(s) in {source}; nothing was sent. Fix them, or add "
            "--skip-invalid to run the others (the invalid ones become 'rejected')."
        )


_OPTION_OF_FIELD = {"model": "--model", "size": "--size", "n": "-n", "prompt": "PROMPT"}


def _param(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> tuple[Any, ...]:
    """`--param quality=2K` -> ("quality", "2K"); numbers, booleans and JSON as such."""
    parsed = []
    for value in values:
        name, sep, raw = value.partition("=")
        if not sep or not name.strip():
            message = f"{value!r}: use NAME=VALUE (e.g. quality=2K)"
            raise click.BadParameter(message, param_hint="--param")
        try:
            decoded: Any = json.loads(raw)
        except ValueError:
            decoded = raw
        parsed.append((name.strip(), decoded))
    return tuple(parsed)


def _model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--param NAME=VALUE` (repeatable) and `--kind`, for any model's own parameters."""
    command = click.option(
        "--kind",
        type=click.Choice(["image", "video", "audio"]),
        default="image",
        show_default=True,
        help="What a model the SDK's catalog does not know makes (a known one's is known).",
    )(command)
    return click.option(
        "--param",
        "params",
        multiple=True,
        callback=_param,
        metavar="NAME=VALUE",
        help="A parameter of the model (repeatable): --param quality=2K --param duration=5.",
    )(command)


def _check_options(defaults: Defaults) -> None:
    """Refuse a bad --model, --size or -n once, before any row is read or sent."""
    request = GenerationRequest(
        prompt="options check",
        model=defaults.model,
        size=defaults.size,
        n=defaults.n,
        params=defaults.params or None,
        kind=defaults.kind_of(defaults.model),
    )
    try:
        validate(request)
    except ValidationError as exc:
        option = _OPTION_OF_FIELD.get(exc.field, f"--param {exc.field}")
        _fail(f"{option}: {exc.message}; nothing was sent")


def _finish(
    summary: RunSummary, console: Console, *, json_output: bool, failures_ok: bool = False
) -> NoReturn:
    if json_output:
        click.echo(dumps(summary_json(summary)))
        if summary.interrupted:
            click.echo(f"interrupted: {summary.interrupted_hint}", err=True)
    else:
        print_summary(console, summary)
    code = _exit_code(summary)
    sys.exit(EXIT_OK if failures_ok and code == EXIT_SOME_FAILED else code)


def _execute(
    target: Target,
    prompts: PromptFile,
    config: RunConfig,
    *,
    json_output: bool,
    plain: bool,
    failures_ok: bool = False,
    hint: Callable[[RunSummary], str] | None = None,
) -> NoReturn:
    console = _console(json_output=json_output, plain=plain)
    view = make_view(console, plain=plain)

    async def main() -> RunSummary:
        async with open_backend(target) as (client, images):
            return await run_batch(client, images, prompts, config, view)

    summary = _run(main)
    if hint is not None and summary.interrupted:
        summary = attrs.evolve(summary, interrupted_hint=hint(summary))
    _finish(summary, console, json_output=json_output, failures_ok=failures_ok)


def generate_hint(summary: RunSummary) -> str:
    """After Ctrl-C in `generate`: the task's id, or the key that finds it, and what to run."""
    [result] = summary.results
    if result.task_id is not None:
        return (
            f"task {result.task_id} was created and may still finish: look it up with"
            f" `evolink task get {result.task_id}`"
        )
    if result.idempotency_key is not None:
        key = result.idempotency_key
        return (
            f"the create was on its way (idempotency key {key}), so the task may exist: run"
            f" the same command with `--idempotency-key {key}` to get it (it is made at most"
            " once)"
        )
    return "nothing was sent: no task was created"


def _journal_url(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is not None and not is_postgres_url(value):
        raise click.BadParameter("a PostgreSQL URL: postgresql://user@host/database")
    return value


def _journal_option(function: Callable[..., Any], *, required: bool = False) -> Callable[..., Any]:
    return click.option(
        "--journal",
        metavar="URL",
        envvar="EVOLINK_JOURNAL",
        required=required,
        callback=_journal_url,
        help="The run's PostgreSQL database (postgresql://...). Env: EVOLINK_JOURNAL.",
    )(function)


def _distributed_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--journal, --run, --enqueue and --chunk-size: a run for `evolink worker`s."""
    function = click.option(
        "--chunk-size",
        type=click.IntRange(1, 100_000),
        default=DEFAULT_CHUNK,
        show_default=True,
        help="With --enqueue: inputs per job.",
    )(function)
    function = click.option(
        "--enqueue",
        is_flag=True,
        help="Store the run in --journal and queue it for `evolink worker` (send nothing here).",
    )(function)
    function = _run_option(function)
    return _journal_option(function)


def _run_name(_: click.Context, __: click.Parameter, value: str) -> str:
    try:
        return check_run_name(value)
    except ValidationError as exc:
        raise click.BadParameter(exc.message) from None


def _run_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--run",
        default=DEFAULT_RUN,
        show_default=True,
        callback=_run_name,
        help="The run's name in --journal.",
    )(function)


def _check_journal(journal: str | None, run: str, *, enqueue: bool, resume: bool) -> None:
    """--enqueue needs a database; --run names a run in one (the folder's journal is one)."""
    if journal is None:
        if enqueue:
            _fail("--enqueue needs --journal postgresql://...: where the workers find the run")
        if run != DEFAULT_RUN:
            _fail("--run names a run in --journal postgresql://...; --out's journal holds one")
    if enqueue and resume:
        _fail("--resume continues a run of this process: an enqueued run resumes in its workers")


def _enqueue(
    url: str,
    run: str,
    prompts: PromptFile,
    *,
    out: Path,
    max_credits: Decimal | None,
    chunk: int,
) -> NoReturn:
    async def main() -> int:
        async with await PostgresJournal.open(url) as journal:
            return await enqueue(
                journal, run, prompts, out=out, max_credits=max_credits, chunk=chunk
            )

    jobs = _run(main)
    click.echo(
        f"run {run!r}: {len(prompts.rows)} inputs in {jobs} job(s) on the queue; start"
        f" `evolink worker --journal ...` on each machine, and watch `evolink status --run {run}`"
    )
    sys.exit(EXIT_OK)


def _idempotency_key(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    try:
        check_idempotency_key(value)
    except ValidationError as exc:
        raise click.BadParameter(exc.message) from None
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evolink")
def main() -> None:
    """Generate images with Evolink from the command line.

    Start with `evolink demo`: fifty prompts against the built-in simulator, with live
    progress, downloads, a manifest and an HTML gallery.
    """


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/demo"),
    show_default=True,
    help="Folder for images, manifest.jsonl and index.html.",
)
@click.option(
    "-n",
    "--count",
    type=click.IntRange(1, 500),
    default=50,
    show_default=True,
    help="How many prompts to run.",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(1, 1000),
    default=16,
    show_default=True,
    help="Tasks running at once, at most.",
)
@click.option(
    "--max-credits",
    callback=_credits,
    metavar="CREDITS",
    default="200",
    show_default=True,
    help="Budget: no task starts that could exceed it.",
)
@click.option("--plain", is_flag=True, help="Log lines instead of the live display.")
@click.option("--json", "json_output", is_flag=True, help="Print the result as JSON on stdout.")
def demo(
    out: Path,
    count: int,
    max_in_flight: int,
    max_credits: Decimal | None,
    plain: bool,
    json_output: bool,
) -> None:
    """Run a batch of varied prompts against the built-in simulator (no key needed).

    Tasks take 2-6 seconds each and a few fail, as on a real day; images are downloaded
    as they finish. Open the printed gallery link in a browser at the end. Exits 0 when
    the demo ran (simulated failures included), 130 if interrupted.
    """
    try:
        clear_previous_demo(out)
    except (JournalError, DemoFolderError) as exc:
        _fail(str(exc))
    prompts = rows_from_fields(demo_rows(count), Defaults())
    config = RunConfig(
        out=out,
        title=f"evolink demo: {count} prompts against the simulator",
        max_in_flight=max_in_flight,
        max_credits=max_credits,
        interrupted_hint="run `evolink demo` again to start it over",
    )
    target = Target(simulate=True, failures=DEMO_FAILURES)
    _execute(target, prompts, config, json_output=json_output, plain=plain, failures_ok=True)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for images, manifest.jsonl, index.html and the journal.",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(1, 1000),
    default=32,
    show_default=True,
    help="Tasks running at once, at most.",
)
@click.option(
    "--max-credits",
    callback=_credits,
    metavar="CREDITS",
    help="Budget: no task starts that could take the batch over it (says up front how many fit).",
)
@click.option(
    "--model",
    default=DEFAULT_IMAGE_MODEL,
    show_default=True,
    help="Model for rows that do not name one (see docs/reference/model-catalog.md).",
)
@click.option("--size", help="Size for rows that do not set one (1:1, 16:9, 1024x1024, ...).")
@click.option("-n", "n", type=int, help="Outputs per prompt for rows that do not set `n`.")
@_model_options
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Run the valid rows; invalid ones become 'rejected' (default: stop).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out's journal, or --journal's --run (after Ctrl-C or a crash).",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="With --resume: create failed inputs again (never one whose task may exist).",
)
@_distributed_options
@_max_poll_interval
@click.option("--plain", is_flag=True, help="Log lines instead of the live display.")
@click.option("--json", "json_output", is_flag=True, help="Print the result as JSON on stdout.")
@_target_options
def batch(
    file: Path,
    out: Path,
    max_in_flight: int,
    max_credits: Decimal | None,
    model: str,
    size: str | None,
    n: int | None,
    params: tuple[tuple[str, Any], ...],
    kind: MediaKind,
    skip_invalid: bool,
    resume: bool,
    retry_failed: bool,
    journal: str | None,
    run: str,
    enqueue: bool,
    chunk_size: int,
    max_poll_interval: float | None,
    plain: bool,
    json_output: bool,
    simulate: bool,
    api_key: str | None,
    base_url: str | None,
) -> None:
    """Generate every prompt of FILE: a .txt (a prompt a line), .jsonl or .csv.

    JSONL and CSV rows may set prompt, size, n, image_urls, model and any model field.
    The whole file is checked before anything is sent. Images land in --out as
    0001-a-red-fox-in-snow-1.png, with manifest.jsonl and an index.html gallery.

    With --journal postgresql://..., the journal is the run --run in that database instead
    of a file in --out (resume it from any machine that reaches the database); add
    --enqueue to store the run there and split it into jobs for `evolink worker` on any
    number of machines instead of running it here (see `evolink status`).

    Exit status: 0 all completed, 1 some failed or were skipped, 2 usage or input
    errors, 130 interrupted (continue with --resume).
    """
    if retry_failed and not resume:
        _fail("--retry-failed works with --resume: it sends an earlier run's failed inputs again")
    _check_journal(journal, run, enqueue=enqueue, resume=resume)
    defaults = Defaults(model=model, size=size, n=n, params=dict(params), kind=kind)
    _check_options(defaults)
    try:
        prompts = read_prompt_file(file, defaults)
    except InputError as exc:
        _fail(str(exc))
    if not prompts.rows:
        _fail(f"{file}: no prompts found")
    _report_invalid(prompts, str(file), skip_invalid=skip_invalid)
    if enqueue and journal is not None:
        _enqueue(journal, run, prompts, out=out, max_credits=max_credits, chunk=chunk_size)
    config = RunConfig(
        out=out,
        title=f"evolink batch: {len(prompts.rows)} prompts from {file.name}",
        max_in_flight=max_in_flight,
        max_credits=max_credits,
        resume=resume,
        retry_failed=retry_failed,
        journal_url=journal,
        run=run,
    )
    target = Target(
        simulate=simulate,
        api_key=api_key,
        base_url=base_url,
        max_poll_interval=max_poll_interval,
    )
    if max_credits is not None and not resume:
        preview_budget(target, prompts, max_credits)
    _execute(target, prompts, config, json_output=json_output, plain=plain)


@main.command()
@click.argument("prompt")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the images.",
)
@click.option(
    "--model",
    default=DEFAULT_IMAGE_MODEL,
    show_default=True,
    help="The model (see docs/reference/model-catalog.md).",
)
@click.option("--size", help="A size the model takes (1:1, 16:9, 1024x1024, ...).")
@click.option("-n", "n", type=int, help="How many outputs, where the model takes `n`.")
@_model_options
@click.option(
    "--idempotency-key",
    metavar="KEY",
    callback=_idempotency_key,
    help="The key of an earlier create (printed after Ctrl-C): get its task, not a new one.",
)
@_max_poll_interval
@click.option("--plain", is_flag=True, help="Log lines instead of the live display.")
@click.option("--json", "json_output", is_flag=True, help="Print the result as JSON on stdout.")
@_target_options
def generate(
    prompt: str,
    out: Path,
    model: str,
    size: str | None,
    n: int | None,
    params: tuple[tuple[str, Any], ...],
    kind: MediaKind,
    idempotency_key: str | None,
    max_poll_interval: float | None,
    plain: bool,
    json_output: bool,
    simulate: bool,
    api_key: str | None,
    base_url: str | None,
) -> None:
    """Generate images for one PROMPT, wait for them, and save them in --out.

    After Ctrl-C it prints the task's id (look it up with `evolink task get`), or, if the
    create was on its way, the idempotency key to run the command again with.
    """
    defaults = Defaults(model=model, size=size, n=n, params=dict(params), kind=kind)
    _check_options(defaults)
    prompts = rows_from_fields([{"prompt": prompt}], defaults)
    [row] = prompts.rows
    if row.error is not None:
        _fail(f"{row.error}; nothing was sent")
    config = RunConfig(
        out=out,
        title=f"evolink generate: {prompt[:50]}",
        journal=False,
        keep_existing=True,
        outputs=False,
        keys={0: idempotency_key} if idempotency_key is not None else {},
    )
    target = Target(
        simulate=simulate,
        api_key=api_key,
        base_url=base_url,
        max_poll_interval=max_poll_interval,
    )
    _execute(target, prompts, config, json_output=json_output, plain=plain, hint=generate_hint)


@main.group()
def task() -> None:
    """Look at tasks."""


@task.command("get")
@click.argument("task_id")
@click.option("--json", "json_output", is_flag=True, help="Print the task as JSON.")
@_target_options
def task_get(
    task_id: str, json_output: bool, simulate: bool, api_key: str | None, base_url: str | None
) -> None:
    """Show one task: status, progress, results, error, credits."""
    target = Target(simulate=simulate, api_key=api_key, base_url=base_url)

    async def main() -> Any:
        async with open_backend(target) as (client, _):
            return await client.tasks.get(task_id)

    found = _run(main)
    document = unstructure(found)
    if json_output:
        click.echo(dumps(document))
        return
    console = Console(highlight=False)
    # The server's words are text, not markup: `[/red]` in a message must not crash this.
    console.print(f"[bold]{escape(found.id)}[/]  {escape(str(found.status))}  {found.progress}%")
    if found.credits_reserved is not None:
        console.print(f"credits reserved: {amount(found.credits_reserved)}")
    for url in found.results:
        console.print(f"  {escape(url)}", soft_wrap=True)
    if found.error is not None:
        console.print(f"[red]error {escape(found.error.code)}: {escape(found.error.message)}[/]")


@main.command("credits")
@click.option("--json", "json_output", is_flag=True, help="Print the balances as JSON.")
@_target_options
def credits_command(
    json_output: bool, simulate: bool, api_key: str | None, base_url: str | None
) -> None:
    """Show the credits left on your key and account."""
    target = Target(simulate=simulate, api_key=api_key, base_url=base_url)

    async def main() -> Any:
        async with open_backend(target) as (client, _):
            return await client.credits()

    balances = _run(main)
    if json_output:
        click.echo(dumps(unstructure(balances)))
        return
    remaining = balances.remaining_credits
    click.echo(f"remaining credits: {'unknown' if remaining is None else f'{amount(remaining)}'}")
    if balances.user is not None:
        click.echo(
            f"account: {amount(balances.user.remaining_credits)} left,"
            f" {amount(balances.user.used_credits)} used"
        )
    if balances.token is not None:
        limit = (
            "unlimited"
            if balances.token.unlimited_credits
            else (f"{amount(balances.token.remaining_credits)} left")
        )
        click.echo(f"this key: {limit}, {amount(balances.token.used_credits)} used")


@main.command()
@functools.partial(_journal_option, required=True)
@click.option(
    "--max-in-flight",
    type=click.IntRange(1, 1000),
    default=32,
    show_default=True,
    help="Tasks one job keeps running at once.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="Jobs this worker runs at once (each keeps --max-in-flight tasks).",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds between this worker's heartbeats.",
)
@click.option(
    "--stalled-after",
    type=click.FloatRange(0.5),
    default=30.0,
    show_default=True,
    help="Seconds without a heartbeat after which a worker's jobs are taken over.",
)
@click.option("--burst", is_flag=True, help="Stop once no job is left (default: wait for more).")
@_target_options
def worker(
    journal: str,
    max_in_flight: int,
    jobs: int,
    heartbeat: float,
    stalled_after: float,
    burst: bool,
    simulate: bool,
    api_key: str | None,
    base_url: str | None,
) -> None:
    """Run the jobs of runs enqueued in --journal (`evolink batch ... --enqueue`).

    Run one on each machine, as many as wanted; stop with Ctrl-C or SIGTERM (running jobs
    end first). A worker killed outright leaves its jobs to the others, which adopt what
    it created (never paying twice) and skip the files it saved.
    """
    config = WorkerConfig(
        max_in_flight=max_in_flight,
        jobs=jobs,
        heartbeat=heartbeat,
        stalled_after=stalled_after,
        burst=burst,
    )
    target = Target(simulate=simulate, api_key=api_key, base_url=base_url)

    async def main() -> None:
        async with (
            await PostgresJournal.open(journal, max_connections=10 + 12 * jobs) as store,
            open_backend(target) as (client, images),
        ):
            click.echo(f"evolink worker on {display_url(journal)}: waiting for jobs", err=True)
            await run_worker(store, client, images, config, lambda line: click.echo(line, err=True))

    _run(main)


@main.command()
@functools.partial(_journal_option, required=True)
@_run_option
@click.option("--json", "json_output", is_flag=True, help="Print the status as JSON.")
def status(journal: str, run: str, json_output: bool) -> None:
    """Show the progress of an enqueued run across all its workers."""

    async def main() -> RunStatus:
        async with await PostgresJournal.open(journal) as store:
            return await read_status(store.pool, run)

    found = _run(main)
    if json_output:
        click.echo(dumps(found.to_json()))
        return
    click.echo(f"run {found.run}: {found.total} inputs")
    for name, count in sorted(found.counts.items()):
        click.echo(f"  {name:<16} {count}")
    budget = "no budget" if found.max_credits is None else f"of {amount(found.max_credits)}"
    click.echo(
        f"credits: {amount(found.charged)} charged, {amount(found.held)} held,"
        f" {amount(found.committed)} committed ({budget}); files saved: {found.files}"
    )
    shown = ", ".join(f"{n} {state}" for state, n in sorted(found.jobs.items())) or "none"
    click.echo(f"jobs: {shown}; 429s met: {found.rate_limited}")


@main.command()
@simulator_options
def simulator(**values: Any) -> None:
    """Serve the Evolink simulator over HTTP until Ctrl-C.

    Point the other commands at it with --base-url http://127.0.0.1:PORT (any sk-evo-...
    key works). The same options as `python -m evolink.testing`.
    """
    from evolink.testing import serve  # noqa: PLC0415 - only this command serves
    from evolink.testing._uvicorn import uvicorn_module  # noqa: PLC0415

    try:
        settings = simulator_settings(values)
        uvicorn_module()  # before the banner: no address announced that will not answer
    except (ValueError, RuntimeError) as exc:
        _fail(str(exc))
    click.echo(
        f"Evolink simulator on http://{settings.host}:{settings.port}"
        " (any sk-evo-... key works); Ctrl-C stops"
    )
    if settings.clock_note is not None:
        click.echo(settings.clock_note)
    try:
        serve(
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            record=settings.record,
            **settings.knobs,
        )
    except RuntimeError as exc:  # uvicorn missing
        _fail(str(exc))


def preview_budget(target: Target, prompts: PromptFile, max_credits: Decimal) -> None:
    """Say, before the batch starts, how many of its prompts fit `max_credits`, and stop
    if the account's balance cannot cover what the budget allows."""
    requests = [row.request for row in prompts.rows if row.request is not None]

    async def fetch() -> tuple[list[CostEstimate], Decimal | None]:
        async with open_backend(target) as (client, _):
            estimates = await estimate_each(client, requests)
            return estimates, (await client.credits()).remaining_credits

    estimates, balance = _run(fetch)
    total = combine(estimates)
    fits = fitting(estimates, max_credits)
    click.echo(
        f"budget {amount(max_credits)} credits: {fits} of {len(requests)} prompt(s) fit"
        f" (estimated {total}); the server's reservations decide",
        err=True,
    )
    needed = min(total.min_credits, max_credits)
    if balance is not None and balance < needed:
        _fail(
            f"the account has {amount(balance)} credits, below the {amount(needed)} this batch"
            " needs at least; nothing was sent",
            code=1,
        )
