"""Which input channels the Rasa server offers, written as a credentials file at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import yaml


def channel_settings() -> Dict[str, Any]:
    """The REST channel always; other channels are added when configured."""
    return {"rest": None}


def write_credentials(folder: Path) -> Path:
    """Write the credentials file for `rasa run --credentials` and return its path."""
    path = folder / "credentials.yml"
    path.write_text(yaml.safe_dump(channel_settings(), sort_keys=False))
    return path
