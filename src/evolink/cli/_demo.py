"""`evolink demo`: fifty varied prompts against the in-process simulator, in real time.

Also where `--simulate` gets its simulator: tasks take a few seconds of wall-clock time, so a
newcomer sees the live progress move, images land, and the gallery fill in under a minute.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import anyio

from evolink._journal import DEFAULT_RUN
from evolink.cli._run_folder import JOURNAL_NAME, FolderJournal, journal_exists

#: Seconds a simulated task takes, at least and at most.
DEMO_DURATIONS = (2.0, 6.0)
#: Share of demo tasks that fail, so the gallery shows what a failure looks like.
DEMO_FAILURES = 0.06
#: The key the CLI hands the in-process simulator (any key works there; it is not a secret).
SIMULATOR_KEY = "sk-evo-simulator-local-demo"

_SUBJECTS = (
    "a red fox in snow",
    "a lighthouse on a cliff at dusk",
    "a bowl of ramen with steam rising",
    "an astronaut tending a rooftop garden",
    "a paper boat on a rainy street",
    "a library inside a hollow tree",
    "a vintage motorbike by the sea",
    "a hummingbird drinking from a fuchsia",
    "a cozy cabin under the northern lights",
    "a robot painting a self-portrait",
    "a koi pond in autumn",
    "a steam train crossing a viaduct",
    "a jellyfish in deep blue water",
    "a street market in Marrakesh",
    "a snow leopard on a rocky ledge",
    "a cup of coffee with latte art of a cat",
    "a treehouse village connected by rope bridges",
    "an old map with a sea monster",
    "a desert canyon at sunrise",
    "a glass greenhouse full of orchids",
    "a tiny dragon sleeping on a stack of books",
    "a bicycle leaning on a sunflower field fence",
    "a neon-lit noodle bar in the rain",
    "a polar bear cub on an ice floe",
    "a medieval castle in fog",
)
_STYLES = (
    "watercolor",
    "35mm photograph",
    "isometric illustration",
    "oil painting",
    "studio ghibli style",
    "linocut print",
    "cinematic lighting",
    "pixel art",
)
_SIZES = ("1:1", "2:3", "3:2")


def demo_rows(count: int) -> list[dict[str, Any]]:
    """`count` varied rows (prompt, size, n) for the demo, always the same ones."""
    styles = itertools.cycle(_STYLES)
    rows: list[dict[str, Any]] = []
    for number in range(count):
        subject = _SUBJECTS[number % len(_SUBJECTS)]
        rows.append(
            {
                "prompt": f"{subject}, {next(styles)}",
                "size": _SIZES[number % len(_SIZES)],
                "n": 2 if number % 5 == 0 else 1,
            }
        )
    return rows


class DemoFolderError(Exception):
    """The folder holds another run's work: the demo will not clear it."""


#: Marks a folder the demo wrote, so it only ever clears its own.
DEMO_MARKER = ".evolink-demo"


def clear_previous_demo(folder: Path) -> None:
    """Remove what an earlier demo wrote in `folder` (its images, manifest, gallery, journal).

    Only files the earlier demo's journal names are removed; nothing else in the folder.
    Then mark the folder as the demo's.

    Raises:
        DemoFolderError: the folder holds a journal the demo did not write.
        JournalError: the demo's own journal cannot be read.
    """
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / DEMO_MARKER
    if not journal_exists(folder):
        marker.touch()
        return
    if not marker.exists():
        raise DemoFolderError(
            f"{folder} holds another run's journal; the demo will not touch it "
            "(choose another --out)"
        )
    journal = FolderJournal.open(folder)
    try:
        saved = anyio.run(journal.store.files, DEFAULT_RUN)  # before the run's own loop
        names = [f.path for files in saved.values() for f in files]
    finally:
        journal.close()
    for name in names:
        path = folder / Path(name).name
        path.unlink(missing_ok=True)
    for name in ("manifest.jsonl", "index.html", JOURNAL_NAME):
        (folder / name).unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        (folder / f"{JOURNAL_NAME}{suffix}").unlink(missing_ok=True)
