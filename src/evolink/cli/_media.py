"""What a run's saved files are: images, or media a page plays (videos, sounds)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

#: Files shown with a player instead of an image, by extension (lower case).
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mov", ".m4v"})
AUDIO_SUFFIXES = frozenset({".mp3", ".wav", ".ogg", ".m4a", ".aac", ".flac"})


def files_noun(names: Iterable[str]) -> str:
    """`images`, or `files` once a video or a sound is among `names` (paths or names)."""
    players = VIDEO_SUFFIXES | AUDIO_SUFFIXES
    return "files" if any(PurePosixPath(n).suffix.lower() in players for n in names) else "images"
