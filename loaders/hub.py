"""Fetching a model file by Hugging Face repo id into a model folder (plain huggingface-hub)."""

from __future__ import annotations

import os
import re
import shutil

from .files import CheckpointError
from .paths import is_inside, name_problem, shown

REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


def fetch_to_folder(repo_id: str, filename: str, folder: str) -> str:
    """``folder/<org>--<name>/<filename>``, downloaded (or taken from the local hub cache, which
    is all ``HF_HUB_OFFLINE=1`` allows) unless already there. Progress shows in the console."""
    if not isinstance(repo_id, str) or not REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise CheckpointError(f"'{shown(repo_id)}' is not a Hugging Face repo id; write it as org/name, "
                              "e.g. stabilityai/sd-turbo")
    if not filename:
        raise CheckpointError(f"no file name given for {repo_id}; name the file to fetch, e.g. sd_turbo.safetensors")
    target = os.path.join(folder, repo_id.replace("/", "--"), filename)
    if name_problem(filename) is not None or not is_inside(target, [folder]):
        raise CheckpointError(f"'{shown(filename)}' is not a file name inside {repo_id}; name a file of the repo, "
                              "e.g. sd_turbo.safetensors (no absolute path, no '..')")
    if os.path.isfile(target):
        return target
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError:
        raise CheckpointError("huggingface-hub is not installed: pip install huggingface-hub") from None
    try:
        cached = hf_hub_download(repo_id=repo_id, filename=filename)
    except LocalEntryNotFoundError:
        raise CheckpointError(f"{repo_id}/{filename} is not in the local hub cache and the hub cannot be reached; "
                              f"connect to the internet, or put the file in {folder}") from None
    except (RepositoryNotFoundError, EntryNotFoundError) as e:
        raise CheckpointError(f"{repo_id}/{filename} does not exist on the hub, or needs a token "
                              f"(huggingface-cli login): {str(e).splitlines()[0]}") from None
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target + ".partial"
    try:
        os.link(os.path.realpath(cached), tmp)  # no second copy when the cache is on the same disk
    except OSError:
        shutil.copyfile(cached, tmp)
    os.replace(tmp, target)
    return target
