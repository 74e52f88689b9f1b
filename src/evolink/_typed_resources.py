"""The client's resources as type checkers see them: per-model overloads and the rest.

`AsyncEvolink().images` is an `Images` at run time; under TYPE_CHECKING the client declares it
a `TypedImages`, whose `generate` and `run` are the generated overloads of
`_model_overloads` (one per set of models with the same parameters) and whose other methods
are `Images`'s own. Assigning the real object to the declared type makes mypy hold the two
together: a protocol method the class cannot honour is a type error in `_client.py`.

The rule for model names: the types accept the catalog's names (and the old names the
platform maps to them) with each model's own parameters; a misspelt name matches no overload.
At run time any name is sent, an unknown one with a warning; for a model newer than the SDK,
`typing.cast` the resource or send `client.videos.create(GenerationRequest(model=...))`.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from evolink._model_overloads import AudioOverloads, ImageOverloads, VideoOverloads
from evolink._models import Task

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from evolink._batch import Batch
    from evolink._batch_options import BatchKwargs
    from evolink._batch_run import BatchRun
    from evolink._generations import Requests
    from evolink._models import GenerationRequest, MediaKind
    from evolink._outcomes import BatchReport
    from evolink._sync import SyncBatch
    from evolink._transport import Pacer


class _Resource(Protocol):
    """What every async media resource has beside `generate` and `run` (`Generations`)."""

    @property
    def kind(self) -> MediaKind: ...

    async def create(
        self,
        request: GenerationRequest,
        *,
        idempotency_key: str | None = None,
        max_retries: int | None = None,
        pacer: Pacer | None = None,
    ) -> Task: ...

    def generate_many(self, requests: Requests, **options: Unpack[BatchKwargs]) -> BatchRun: ...

    def batch(self, **options: Unpack[BatchKwargs]) -> Batch: ...


class TypedImages(ImageOverloads[Coroutine[Any, Any, Task]], _Resource, Protocol):
    """`AsyncEvolink().images`: `Images`, with a `generate` and a `run` overload per model."""


class TypedVideos(VideoOverloads[Coroutine[Any, Any, Task]], _Resource, Protocol):
    """`AsyncEvolink().videos`: `Videos`, with a `generate` and a `run` overload per model."""


class TypedAudios(AudioOverloads[Coroutine[Any, Any, Task]], _Resource, Protocol):
    """`AsyncEvolink().audios`: `Audios`, with a `generate` and a `run` overload per model."""


class _SyncResource(Protocol):
    """What every blocking media door has beside `generate` and `run`."""

    def create(
        self,
        request: GenerationRequest,
        *,
        idempotency_key: str | None = None,
        max_retries: int | None = None,
        pacer: Pacer | None = None,
    ) -> Task: ...

    def generate_many(self, requests: Requests, **options: Unpack[BatchKwargs]) -> BatchReport: ...

    @property
    def kind(self) -> MediaKind: ...

    def batch(self, **options: Unpack[BatchKwargs]) -> SyncBatch: ...


class TypedSyncImages(ImageOverloads[Task], _SyncResource, Protocol):
    """`Evolink().images`: `SyncImages`, with a `generate` and a `run` overload per model."""


class TypedSyncVideos(VideoOverloads[Task], _SyncResource, Protocol):
    """`Evolink().videos`: `SyncVideos`, with a `generate` and a `run` overload per model."""


class TypedSyncAudios(AudioOverloads[Task], _SyncResource, Protocol):
    """`Evolink().audios`: `SyncAudios`, with a `generate` and a `run` overload per model."""
