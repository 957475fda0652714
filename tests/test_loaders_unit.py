"""Checkpoint reading and classification, in plain torch: bad files get clear errors."""

import os

import pytest
import torch
from safetensors.torch import save_file

from tempo_pack.loaders import classify, files


def _sd():
    return {"input_blocks.0.0.weight": torch.randn(8, 4, 3, 3), "out.2.weight": torch.randn(4, 8, 3, 3),
            "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.randn(8, 768)}


def test_reads_safetensors_with_metadata(tmp_path):
    p = str(tmp_path / "m.safetensors")
    save_file(_sd(), p, metadata={"modelspec.architecture": "stable-diffusion-v1"})
    sd, meta = files.read_checkpoint(p)
    assert set(sd) == set(_sd()) and meta["modelspec.architecture"] == "stable-diffusion-v1"
    assert classify.file_kind(sd) == "unet"
    assert classify.image_base(sd, meta) == ("SD15", "metadata modelspec.architecture = stable-diffusion-v1")


def test_truncated_safetensors_says_download_again(tmp_path):
    p = str(tmp_path / "m.safetensors")
    save_file(_sd(), p)
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) - 100)
    with pytest.raises(files.CheckpointError, match="truncated.*download it again"):
        files.read_checkpoint(p)


def test_garbage_named_safetensors(tmp_path):
    p = tmp_path / "m.safetensors"
    p.write_bytes(b"\x80\x02this is not a safetensors file at all" * 10)
    with pytest.raises(files.CheckpointError, match="not a valid safetensors"):
        files.read_checkpoint(str(p))


def test_empty_file(tmp_path):
    p = tmp_path / "m.safetensors"
    p.write_bytes(b"")
    with pytest.raises(files.CheckpointError, match="empty or truncated"):
        files.read_checkpoint(str(p))


class Evil:
    """A pickle that would run code when loaded without weights_only."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/tempo_pwned",))


def test_pickle_with_code_is_refused_and_never_runs(tmp_path):
    marker = "/tmp/tempo_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    p = str(tmp_path / "evil.pt")
    torch.save({"state_dict": _sd(), "payload": Evil()}, p)
    with pytest.raises(files.CheckpointError, match="weights_only=True"):
        files.read_checkpoint(p)
    assert not os.path.exists(marker)


def test_plain_pickle_state_dict_and_wrappers(tmp_path):
    p = str(tmp_path / "m.ckpt")
    torch.save({"state_dict": _sd(), "global_step": 5}, p)
    sd, _ = files.read_checkpoint(p)
    assert set(sd) == set(_sd())
    p2 = str(tmp_path / "sf.pt")
    torch.save({"generator_ema": _sd(), "generator": _sd()}, p2)
    assert set(files.read_checkpoint(p2)[0]) == set(_sd())


def test_truncated_pickle(tmp_path):
    p = str(tmp_path / "m.pt")
    torch.save(_sd(), p)
    with open(p, "r+b") as f:
        f.truncate(200)
    with pytest.raises(files.CheckpointError, match="is not a torch checkpoint: its bytes do not read as one .*download it again"):
        files.read_checkpoint(p)


@pytest.mark.parametrize("keys,kind", [
    (["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"], "lora"),
    (["decoder.up.0.block.0.conv1.weight", "encoder.down.0.block.0.conv1.weight"], "vae"),
    (["text_model.encoder.layers.0.mlp.fc1.weight"], "text_encoder"),
    (["control_model.input_hint_block.0.weight"], "controlnet"),
    (["blocks.0.self_attn.q.weight", "patch_embedding.weight"], "wan_dit"),
    (["model.diffusion_model.input_blocks.0.0.weight"], "checkpoint"),
])
def test_file_kinds(keys, kind):
    assert classify.file_kind({k: torch.zeros(1) for k in keys}) == kind


def test_missing_folder_and_plain_folder(tmp_path):
    with pytest.raises(files.CheckpointError, match="not found"):
        files.read_checkpoint(str(tmp_path / "none.safetensors"))
    with pytest.raises(files.CheckpointError, match="not a diffusers model"):
        files.read_checkpoint(str(tmp_path))


@pytest.mark.parametrize("name,expected", [
    ("sdxl_lightning_1step_unet_x0.safetensors", "SDXL-Lightning-1step"),
    ("Hyper-SDXL-1step-Unet.safetensors", "Hyper-SD-1step"),
    ("dmd2_sdxl_1step_unet_fp16.bin", "DMD2"),
    ("sd_xl_turbo_1.0_fp16.safetensors", "SDXL-Turbo"),
    ("sd_turbo.safetensors", "SD-Turbo"),
    ("instaflow_0_9B_from_sd_1_5", "InstaFlow"),
    ("AnimateLCM-SVD-xt", "AnimateLCM-SVD"),
    ("self_forcing_dmd.pt", None),  # a causal video family, never a one-step preset (not DMD2)
    ("my_model.safetensors", None),
])
def test_detect_preset_from_names(name, expected):
    assert classify.detect_preset(name, {})[0] == expected


@pytest.mark.parametrize("name,family", [("self_forcing_dmd.pt", "Self Forcing"), ("causvid_model.pt", "CausVid"),
                                         ("causal_forcing_framewise.pt", "Causal Forcing")])
def test_causal_families_from_names(name, family):
    """One table of file-name hints serves the one-step presets and the causal families."""
    from tempo_pack.loaders.wan import infer_from_name

    assert classify.family_from_name(name) == family
    assert infer_from_name(name)["family"] == family and infer_from_name(name)["causal"] is True


def test_metadata_preset_wins():
    assert classify.detect_preset("sd_turbo.safetensors", {"tempo.preset": "DMD2"}) == ("DMD2", "metadata tempo.preset")


def test_random_bytes_are_called_corrupt_not_unsafe(tmp_path):
    """A .ckpt of random bytes is a broken download, not a file with Python objects in it."""
    p = tmp_path / "m.ckpt"
    p.write_bytes(os.urandom(4096))
    with pytest.raises(files.CheckpointError, match="is not a torch checkpoint: .*corrupt.*download it again") as e:
        files.read_checkpoint(str(p))
    assert "beyond tensors" not in str(e.value)


def test_a_pickled_object_is_named(tmp_path):
    import argparse

    p = str(tmp_path / "m.ckpt")
    torch.save({"state_dict": _sd(), "args": argparse.Namespace(lr=1)}, p)
    with pytest.raises(files.CheckpointError, match=r"beyond tensors \(argparse.Namespace\).*weights_only=True"):
        files.read_checkpoint(p)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_plain_pickle_that_calls_code_is_called_code_not_corrupt(tmp_path, protocol):
    """A pickle written by pickle.dump (not torch.save) that would run os.system: torch's safe reader
    stops on protocol 5's first opcode before it names anything; its opcodes, read without running,
    name the function."""
    import pickle

    marker = "/tmp/tempo_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    p = tmp_path / "evil.pt"
    p.write_bytes(pickle.dumps({"weight": Evil()}, protocol=protocol))
    with pytest.raises(files.CheckpointError, match=r"beyond tensors \(posix.system\).*weights_only=True") as e:
        files.read_checkpoint(str(p))
    assert "corrupt" not in str(e.value) and not os.path.exists(marker)


def test_torch_advice_never_reaches_the_message(tmp_path):
    """PyTorch's own 'Please file an issue' / 'WeightsUnpickler error' text is not the artist's business."""
    import pickle

    p = tmp_path / "plain.pt"
    p.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}, protocol=5))
    with pytest.raises(files.CheckpointError, match="re-save it with torch.save") as e:
        files.read_checkpoint(str(p))
    for words in ("Please file an issue", "WeightsUnpickler", "Weights only load failed", "PyTorch 2.6"):
        assert words not in str(e.value)


@pytest.mark.parametrize("header", [b"[1, 2, 3]", b'"text"', b'{"w": [1, 2]}'])
def test_a_safetensors_header_that_is_not_a_table(tmp_path, header):
    import struct

    p = tmp_path / "m.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(files.CheckpointError, match="is not a valid safetensors file .*download it again"):
        files.read_checkpoint(str(p))
