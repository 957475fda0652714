"""Bad input to the one-step image nodes gets a message that names the problem and the fix."""

import os
import shutil

import pytest
import torch
from safetensors.torch import save_file

pytestmark = pytest.mark.comfy


@pytest.fixture(scope="module")
def ckpts(comfy, tmp_path_factory):
    from comfy_helpers import model_folder
    from tempo_pack.factory import checkpoints as factory

    root = tmp_path_factory.mktemp("ckpts")
    factory.write_unet_file(str(root / "plain_unet.safetensors"))
    factory.write_unet_file(str(root / "dmd2_unet.safetensors"), preset="DMD2")
    z = torch.zeros(4, 4)
    save_file({"encoder.down.0.block.0.conv1.weight": z, "decoder.up.0.block.0.conv1.weight": z.clone()},
              str(root / "vae.safetensors"))
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": z}, str(root / "lora.safetensors"))
    save_file({"text_model.encoder.layers.0.mlp.fc1.weight": z}, str(root / "clip_l.safetensors"))
    shutil.copy(root / "dmd2_unet.safetensors", root / "broken.safetensors")
    with open(root / "broken.safetensors", "r+b") as f:
        f.truncate(os.path.getsize(root / "broken.safetensors") // 2)

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch /tmp/tempo_pwned_node",))

    torch.save({"state_dict": {"input_blocks.0.0.weight": z}, "x": Evil()}, str(root / "evil.ckpt"))
    (root / "random.ckpt").write_bytes(os.urandom(4096))
    os.makedirs(root / "diffusers" / "half_pipe" / "vae")  # a partial download: no unet/
    with model_folder("checkpoints", root), model_folder("diffusers", root / "diffusers"):
        yield root


def _load(name, preset="auto"):
    from tempo_pack.nodes.onestep_image import OneStepImageLoader

    return OneStepImageLoader.execute(ckpt_name=name, preset=preset, weight_dtype="fp32")


@pytest.mark.parametrize("name,message", [
    ("vae.safetensors", "vae.safetensors is a VAE: load it with ComfyUI's 'Load VAE' node"),
    ("lora.safetensors", "lora.safetensors is a LoRA"),
    ("clip_l.safetensors", "clip_l.safetensors is a text encoder"),
    ("broken.safetensors", "truncated.*download it again"),
    ("evil.ckpt", "weights_only=True so no code from a checkpoint ever runs"),
    ("random.ckpt", "is not a torch checkpoint: its bytes do not read as one .*download it again"),
    ("half_pipe", "'half_pipe' is a folder in models/diffusers/ without unet/ or transformer/"),
    ("missing.safetensors", "is not one of the files in models/checkpoints/"),
    ("plain_unet.safetensors", "could not tell which one-step family.*Pick it in the loader's 'preset' input"),
])
def test_loader_refuses_with_a_clear_message(ckpts, name, message):
    if os.path.exists("/tmp/tempo_pwned_node"):
        os.remove("/tmp/tempo_pwned_node")
    with pytest.raises(ValueError, match=message):
        _load(name)
    assert not os.path.exists("/tmp/tempo_pwned_node")


def test_preset_of_another_architecture_is_refused(ckpts):
    with pytest.raises(ValueError, match="the SDXL-Turbo preset is published for SDXL models, and this model is SD 1.5"):
        _load("dmd2_unet.safetensors", "SDXL-Turbo")


def test_auto_preset_is_reported(ckpts):
    out = _load("dmd2_unet.safetensors")
    info = out.args[3]
    assert info.startswith("DMD2 on SD15: one step at t = 999") and "auto: metadata tempo.preset" in info
    assert out.args[1] is None and out.args[2] is None  # UNet-only: no CLIP / VAE


def test_strength_and_latent_errors(ckpts):
    from tempo_pack.nodes.onestep import OneStepGenerate, OneStepSigmas

    model = _load("dmd2_unet.safetensors").args[0]
    with pytest.raises(ValueError, match=r"strength 1.5 is outside \(0, 1\]"):
        OneStepSigmas.execute(model=model, steps=1, strength=1.5)
    cond = [[torch.zeros(1, 5, 768), {}]]
    with pytest.raises(ValueError, match="has 16 channels but this model takes 4"):
        OneStepGenerate.execute(model=model, positive=cond, seed=0, steps=1, strength=1.0, cfg=1.0,
                                latent={"samples": torch.ones(1, 16, 8, 8)})
    with pytest.raises(ValueError, match="width and height must be multiples of 8"):
        OneStepGenerate.execute(model=model, positive=cond, seed=0, steps=1, strength=1.0, cfg=1.0,
                                image=torch.zeros(1, 60, 64, 3), vae=object())
    with pytest.raises(ValueError, match="no negative conditioning"):
        OneStepGenerate.execute(model=model, positive=cond, seed=0, steps=1, strength=1.0, cfg=2.0,
                                latent={"samples": torch.zeros(1, 4, 8, 8)})


def test_model_from_elsewhere_is_explained(ckpts):
    from tempo_pack.nodes.unet_models import load_image_model
    from tempo_pack.nodes.onestep import OneStepSigmas

    model = load_image_model(str(ckpts / "plain_unet.safetensors"), "fp32")[0]  # no preset applied
    with pytest.raises(ValueError, match="was not loaded by a Tempo loader"):
        OneStepSigmas.execute(model=model, steps=1, strength=1.0)


def test_custom_start_reaches_the_loaders_preset(ckpts):
    """The loader's custom_start input sets how text-to-image starts for the custom preset."""
    from tempo_pack.nodes.onestep import get_preset
    from tempo_pack.nodes.onestep_image import OneStepImageLoader

    for start in ("pure", "scaled"):
        out = OneStepImageLoader.execute(ckpt_name="dmd2_unet.safetensors", preset="custom", weight_dtype="fp32",
                                         custom_timestep=500, custom_prediction="eps", custom_start=start)
        assert get_preset(out.args[0]).start == start and f"{start} noise start" in out.args[3]
    with pytest.raises(ValueError, match="custom_start 'x' is not one of scaled, pure"):
        OneStepImageLoader.execute(ckpt_name="dmd2_unet.safetensors", preset="custom", weight_dtype="fp32",
                                   custom_start="x")
