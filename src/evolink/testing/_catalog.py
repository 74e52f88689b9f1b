"""What the simulator knows about models, prices and task error codes.

The models are Evolink's (`_models.json`, generated from its OpenAPI files); prices are
plausible, not Evolink's: the seed documents 2.5 credits per `gpt-4o-image` image, the rest
are made up to differ. Images are billed per image, videos per second of `duration`, audio
per call.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from evolink.testing._media import Kind
from evolink.testing._schemas import catalog

#: The seed's sizes for `gpt-4o-image`: ratios and the pixel sizes they stand for.
GPT4O_SIZES = ("1:1", "2:3", "3:2", "1024x1024", "1024x1536", "1536x1024")
GPT4O_MODELS = frozenset({"gpt-4o-image", "gpt-4o-image-beta"})


@attrs.frozen
class ModelSpec:
    """How the simulator bills one model (and validates one that has no OpenAPI file).

    Attributes:
        name: the `model` value.
        price: credits per image (image models), per second of video (video models) or
            per call (audio models).
        requires_prompt: whether `prompt` must be given (models without a schema only).
        requires_image_urls: whether `image_urls` must be given (ditto).
        kind: what the model makes; models without a schema make images.
    """

    name: str
    price: Decimal
    requires_prompt: bool = True
    requires_image_urls: bool = False
    kind: Kind = Kind.IMAGE


#: Credits by exact name (images: per image).
_PRICES = {
    "gpt-4o-image-beta": "2.5",
    "gpt-image-1": "4",
    "gpt-image-1.5": "4",
    "gpt-image-1.5-beta": "3",
    "gpt-image-2": "2.5",  # the SDK's default: the seed's price, as gpt-4o-image
    "gpt-image-2-beta": "5",
    "grok-imagine-image-2.0": "3",
    "krea-2-turbo": "1.5",
    "mj-v7": "8",
    "mj-v8.1": "10",
    "nano-banana-beta": "2",
    "nano-banana-2-beta": "3",
    "nano-banana-2-lite-beta": "1.5",
    "nano-banana-pro-beta": "5",
    "gemini-3.1-flash-image-preview": "3.5",
    "gemini-3.1-flash-lite-image": "2",
    "gemini-3-pro-image-preview": "6",
    "qwen-image-3.0": "2",
    "qwen-image-3.0-pro": "3",
    "qwen-image-edit": "2",
    "qwen-image-edit-plus": "2.5",
    "doubao-seedream-4.0": "2.5",
    "doubao-seedream-4.5": "3",
    "doubao-seedream-5.0-lite": "2.5",
    "doubao-seedream-5.0-pro": "4",
    "doubao-seedream-5.0-pro-layerize": "4",
    "wan2.5-text-to-image": "2.5",
    "wan2.5-image-to-image": "2.5",
    "z-image-turbo": "1",
    "suno-persona": "1",
}
#: Credits by name prefix, the first match wins (videos: per second; audio: per call).
_FAMILY_PRICES = (
    ("mj-v7-", "4"),
    ("mj-v8.1-", "5"),
    ("kling-", "1.2"),
    ("veo-3.1-fast", "1.5"),
    ("veo3.1-fast", "1.5"),
    ("veo", "3"),
    ("sora-2-pro", "3"),
    ("sora-2", "1.5"),
    ("seedance-2.5", "1"),
    ("seedance-2.0-mini", "0.4"),
    ("seedance-2.0-fast", "0.6"),
    ("seedance", "0.8"),
    ("doubao-seedance", "0.6"),
    ("wan", "0.6"),
    ("MiniMax-Hailuo", "0.7"),
    ("minimax", "0.7"),
    ("grok", "0.5"),
    ("happyhorse", "0.6"),
    ("topaz", "0.3"),
    ("omnihuman", "1.2"),
    ("gemini-omni", "1.5"),
    ("videoretalk", "0.4"),
    ("suno", "3"),
    ("qwen", "0.5"),
    ("doubao-seed-audio", "1"),
)
_KIND_PRICES = {Kind.IMAGE: "3", Kind.VIDEO: "1", Kind.AUDIO: "1"}


def _price(name: str, kind: Kind) -> Decimal:
    if name in _PRICES:
        return Decimal(_PRICES[name])
    for prefix, price in _FAMILY_PRICES:
        if name.startswith(prefix):
            return Decimal(price)
    return Decimal(_KIND_PRICES[kind])


def _default_models() -> dict[str, ModelSpec]:
    models = catalog()
    specs = {
        name: ModelSpec(name, _price(name, doc.kind), kind=doc.kind)
        for name, doc in models.models.items()
    }
    # An alias bills like its model unless `prices=` says otherwise.
    for alias, target in models.aliases.items():
        specs[alias] = attrs.evolve(specs[target], name=alias)
    return dict(sorted(specs.items()))


#: Every documented model and alias (retired ones too), with its made-up price.
DEFAULT_MODELS: dict[str, ModelSpec] = _default_models()

#: Task error codes after which the request itself must change (SPEC.md).
PERMANENT_TASK_ERRORS = (
    "content_policy_violation",
    "invalid_parameters",
    "image_processing_error",
    "image_dimension_mismatch",
    "request_cancelled",
)
#: Task error codes worth retrying later as a new task (SPEC.md).
RETRYABLE_TASK_ERRORS = (
    "generation_failed_no_content",
    "service_error",
    "generation_timeout",
    "resource_exhausted",
    "quota_exceeded",
    "service_unavailable",
    "resource_not_found",
    "unknown_error",
)
TASK_ERROR_CODES = PERMANENT_TASK_ERRORS + RETRYABLE_TASK_ERRORS

TASK_ERROR_MESSAGES = {
    "content_policy_violation": (
        "Content policy violation.\nYour request was blocked by safety filters."
    ),
    "invalid_parameters": "Invalid parameters for this model.",
    "image_processing_error": "A reference image could not be processed.",
    "image_dimension_mismatch": "The mask and the reference image differ in size.",
    "request_cancelled": "The request was cancelled.",
    "generation_failed_no_content": "The model returned no image. Try again.",
    "service_error": "The upstream service failed. Try again later.",
    "generation_timeout": "Generation timed out. Try again later.",
    "resource_exhausted": "The upstream service is out of capacity. Try again later.",
    "quota_exceeded": "The upstream quota is exhausted. Try again later.",
    "service_unavailable": "The upstream service is unavailable. Try again later.",
    "resource_not_found": "A resource the task needed was not found.",
    "unknown_error": "An unknown error occurred.",
}
