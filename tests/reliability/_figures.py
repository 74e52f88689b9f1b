"""The figures the reliability suite reports: merged into one JSON file and printed.

`docs/reliability.md` quotes them. The file is `$EVOLINK_RELIABILITY_FIGURES`, else
`<tmp>/evolink-reliability/figures.json`; run pytest with `-s` to see the summary lines.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def figures_path() -> Path:
    """Where the figures go."""
    default = Path(tempfile.gettempdir()) / "evolink-reliability" / "figures.json"
    return Path(os.environ.get("EVOLINK_RELIABILITY_FIGURES", default))


def record(name: str, figures: dict[str, Any]) -> None:
    """Merge `figures` under `name` (adding to numbers already there) and print them."""
    path = figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        everything = json.loads(path.read_text())
    except (OSError, ValueError):
        everything = {}
    section = everything.setdefault(name, {})
    for key, value in figures.items():
        known = section.get(key)
        if isinstance(value, (int, float)) and isinstance(known, (int, float)):
            section[key] = known + value
        else:
            section[key] = value
    path.write_text(json.dumps(everything, indent=2, sort_keys=True))
    print(f"\n[reliability] {name}: {json.dumps(figures, sort_keys=True)}")  # noqa: T201
