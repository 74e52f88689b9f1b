"""The model catalog's names and parameter types as users write them: type-checked, never run.

Each `# type: ignore[...]` marks a line mypy must refuse (`warn_unused_ignores` under
`--strict` fails the check if it ever accepts one).
"""

from __future__ import annotations

from evolink._catalog import ModelSpec, model_spec, resolve_alias, validate_body
from evolink._model_names import (
    ArchivedImageModel,
    AudioModel,
    GptImage2Params,
    ImageModel,
    MiniMaxHailuo02Params,
    ModelAlias,
    VideoModel,
)


def create_image(model: ImageModel, params: GptImage2Params) -> None: ...
def create_video(model: VideoModel) -> None: ...
def create_audio(model: AudioModel) -> None: ...
def revive(model: ArchivedImageModel | ModelAlias) -> None: ...


def names() -> None:
    create_image("gpt-image-2", {"prompt": "a red fox in snow"})
    create_video("MiniMax-Hailuo-02")
    create_audio("suno-v5-beta")
    revive("gpt-4o-image")
    revive("gpt-4o-image-beta")
    create_image("gpt-image-3", {"prompt": "a fox"})  # type: ignore[arg-type]
    create_video("gpt-image-2")  # type: ignore[arg-type]


def params() -> None:
    hailuo: MiniMaxHailuo02Params = {"prompt": "a cat", "duration": 6}
    typo: MiniMaxHailuo02Params = {"promt": "a cat"}  # type: ignore[typeddict-unknown-key]
    odd: MiniMaxHailuo02Params = {"duration": 7}  # type: ignore[typeddict-item]
    missing: GptImage2Params = {"n": 1}  # type: ignore[typeddict-item]
    assert hailuo, (typo, odd, missing)


def lookups(body: dict[str, object]) -> str | None:
    spec: ModelSpec | None = model_spec(resolve_alias("gpt-4o-image"))
    validate_body("gpt-image-2", body)
    return None if spec is None else spec.doc
