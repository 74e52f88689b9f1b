"""Local reference images in a batch: uploaded once per distinct content, reused across the
run, made again when the upload has expired, checked before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from _platform_support import client_for, png

from evolink import AsyncEvolink, GenerationRequest, OutcomeKind, UploadCache, ValidationError
from evolink.testing import Simulator, VirtualClock

pytestmark = pytest.mark.anyio

UPLOADS = "/api/v1/files/upload"


def _images(tmp_path: Path) -> tuple[Path, Path, Path]:
    first, second, copy = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "a-copy.png"
    first.write_bytes(png(1))
    second.write_bytes(png(2))
    copy.write_bytes(png(1))  # same content as `a.png`: one upload serves both
    return first, second, copy


async def test_each_distinct_file_is_uploaded_once(
    client: AsyncEvolink, sim: Simulator, tmp_path: Path
):
    """Twelve rows naming three paths of two contents: two uploads, every create sent
    with the uploaded URLs."""
    paths = _images(tmp_path)
    requests = [GenerationRequest(prompt=f"fox {i}", image_urls=[paths[i % 3]]) for i in range(12)]

    report = await client.images.generate_many(requests, max_in_flight=4)

    assert 12 == len(report.completed)
    assert 2 == sim.count("POST", UPLOADS)
    assert 2 == client.files.uploads.uploads
    sent = [r.body["image_urls"][0] for r in sim.requests if r.path == "/v1/images/generations"]
    assert all(url.startswith("http") for url in sent)
    assert 2 == len(set(sent))


async def test_an_expired_upload_is_made_again(
    client: AsyncEvolink, sim: Simulator, clock: VirtualClock, tmp_path: Path
):
    """After 72 hours (less a margin) the cached URL is no good: the file goes up again."""
    first, _, _ = _images(tmp_path)
    uploads = client.files.uploads

    url = await uploads.url_for(first)
    same = await uploads.url_for(first)
    await clock.sleep(71 * 3600 + 1)
    renewed = await uploads.url_for(first)

    assert url == same
    assert renewed != url
    assert 2 == sim.count("POST", UPLOADS)


async def test_a_persistent_store_is_reused(client: AsyncEvolink, sim: Simulator, tmp_path: Path):
    """The cache's store is any mapping: a second run handed it uploads nothing."""
    first, _, _ = _images(tmp_path)
    store: dict[str, object] = {}
    run_one = UploadCache(client.files, now=client.clock.time, store=store)  # type: ignore[arg-type]
    run_two = UploadCache(client.files, now=client.clock.time, store=store)  # type: ignore[arg-type]

    assert await run_one.url_for(first) == await run_two.url_for(first)
    assert 1 == sim.count("POST", UPLOADS)


async def test_a_bad_local_file_rejects_its_input_unsent(
    client: AsyncEvolink, sim: Simulator, tmp_path: Path
):
    """A missing file or a non-image becomes a `rejected` outcome; nothing is sent for it."""
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    requests = [
        GenerationRequest(prompt="a", image_urls=[tmp_path / "missing.png"]),
        GenerationRequest(prompt="b", image_urls=[text]),
    ]

    report = await client.images.generate_many(requests)

    assert [OutcomeKind.REJECTED] * 2 == [o.kind for o in report.outcomes]
    assert ["readable", "type"] == [o.error_code for o in report.outcomes]
    assert 0 == sim.count("POST")


async def test_a_failed_upload_rejects_only_its_input(clock: VirtualClock, tmp_path: Path):
    """The files API refusing (quota full) rejects the rows that need the file."""
    first, second, _ = _images(tmp_path)
    sim = Simulator(clock=clock, max_files=1)
    async with clock.running(), client_for(sim) as client:
        report = await client.images.generate_many(
            [
                GenerationRequest(prompt="a", image_urls=[first]),
                GenerationRequest(prompt="b", image_urls=[second]),
            ]
        )
    assert [OutcomeKind.COMPLETED, OutcomeKind.REJECTED] == [o.kind for o in report.outcomes]
    assert "upload" == report.outcomes[1].error_code


async def test_mask_and_params_paths_are_uploaded_too(
    client: AsyncEvolink, sim: Simulator, tmp_path: Path
):
    """`mask_url` and a model parameter holding paths go up like `image_urls`."""
    first, second, _ = _images(tmp_path)
    request = GenerationRequest(
        prompt="a",
        image_urls=[first],
        mask_url=second,
        params={"reference": [first]},
    )

    resolved = await client.files.uploads.resolve(request)

    assert isinstance(resolved.mask_url, str)
    assert resolved.params is not None
    assert isinstance(resolved.params["reference"][0], str)
    assert 2 == sim.count("POST", UPLOADS)


async def test_a_single_generate_uploads_its_local_files(
    client: AsyncEvolink, sim: Simulator, tmp_path: Path
):
    """`images.generate` with a path (and `videos.generate`, and `create`): uploaded once per
    content through the client's cache, the URL sent in its place."""
    first, second, copy = _images(tmp_path)

    image = await client.images.generate("a fox", image_urls=[first, second], mask_url=copy)
    again = await client.images.create(GenerationRequest(prompt="an owl", image_urls=[copy]))
    video = await client.videos.generate(
        "a fox running", model="sora-2-preview", image_urls=[first]
    )

    assert 2 == sim.count("POST", UPLOADS)
    [one, other] = sim.task(image.id).prompt, sim.task(again.id).prompt
    assert ("a fox", "an owl") == (one, other)
    bodies = [r.body for r in sim.requests if r.path.endswith("/generations")]
    assert bodies[0]["image_urls"][0] == bodies[0]["mask_url"] == bodies[1]["image_urls"][0]
    assert bodies[2]["image_urls"] == [bodies[0]["image_urls"][0]]
    assert video.id in sim.tasks


async def test_a_single_generate_refuses_a_bad_file_unsent(
    client: AsyncEvolink, sim: Simulator, tmp_path: Path
):
    """A missing local file raises `ValidationError` from `generate`; nothing is sent."""
    with pytest.raises(ValidationError, match=r"missing\.png"):
        await client.images.generate("a fox", image_urls=[tmp_path / "missing.png"])
    assert 0 == sim.count()


@pytest.mark.parametrize(
    "cell",
    [
        pytest.param("a" * 5000, id="name-too-long"),
        pytest.param("~nobody-here-at-all/x.png", id="unknown-home"),
        pytest.param("nul\x00byte", id="nul"),
        pytest.param("missing.png", id="missing"),
    ],
)
def test_a_csv_cell_that_names_no_file_stays_as_written(tmp_path: Path, cell: str):
    """An `image_urls` cell that cannot be a local file is left for the URL check."""
    from evolink.cli._input import _reference  # noqa: PLC0415

    assert cell == _reference(cell, tmp_path)
