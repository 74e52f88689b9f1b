"""`evolink models`, `estimate`, `files upload|list|quota` and `task list`; the budget preview.

Each command opens the same backend as the others (the API, or `--simulate`), asks the
platform one thing, and prints it as a table or as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from evolink._converter import unstructure
from evolink._cost import CostEstimate, combine, estimate_each
from evolink._models import DEFAULT_IMAGE_MODEL, MediaKind, TaskStatus
from evolink.cli._app import (
    _check_options,
    _fail,
    _model_options,
    _run,
    _target_options,
    main,
    task,
)
from evolink.cli._backend import Target, open_backend
from evolink.cli._input import Defaults, InputError, PromptFile, read_prompt_file
from evolink.cli._summary import dumps
from evolink.cli._view import amount


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _json(value: Any) -> None:
    click.echo(json.dumps(unstructure(value), default=str, indent=2))


@main.command("models")
@click.option("--kind", type=click.Choice(["image", "video", "audio"]), help="Only this kind.")
@click.option("--json", "json_output", is_flag=True, help="Print the models as JSON.")
@_target_options
def models_command(
    kind: str | None, json_output: bool, simulate: bool, api_key: str | None, base_url: str | None
) -> None:
    """List the platform's models: kind, lifecycle and the lowest published price."""
    target = Target(simulate=simulate, api_key=api_key, base_url=base_url)

    async def fetch() -> Any:
        async with open_backend(target) as (client, _):
            return await client.models.list(kind=kind)

    models = _run(fetch)
    if json_output:
        click.echo(dumps([_model_json(info) for info in models]))
        return
    rows = []
    for info in models:
        lifecycle = info.lifecycle.value
        when = info.retires_at or info.deprecates_at
        if when is not None:
            lifecycle += f" ({when.isoformat()})"
        price = "-" if info.price_from is None else f"{amount(info.price_from)}/{info.price_unit}"
        rows.append((info.name, info.kind or "?", lifecycle, price))
    _table(rows, ("model", "kind", "lifecycle", "price from"))


def _model_json(info: Any) -> dict[str, Any]:
    return {
        "model": info.name,
        "kind": info.kind,
        "lifecycle": info.lifecycle.value,
        "aliases": list(info.aliases),
        "deprecates_at": info.deprecates_at and info.deprecates_at.isoformat(),
        "retires_at": info.retires_at and info.retires_at.isoformat(),
        "replacement": info.replacement,
        "price_from": None if info.price_from is None else str(info.price_from),
        "price_unit": None if info.price_unit is None else str(info.price_unit),
    }


def _prompts(file: Path, defaults: Defaults) -> PromptFile:
    _check_options(defaults)
    try:
        prompts = read_prompt_file(file, defaults)
    except InputError as exc:
        _fail(str(exc))
    if not prompts.rows:
        _fail(f"{file}: no prompts found")
    return prompts


@main.command("estimate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", default=DEFAULT_IMAGE_MODEL, show_default=True, help="The model.")
@click.option("--size", help="Size for rows that do not set one.")
@click.option("-n", "n", type=int, help="Outputs per prompt for rows that do not set `n`.")
@_model_options
@click.option("--json", "json_output", is_flag=True, help="Print the estimate as JSON.")
@_target_options
def estimate_command(
    file: Path,
    model: str,
    size: str | None,
    n: int | None,
    params: tuple[tuple[str, Any], ...],
    kind: MediaKind,
    json_output: bool,
    simulate: bool,
    api_key: str | None,
    base_url: str | None,
) -> None:
    """What generating every prompt of FILE would cost, before anything is spent."""
    prompts = _prompts(file, Defaults(model=model, size=size, n=n, params=dict(params), kind=kind))
    requests = [row.request for row in prompts.rows if row.request is not None]
    target = Target(simulate=simulate, api_key=api_key, base_url=base_url)

    async def fetch() -> CostEstimate:
        async with open_backend(target) as (client, _):
            return combine(await estimate_each(client, requests))

    estimate = _run(fetch)
    skipped = len(prompts.rows) - len(requests)
    if json_output:
        document = {
            "requests": estimate.requests,
            "invalid_rows": skipped,
            "min_credits": str(estimate.min_credits),
            "max_credits": None if estimate.max_credits is None else str(estimate.max_credits),
            "unpriced": estimate.unpriced,
            "basis": list(estimate.basis),
        }
        click.echo(dumps(document))
        return
    click.echo(f"{estimate.requests} request(s): {estimate}")
    for line in estimate.basis:
        click.echo(f"  {line}")
    if skipped:
        click.echo(f"{skipped} invalid row(s) not counted", err=True)


@main.group("files")
def files() -> None:
    """Upload reference images to Evolink's files API (they expire after 72 hours)."""


@files.command("upload")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "json_output", is_flag=True, help="Print the uploads as JSON.")
@_target_options
def files_upload(
    paths: tuple[Path, ...],
    json_output: bool,
    simulate: bool,
    api_key: str | None,
    base_url: str | None,
) -> None:
    """Upload each image (JPEG, PNG, GIF or WebP, 10 MB at most); print its URL."""
    target = Target(simulate=simulate, api_key=api_key, base_url=base_url)

    async def upload() -> list[Any]:
        async with open_backend(target) as (client, _):
            return [await client.files.upload(path) for path in paths]

    uploaded = _run(upload)
    if json_output:
        click.echo(dumps([unstructure_file(f) for f in uploaded]))
        return
    for path, file in zip(paths, uploaded, strict=True):
        expires = "" if file.expires_at is None else f"  (expires {file.expires_at.isoformat()})"
        click.echo(f"{path}: {file.file_url}{expires}")


def unstructure_file(file: Any) -> dict[str, Any]:
    return {
        "file_id": file.file_id,
        "file_url": file.file_url,
        "file_name": file.file_name,
        "file_size": file.file_size,
        "mime_type": file.mime_type,
        "expires_at": None if file.expires_at is None else file.expires_at.isoformat(),
    }


@files.command("list")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--json", "json_output", is_flag=True, help="Print the files as JSON.")
@_target_options
def files_list(
    page: int,
    page_size: int,
    json_output: bool,
    simulate: bool,
    api_key: str | None,
    base_url: str | None,
) -> None:
    """List the account's stored files."""
    target = Target(simulate=simulate, api_key=api_key, base_url=base_url)

    async def fetch() -> Any:
        async with open_backend(target) as (client, _):
            return await client.files.list(page=page, page_size=page_size)

    found = _run(fetch)
    if json_output:
        click.echo(dumps([unstructure_file(f) for f in found.files]))
        return
    rows = [
        (
            f.file_id,
            f.original_name or f.file_name or "",
            "" if f.file_size is None else str(f.file_size),
            "" if f.expires_at is None else f.expires_at.isoformat(),
            f.file_url,
        )
        for f in found.files
    ]
    _table(rows, ("file id", "name", "bytes", "expires", "url"))
    if found.total is not None:
        click.echo(f"{found.total} file(s) in all", err=True)


@files.command("quota")
@click.option("--json", "json_output", is_flag=True, help="Print the quota as JSON.")
@_target_options
def files_quota(
    json_output: bool, simulate: bool, api_key: str | None, base_url: str | None
) -> None:
    """Show how many files the account stores and may still store."""
    target = Target(simulate=simulate, api_key=api_key, base_url=base_url)

    async def fetch() -> Any:
        async with open_backend(target) as (client, _):
            return await client.files.quota()

    quota = _run(fetch)
    if json_output:
        _json(quota)
        return
    click.echo(f"files: {quota.used_files} of {quota.max_files} used, {quota.remain_files} left")


@task.command("list")
@click.option("--status", type=click.Choice([s.value for s in TaskStatus]), help="Only these.")
@click.option("--model", help="Only this model's tasks.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "json_output", is_flag=True, help="Print the tasks as JSON.")
@_target_options
def task_list(
    status: str | None,
    model: str | None,
    limit: int,
    json_output: bool,
    simulate: bool,
    api_key: str | None,
    base_url: str | None,
) -> None:
    """List the account's tasks, newest first."""
    target = Target(simulate=simulate, api_key=api_key, base_url=base_url)

    async def fetch() -> list[Any]:
        async with open_backend(target) as (client, _):
            return [t async for t in client.tasks.list(status=status, model=model, limit=limit)]

    tasks = _run(fetch)
    if json_output:
        click.echo(dumps([unstructure(found) for found in tasks]))
        return
    rows = [
        (
            found.id,
            found.status.value,
            f"{found.progress}%",
            found.model or "",
            "" if found.credits_reserved is None else amount(found.credits_reserved),
        )
        for found in tasks
    ]
    _table(rows, ("task", "status", "progress", "model", "credits"))
    if not rows:
        click.echo("no tasks", err=True)
