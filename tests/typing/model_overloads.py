"""Per-model overloads as users write them: type-checked, never run.

Each `# type: ignore[...]` marks a line mypy must refuse (`warn_unused_ignores` under
`--strict` fails the check if it ever accepts one): a misspelt model, a parameter the model
does not take, a value outside its enum.
"""

from __future__ import annotations

from typing import cast

from typing_extensions import assert_type

from evolink import AsyncEvolink, Evolink, GenerationRequest, Task
from evolink._model_names import ImageModel, VideoModel


async def images(client: AsyncEvolink) -> None:
    assert_type(await client.images.generate("a fox"), Task)  # gpt-image-2 by default
    assert_type(await client.images.generate("a fox", quality="high", resolution="4K"), Task)
    done = await client.images.run("a fox", model="gpt-image-2", size="1:1", timeout=60)
    assert_type(done, Task)
    await client.images.generate("a fox", model="nano-banana-beta", n=2)
    await client.images.generate("a fox", model="gpt-4o-image", size="1:1")  # an alias
    await client.images.generate("a fox", model="gpt-image-3")  # type: ignore[call-overload]
    await client.images.generate("a fox", qualty="high")  # type: ignore[call-overload]
    await client.images.generate("a fox", quality="ultra")  # type: ignore[call-overload]
    await client.images.run("a fox", model="gpt-imag-2", timeout=1)  # type: ignore[call-overload]
    # A video model is no image model.
    await client.images.generate("a fox", model="MiniMax-Hailuo-02")  # type: ignore[call-overload]


async def videos(client: AsyncEvolink) -> None:
    task = await client.videos.generate("a cat", model="MiniMax-Hailuo-02", duration=6)
    assert_type(task, Task)
    done = await client.videos.run(
        "a cat", model="MiniMax-Hailuo-02", quality="768p", timeout=None, max_retries=1
    )
    assert_type(done, Task)
    await client.videos.generate("a cat", model="veo3.1-fast", max_retries=0)  # an alias
    await client.videos.generate("a cat", model="MiniMax-Hailuo-2")  # type: ignore[call-overload]
    await client.videos.generate("a cat", model="MiniMax-Hailuo-02", duration=7)  # type: ignore[call-overload]
    await client.videos.generate("a cat", model="MiniMax-Hailuo-02", seconds=6)  # type: ignore[call-overload]
    await client.videos.run(model="MiniMax-Hailuo-02", durration=6)  # type: ignore[call-overload]


async def audios(client: AsyncEvolink) -> None:
    task = await client.audios.generate("a song", model="suno-v5-beta", instrumental=True)
    assert_type(task, Task)
    assert_type(await client.audios.run("a song", model="suno-v5", timeout=600), Task)
    await client.audios.generate("a song", model="suno-v9-beta")  # type: ignore[call-overload]
    await client.audios.generate("a song", model="suno-v5-beta", instrumental="yes")  # type: ignore[call-overload]
    # suno-persona requires its `model_params`, but the last overload (for a variable of the
    # whole Literal) takes the name without them: the check before sending refuses it.
    await client.audios.generate(model="suno-persona")


async def names_in_variables(client: AsyncEvolink, image: ImageModel, video: VideoModel) -> None:
    # A variable typed with the catalog's Literal takes the named arguments...
    assert_type(await client.images.generate("a fox", model=image, size="1:1"), Task)
    assert_type(await client.videos.run("a cat", model=video, timeout=60), Task)
    # ...but no model's own parameters: another model of the kind may refuse them.
    await client.images.generate("a fox", model=image, quality="high")  # type: ignore[call-overload]
    # A plain `str` is no model name to the types...
    name: str = "a-model-newer-than-the-sdk"
    await client.videos.generate("a cat", model=name)  # type: ignore[call-overload]
    # ...but the run time sends it (with a warning): build the request, or cast the name.
    await client.videos.create(GenerationRequest(prompt="a cat", model=name))
    assert_type(await client.images.generate("a fox", model=cast("ImageModel", name)), Task)


def blocking() -> None:
    with Evolink(api_key="sk-evo-example") as client:
        assert_type(client.images.generate("a fox", model="gpt-image-2", quality="low"), Task)
        assert_type(client.images.run("a fox", resolution="2K", timeout=300), Task)
        assert_type(client.images.create(GenerationRequest(prompt="a fox")), Task)
        client.images.generate("a fox", model="gpt-image-3")  # type: ignore[call-overload]
        client.images.run("a fox", quality="ultra")  # type: ignore[call-overload]
        client.images.generate("a fox", colour="red")  # type: ignore[call-overload]


def sync_videos_are_typed_per_model(client: Evolink) -> None:
    """The blocking video and audio doors check model names and parameters too."""
    clip = client.videos.run("a fox", model="kling-v3-text-to-video", duration=5)
    assert_type(clip, Task)
    client.videos.run("a fox", model="kling-v3-text-to-vidoe")  # type: ignore[call-overload]
    client.audios.generate("hello", model="doubao-seed-audio-1-0", format="flac")  # type: ignore[call-overload]
