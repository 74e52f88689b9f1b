"""Rules Evolink documents in prose where the schema says only `string`.

The catalog is generated from the OpenAPI schemas; a few limits live only in a field's
description. They are written here by hand, each quoting its source, and kept few.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from evolink._errors import ValidationError

# gpt-image-2 `size` (its OpenAPI description): `auto`, one of 15 ratios, or `WxH` with both
# edges multiples of 16 in [16, 3840], 655,360 to 8,294,400 pixels, aspect at most 3:1.
_GPT_IMAGE_2_RATIOS = frozenset(
    {"1:1", "1:2", "2:1", "1:3", "3:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4"}
    | {"9:16", "16:9", "9:21", "21:9"}
)
_PIXELS = re.compile(r"(\d{1,5})[x\u00d7](\d{1,5})")


def _gpt_image_2_size(size: str) -> str | None:
    if size == "auto" or size in _GPT_IMAGE_2_RATIOS:
        return None
    match = _PIXELS.fullmatch(size)
    if match is None:
        ratios = ", ".join(sorted(_GPT_IMAGE_2_RATIOS))
        return f"{size!r} is not auto, a ratio ({ratios}) or WxH pixels"
    width, height = int(match[1]), int(match[2])
    if width % 16 or height % 16 or not (16 <= width <= 3840 and 16 <= height <= 3840):
        return f"{size!r}: each edge is a multiple of 16 from 16 to 3840"
    if not 655_360 <= width * height <= 8_294_400:
        return f"{size!r}: {width * height} pixels; from 655,360 to 8,294,400"
    if max(width, height) > 3 * min(width, height):
        return f"{size!r}: the aspect ratio is at most 3:1"
    return None


#: Per model, per field: a check returning what is wrong, or None.
PROSE_RULES: Mapping[str, Mapping[str, Callable[[str], str | None]]] = {
    "gpt-image-2": {"size": _gpt_image_2_size},
}


def _gpt_4o_image(body: Mapping[str, object]) -> tuple[str, str] | None:
    # The seed page (SPEC.md): n is 1, 2 or 4; at most 5 reference images; a mask only with
    # a single reference image.
    n = body.get("n")
    if n is not None and n not in (1, 2, 4):
        return "n", f"{n!r} is not one of 1, 2, 4"
    images = body.get("image_urls")
    count = len(images) if isinstance(images, list) else 0
    if count > 5:
        return "image_urls", f"{count} images; at most 5"
    if body.get("mask_url") is not None and count != 1:
        return "mask_url", f"a mask goes with exactly one reference image, not {count}"
    return None


#: Per model: a check of the whole body returning (field, what is wrong), or None.
BODY_RULES: Mapping[str, Callable[[Mapping[str, object]], tuple[str, str] | None]] = {
    "gpt-4o-image-beta": _gpt_4o_image,
}


def check_prose_rules(model: str, body: Mapping[str, object], doc: str) -> None:
    """Raise `ValidationError` if a field of `body` breaks a rule the docs state in prose."""
    for field, check in PROSE_RULES.get(model, {}).items():
        value = body.get(field)
        if isinstance(value, str) and (problem := check(value)) is not None:
            raise ValidationError(field, "documented", f"{problem} ({model}; see {doc})")
    body_rule = BODY_RULES.get(model)
    if body_rule is not None and (found := body_rule(body)) is not None:
        field, problem = found
        raise ValidationError(field, "documented", f"{problem} ({model}; see {doc})")
