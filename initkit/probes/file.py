"""`file:PATH`: ready when the path exists (`until [ -e PATH ]`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from initkit.probes import NotReady

if TYPE_CHECKING:
    from initkit.cancel import Token


class FileProbe:
    def __init__(self, label: str, path: str) -> None:
        self.label = label
        self.path = path

    def check(self, token: Token | None = None) -> str:
        if os.path.exists(self.path):
            return "exists"
        raise NotReady("no such file")
