"""Stable Video Diffusion UNets published in diffusers naming (AnimateLCM-SVD) convert to the
layout ComfyUI runs, and give diffusers' outputs on the same weights (tiny, fp32)."""

import pytest
import torch

pytestmark = pytest.mark.comfy


def test_diffusers_svd_unet_equals_comfyui_video_unet(comfy):
    diffusers = pytest.importorskip("diffusers", reason="diffusers (dev dependency) is needed for this cross-check")
    import comfy.model_detection
    import comfy.supported_models

    from tempo_pack.loaders.classify import image_base
    from tempo_pack.nodes.image_models import _diffusers_to_ldm

    torch.manual_seed(0)
    ref = diffusers.UNetSpatioTemporalConditionModel(
        sample_size=8, in_channels=8, out_channels=4, block_out_channels=(64, 128), layers_per_block=1,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=768, cross_attention_dim=1024, num_attention_heads=(1, 2),
        num_frames=4).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.05)
    sd = {k: v.clone() for k, v in ref.state_dict().items()}
    ldm = _diffusers_to_ldm(sd)
    assert image_base(ldm)[0] == "SVD"
    config = comfy.model_detection.detect_unet_config(ldm, "")
    model_config = comfy.supported_models.SVD_img2vid(config)
    model_config.set_inference_dtype(torch.float32, None)
    unet = model_config.get_model({}).diffusion_model
    missing, unexpected = unet.load_state_dict(ldm, strict=False)
    assert not missing and not unexpected

    frames = 4
    g = torch.Generator().manual_seed(1)
    x, ctx = torch.randn(1, frames, 8, 8, 8, generator=g), torch.randn(1, 1, 1024, generator=g)
    c_noise = torch.tensor([0.25 * torch.log(torch.tensor(10.0))])  # EDM: the UNet sees 0.25 log(sigma)
    ids = torch.tensor([[6.0, 127.0, 0.02]])  # fps - 1, motion bucket, augmentation
    with torch.no_grad():
        theirs = ref(x, c_noise, ctx, ids).sample[0]
        adm = ref.add_time_proj(ids.flatten()).reshape(1, -1)
        ours = unet(x[0], c_noise.repeat(frames), context=ctx.repeat(frames, 1, 1), y=adm.repeat(frames, 1),
                    num_video_frames=frames, image_only_indicator=torch.zeros(1, frames))
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-4)
