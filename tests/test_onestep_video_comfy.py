"""APT-style one-step video on ComfyUI's own Wan model: the rule x0 = z - v holds exactly, and
deterministic refinement is the Euler rule (ComfyUI's own Euler sampler), on a tiny Wan DiT."""

import pytest
import torch

pytestmark = pytest.mark.comfy

LATENT = (1, 16, 3, 4, 6)
SEED = 5


@pytest.fixture(scope="module")
def apt(comfy, tmp_path_factory):
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.onestep_video import load_onestep_video

    root = tmp_path_factory.mktemp("apt")
    paths = {"t2v": factory.write_apt_video(str(root / "apt.safetensors"), dtype=torch.float32),
             "fixed": factory.write_apt_video(str(root / "apt9.safetensors"), frames=9, dtype=torch.float32),
             "i2v": factory.write_apt_video(str(root / "apt_i2v.safetensors"), in_dim=36, dtype=torch.float32),
             "sd": factory.write_unet_file(str(root / "sd_unet.safetensors"))}
    model, info = load_onestep_video(paths["t2v"], "fp32")
    return {"model": model, "info": info, "paths": paths}


def _ctx():
    return torch.randn(1, 12, 4096, generator=torch.Generator().manual_seed(2))


def _generate(model, steps=1, latent=None):
    from tempo_pack.nodes.onestep import generate

    latent = torch.zeros(LATENT) if latent is None else latent
    out = generate(model, [[_ctx(), {}]], None, {"samples": latent}, SEED, steps, 1.0, 1.0)
    return model.model.process_latent_in(out["samples"])


def test_info_reads_the_rule_from_metadata(apt):
    assert "one step at t = 1000, x0 = z - v, shift 5" in apt["info"]


def test_one_step_is_z_minus_v(apt):
    import comfy.sample

    model = apt["model"]
    z = comfy.sample.prepare_noise(torch.zeros(LATENT), SEED)
    with torch.no_grad():
        v = model.model.diffusion_model(z, torch.tensor([1000.0]), _ctx())
    torch.testing.assert_close(_generate(model), z - v, rtol=1e-5, atol=1e-5)


def test_deterministic_refinement_is_comfyui_euler(apt):
    import comfy.sample
    import comfy.samplers

    from tempo_pack.nodes.onestep import onestep_sigmas

    model = apt["model"]
    sigmas = onestep_sigmas(model, 3, 1.0)
    assert sigmas[:3].tolist() == pytest.approx([1.0, 5 * (2 / 3) / (1 + 4 * (2 / 3)), 5 * (1 / 3) / (1 + 4 / 3)])
    noise = comfy.sample.prepare_noise(torch.zeros(LATENT), SEED)
    cond = [[_ctx(), {}]]
    native = comfy.sample.sample_custom(model, noise, 1.0, comfy.samplers.sampler_object("euler"), sigmas, cond, cond,
                                        torch.zeros(LATENT), seed=SEED)
    torch.testing.assert_close(_generate(model, 3), model.model.process_latent_in(native), rtol=1e-4, atol=1e-5)


def test_frame_count_the_model_cannot_take(apt):
    from tempo_pack.nodes.onestep_video import load_onestep_video

    model, _ = load_onestep_video(apt["paths"]["fixed"], "fp32")
    with pytest.raises(ValueError, match="trained on 9-frame clips \\(3 latent frames\\).*set the length to 9"):
        _generate(model, latent=torch.zeros(1, 16, 5, 4, 6))


def test_image_to_video_model_without_a_start_image(apt):
    from tempo_pack.nodes.onestep_video import load_onestep_video

    model, info = load_onestep_video(apt["paths"]["i2v"], "fp32")
    assert "image-to-video" in info
    with pytest.raises(ValueError, match="image-to-video model and no start image.*WanImageToVideo"):
        _generate(model)


def test_wrong_family_is_named(apt):
    from tempo_pack.nodes.onestep_video import load_onestep_video

    with pytest.raises(ValueError, match="not a Wan 2.1 video transformer.*for SVD use"):
        load_onestep_video(apt["paths"]["sd"], "fp32")

