"""Stable Video Diffusion UNets published in diffusers naming (AnimateLCM-SVD) convert to the
layout ComfyUI runs, and give diffusers' outputs on the same weights (tiny, fp32)."""

import pytest
import torch

pytestmark = pytest.mark.comfy


FRAMES = 4


@pytest.fixture(scope="module")
def svd_folder(comfy, tmp_path_factory):
    diffusers = pytest.importorskip("diffusers", reason="diffusers (dev dependency) is needed for this cross-check")
    torch.manual_seed(0)
    unet = diffusers.UNetSpatioTemporalConditionModel(
        sample_size=8, in_channels=8, out_channels=4, block_out_channels=(64, 128), layers_per_block=1,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=768, cross_attention_dim=1024, num_attention_heads=(1, 2),
        num_frames=FRAMES).eval()
    with torch.no_grad():
        for p in unet.parameters():
            p.normal_(0, 0.05)
    root = tmp_path_factory.mktemp("svd") / "animatelcm-svd-tiny"
    unet.save_pretrained(str(root / "unet"))
    return root, unet


def test_diffusers_svd_unet_equals_comfyui_video_unet(svd_folder):
    import comfy.model_detection
    import comfy.supported_models

    from tempo_pack.loaders.classify import image_base
    from tempo_pack.nodes.unet_models import _diffusers_to_ldm

    _, ref = svd_folder
    sd = {k: v.clone() for k, v in ref.state_dict().items()}
    ldm = _diffusers_to_ldm(sd)
    assert image_base(ldm)[0] == "SVD"
    config = comfy.model_detection.detect_unet_config(ldm, "")
    model_config = comfy.supported_models.SVD_img2vid(config)
    model_config.set_inference_dtype(torch.float32, None)
    unet = model_config.get_model({}).diffusion_model
    missing, unexpected = unet.load_state_dict(ldm, strict=False)
    assert not missing and not unexpected

    g = torch.Generator().manual_seed(1)
    x, ctx = torch.randn(1, FRAMES, 8, 8, 8, generator=g), torch.randn(1, 1, 1024, generator=g)
    c_noise = torch.tensor([0.25 * torch.log(torch.tensor(10.0))])  # EDM: the UNet sees 0.25 log(sigma)
    ids = torch.tensor([[6.0, 127.0, 0.02]])  # fps - 1, motion bucket, augmentation
    with torch.no_grad():
        theirs = ref(x, c_noise, ctx, ids).sample[0]
        adm = ref.add_time_proj(ids.flatten()).reshape(1, -1)
        ours = unet(x[0], c_noise.repeat(FRAMES), context=ctx.repeat(FRAMES, 1, 1), y=adm.repeat(FRAMES, 1),
                    num_video_frames=FRAMES, image_only_indicator=torch.zeros(1, FRAMES))
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-4)


def _pipeline_loop(unet, noise, image_latent, emb, steps, min_cfg, max_cfg, ids):
    """StableVideoDiffusionPipeline's denoising loop, given the image embedding and latent."""
    from diffusers import EulerDiscreteScheduler

    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
                                   timestep_spacing="leading", timestep_type="continuous", use_karras_sigmas=True,
                                   interpolation_type="linear", steps_offset=1)
    sched.set_timesteps(steps)
    latents = noise[None] * sched.init_noise_sigma
    cfg = max_cfg > 1.0
    image = image_latent[None].repeat(1, FRAMES, 1, 1, 1)
    if cfg:
        image = torch.cat([torch.zeros_like(image), image])
        emb = torch.cat([torch.zeros_like(emb), emb])
        ids = torch.cat([ids, ids])
    guidance = torch.linspace(min_cfg, max_cfg, FRAMES)[None, :, None, None, None]
    for t in sched.timesteps:
        inp = torch.cat([latents] * 2) if cfg else latents
        inp = torch.cat([sched.scale_model_input(inp, t), image], dim=2)
        with torch.no_grad():
            pred = unet(inp, t, encoder_hidden_states=emb, added_time_ids=ids).sample
        if cfg:
            uncond, cond = pred.chunk(2)
            pred = uncond + guidance * (cond - uncond)
        latents = sched.step(pred, t, latents).prev_sample
    return latents[0]


@pytest.mark.parametrize("steps,cfg", [(1, 1.0), (4, 2.5)])
def test_svd_img2vid_equals_diffusers_pipeline(svd_folder, steps, cfg):
    """One step and four, with per-frame linear CFG (native VideoLinearCFGGuidance), on the UNet loaded
    from a diffusers folder: the pack equals diffusers' StableVideoDiffusionPipeline loop."""
    from comfy_extras.nodes_video_model import VideoLinearCFGGuidance

    from tempo_pack.nodes.onestep import apply_preset
    from tempo_pack.nodes.unet_models import load_image_model
    from tempo_pack.nodes.onestep import generate
    from tempo_pack.samplers.onestep import PRESETS

    root, ref = svd_folder
    extras = {}
    model, _, _, base, _ = load_image_model(str(root), "fp32", bases=("SVD",), extras=extras)
    assert base == "SVD" and extras["clip_vision"] is None  # this folder has no image_encoder/
    model = apply_preset(model, PRESETS["SVD"])
    if cfg > 1:
        model = VideoLinearCFGGuidance().patch(model, 1.0)[0]
    g = torch.Generator().manual_seed(3)
    emb, image_latent = torch.randn(1, 1, 1024, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    extra = {"fps": 7, "motion_bucket_id": 127, "augmentation_level": 0.02}  # fps - 1 = 6 reaches the UNet
    positive = [[emb, {"concat_latent_image": image_latent, **extra}]]
    negative = [[torch.zeros_like(emb), {"concat_latent_image": torch.zeros_like(image_latent), **extra}]]
    latent = torch.zeros(FRAMES, 4, 8, 8)
    out = generate(model, positive, negative, {"samples": latent}, 11, steps, 1.0, cfg)
    ours = model.model.process_latent_in(out["samples"])

    import comfy.sample

    noise = comfy.sample.prepare_noise(latent, 11)
    ids = torch.tensor([[6.0, 127.0, 0.02]])
    theirs = _pipeline_loop(ref, noise, image_latent[0], emb, steps, 1.0, cfg, ids)
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-3)


# -- the loader node ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def svd_file(comfy):
    from tempo_pack.demo import run as demo_run

    demo_run.ensure_demo_models(demo_run.DEMO_MODELS, log=lambda m: None)
    import os
    return os.path.join(demo_run.DEMO_MODELS, "checkpoints", demo_run.checkpoints.SVD_CKPT)


def test_single_file_gives_model_clip_vision_and_vae(svd_file):
    from tempo_pack.nodes.svd import load_svd

    model, clip_vision, vae, info = load_svd(svd_file)
    assert info.startswith("SVD: EDM v-prediction") and "auto: no distillation named" in info
    emb = clip_vision.encode_image(torch.rand(1, 64, 64, 3))
    assert emb.image_embeds.shape == (1, 1024)
    assert vae.encode(torch.rand(1, 64, 64, 3)).shape == (1, 4, 8, 8)


def test_animatelcm_folder_without_image_encoder_is_refused(svd_folder):
    from tempo_pack.nodes.svd import load_svd

    root, _ = svd_folder
    with pytest.raises(ValueError, match="has no image_encoder/ folder.*Add image_encoder/"):
        load_svd(str(root))


def test_wrong_family_in_the_svd_loader(comfy, tmp_path):
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.svd import load_svd

    path = factory.write_unet_file(str(tmp_path / "sd15_unet.safetensors"))
    with pytest.raises(ValueError, match="is not a Stable Video Diffusion UNet.*'Tempo One-Step Image Loader'"):
        load_svd(path)


def test_svd_file_in_the_image_loader_points_to_the_svd_loader(svd_file):
    from tempo_pack.nodes.unet_models import load_image_model

    with pytest.raises(ValueError, match="Stable Video Diffusion model.*'Tempo SVD Loader'"):
        load_image_model(svd_file)


def test_svd_without_a_start_image_is_explained(svd_file):
    from tempo_pack.nodes.onestep import generate
    from tempo_pack.nodes.svd import load_svd

    model = load_svd(svd_file)[0]
    cond = [[torch.zeros(1, 1, 1024), {}]]
    with pytest.raises(ValueError, match="no start image reaches it.*SVD_img2vid_Conditioning"):
        generate(model, cond, None, {"samples": torch.zeros(4, 4, 8, 8)}, 0, 1, 1.0, 1.0)


def test_diffusers_temporal_vae_decodes_as_diffusers(comfy):
    """SVD's VAE in diffusers naming (AutoencoderKLTemporalDecoder, as in diffusers folders) becomes
    ComfyUI's video VAE: same frames as diffusers' decode. ComfyUI alone would drop the temporal layers."""
    diffusers = pytest.importorskip("diffusers", reason="diffusers (dev dependency) is needed for this cross-check")
    import comfy.sd

    from tempo_pack.loaders.svd import svd_vae_diffusers_to_sgm

    torch.manual_seed(0)
    ref = diffusers.AutoencoderKLTemporalDecoder(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                                                 down_block_types=("DownEncoderBlock2D",) * 4, latent_channels=4).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "mix_factor" in name:
                p.fill_(0.3)  # both paths must mix spatial and temporal layers
    vae = comfy.sd.VAE(sd=svd_vae_diffusers_to_sgm(dict(ref.state_dict())))
    assert type(vae.first_stage_model.decoder).__name__ == "VideoDecoder"
    z = torch.randn(3, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = ref.decode(z, num_frames=3).sample
    torch.testing.assert_close(vae.decode(z), (theirs.movedim(1, -1) / 2 + 0.5).clamp(0, 1), rtol=0, atol=1e-4)
