"""Fetching by repo id works from a local Hugging Face cache, offline, into a model folder."""

import os

import pytest
import torch
from safetensors.torch import save_file

from tempo_pack.loaders import files
from tempo_pack.loaders.hub import fetch_to_folder

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants as constants

    cache = tmp_path / "hub"
    repo = cache / "models--tempo-test--tiny-turbo"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "blobs").mkdir()
    blob = repo / "blobs" / "deadbeef"
    save_file({"input_blocks.0.0.weight": torch.ones(2, 2)}, str(blob), metadata={"tempo.preset": "SD-Turbo"})
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    os.symlink("../../blobs/deadbeef", snap / "sd_turbo.safetensors")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_fetch_from_local_cache_into_model_folder(offline_cache, tmp_path):
    models = tmp_path / "checkpoints"
    path = fetch_to_folder("tempo-test/tiny-turbo", "sd_turbo.safetensors", str(models))
    assert path == str(models / "tempo-test--tiny-turbo" / "sd_turbo.safetensors")
    sd, meta = files.read_checkpoint(path)
    assert meta["tempo.preset"] == "SD-Turbo" and torch.equal(sd["input_blocks.0.0.weight"], torch.ones(2, 2))
    assert fetch_to_folder("tempo-test/tiny-turbo", "sd_turbo.safetensors", str(models)) == path  # no refetch


def test_missing_offline_file_says_what_to_do(offline_cache, tmp_path):
    with pytest.raises(files.CheckpointError, match="not in the local hub cache"):
        fetch_to_folder("tempo-test/tiny-turbo", "other.safetensors", str(tmp_path))


@pytest.mark.parametrize("repo,name,msg", [("noslash", "a.safetensors", "org/name"), ("a/b", "", "no file name")])
def test_bad_arguments(repo, name, msg, tmp_path):
    with pytest.raises(files.CheckpointError, match=msg):
        fetch_to_folder(repo, name, str(tmp_path))
