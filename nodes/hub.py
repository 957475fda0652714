"""Optional model download from the Hugging Face hub into ComfyUI's model folders.

Off unless the person running the server turns it on (``TEMPO_ALLOW_HUB_DOWNLOADS=1`` in
ComfyUI's environment): a shared workflow must not fill a disk with files nobody asked for.
"""

from __future__ import annotations

import os

import folder_paths

from ..loaders.hub import fetch_to_folder
from ..loaders.paths import shown
from .common import TempoInputError

HUB_SWITCH = "TEMPO_ALLOW_HUB_DOWNLOADS"


def hub_downloads_allowed() -> bool:
    return os.environ.get(HUB_SWITCH, "").strip().lower() in ("1", "true", "yes", "on")


def download_to_models(repo_id: str, filename: str, folder: str) -> str:
    """Fetch ``filename`` of ``repo_id`` into the first path of ComfyUI's ``folder``."""
    if not hub_downloads_allowed():
        raise TempoInputError(f"this workflow asks to download {shown(repo_id)}/{shown(filename)} from the Hugging Face "
                              f"hub, and downloads are off on this server. Download the file into models/{folder}/ "
                              f"and pick it in ckpt_name (clear hf_repo), or start ComfyUI with {HUB_SWITCH}=1 to let "
                              "workflows download")
    return fetch_to_folder(repo_id, filename, folder_paths.get_folder_paths(folder)[0])
