"""Optional model download from the Hugging Face hub into ComfyUI's model folders."""

from __future__ import annotations

import os

import comfy.utils
import folder_paths

from .common import TempoInputError


def download_to_models(repo_id: str, filename: str, folder: str) -> str:
    """Download ``filename`` of ``repo_id`` into the first path of ComfyUI's ``folder`` and return
    its path. Files already there are not downloaded again; the hub cache is reused, and
    ``HF_HUB_OFFLINE=1`` works from a local cache. Progress shows on the node."""
    if not filename:
        raise TempoInputError(f"hf_repo is '{repo_id}' but hf_filename is empty; name the file to download")
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError)
    except ImportError:
        raise TempoInputError("huggingface-hub is not installed: pip install huggingface-hub") from None
    target_dir = os.path.join(folder_paths.get_folder_paths(folder)[0], repo_id.replace("/", "--"))
    target = os.path.join(target_dir, filename)
    if os.path.isfile(target):
        return target
    pbar = comfy.utils.ProgressBar(1)
    try:
        path = hf_hub_download(repo_id=repo_id, filename=filename, local_dir=target_dir)
    except (RepositoryNotFoundError, EntryNotFoundError) as e:
        raise TempoInputError(f"{repo_id}/{filename} does not exist on the hub (or needs a token): {e}") from None
    except LocalEntryNotFoundError:
        raise TempoInputError(f"{repo_id}/{filename} is not in the local hub cache and the hub cannot be reached; "
                              "connect to the internet or put the file in models/" + folder) from None
    pbar.update_absolute(1, 1)
    return path
