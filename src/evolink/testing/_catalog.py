"""What the simulator knows about models, prices and task error codes.

Model names come from Evolink's OpenAPI files; prices are plausible, not Evolink's (the
seed documents 2.5 credits per `gpt-4o-image` image, the rest are made up to differ).
"""

from __future__ import annotations

from decimal import Decimal

import attrs

#: The seed's sizes for `gpt-4o-image`: ratios and the pixel sizes they stand for.
GPT4O_SIZES = ("1:1", "2:3", "3:2", "1024x1024", "1024x1536", "1536x1024")
GPT4O_MODELS = frozenset({"gpt-4o-image", "gpt-4o-image-beta"})


@attrs.frozen
class ModelSpec:
    """How the simulator validates and bills one model.

    Attributes:
        name: the `model` value.
        price: credits per image.
        requires_prompt: whether `prompt` must be given.
        requires_image_urls: whether `image_urls` must be given (edit models).
    """

    name: str
    price: Decimal
    requires_prompt: bool = True
    requires_image_urls: bool = False


def _spec(name: str, price: str, **kwargs: bool) -> ModelSpec:
    return ModelSpec(name, Decimal(price), **kwargs)


DEFAULT_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _spec("gpt-4o-image", "2.5"),
        _spec("gpt-4o-image-beta", "2.5"),
        _spec("gpt-image-1.5", "4"),
        _spec("gpt-image-2", "2.5"),  # the SDK's default: the seed's price, as gpt-4o-image
        _spec("gpt-image-2-beta", "5"),
        _spec("grok-imagine-image-2.0", "3"),
        _spec("krea-2-turbo", "1.5"),
        _spec("mj-v7", "8"),
        _spec("nano-banana-beta", "2"),
        _spec("nano-banana-2-beta", "3"),
        _spec("nano-banana-2-lite-beta", "1.5"),
        _spec("nano-banana-pro-beta", "5"),
        _spec("gemini-3.1-flash-image-preview", "3.5"),
        _spec("gemini-3.1-flash-lite-image", "2"),
        _spec("gemini-3-pro-image-preview", "6"),
        _spec("qwen-image-3.0", "2"),
        _spec("qwen-image-3.0-pro", "3"),
        _spec("qwen-image-edit", "2", requires_image_urls=True),
        _spec("qwen-image-edit-plus", "2.5", requires_image_urls=True),
        _spec("doubao-seedream-4.0", "2.5"),
        _spec("doubao-seedream-4.5", "3"),
        _spec("doubao-seedream-5.0-lite", "2.5"),
        _spec("doubao-seedream-5.0-pro", "4"),
        _spec(
            "doubao-seedream-5.0-pro-layerize",
            "4",
            requires_prompt=False,
            requires_image_urls=True,
        ),
        _spec("wan2.5-text-to-image", "2.5"),
        _spec("wan2.5-image-to-image", "2.5", requires_image_urls=True),
        _spec("z-image-turbo", "1"),
    )
}

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
