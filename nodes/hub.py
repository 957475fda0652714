"""Optional model download from the Hugging Face hub into ComfyUI's model folders."""

from __future__ import annotations

import folder_paths

from ..loaders.hub import fetch_to_folder


def download_to_models(repo_id: str, filename: str, folder: str) -> str:
    """Fetch ``filename`` of ``repo_id`` into the first path of ComfyUI's ``folder``."""
    return fetch_to_folder(repo_id, filename, folder_paths.get_folder_paths(folder)[0])
