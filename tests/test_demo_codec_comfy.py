"""The demo's decoders, set by hand (factory/demo_codec.py), compute the demo world's codec (demo/world.py) in
ComfyUI's own Wan 2.1 VAE and in the pack's TAEHV, from the files the demo writes (float16 / float32 on
disk, as released), so what the demo model makes is shown as it was trained."""

import pytest
import torch

pytestmark = pytest.mark.comfy

PROMPT = "red square moving right"


@pytest.fixture(scope="module")
def clip():
    from tempo_pack.demo import world

    # 9 frames (3 latent frames), the shape off the 8x8 grid so patches hold fractional means
    return world.render([(0, PROMPT)], 9, start=(37.0, 45.0))


def test_the_demo_wan_vae_encodes_and_decodes_as_the_codec(comfy, tmp_path, clip):
    import comfy.sd
    import comfy.utils

    from tempo_pack.demo import world
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.wan_models import StreamingWanDecoder

    path = factory.write_demo_wan_vae(str(tmp_path / "wan_2.1_vae.safetensors"))
    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(path))
    latent = vae.encode(clip)
    want = world.codec_latents(clip)
    assert latent.shape == want.shape
    assert torch.allclose(latent.float(), want, atol=2e-3), float((latent - want).abs().max())
    frames = vae.decode(want).reshape(-1, world.HEIGHT, world.WIDTH, 3)
    assert torch.allclose(frames.float(), world.codec_frames(want), atol=2e-3)
    # block by block (the sampler's streaming decode) equals the whole
    dec = StreamingWanDecoder(vae)
    streamed = torch.cat([dec.decode(want[:, :, :1]), dec.decode(want[:, :, 1:])])
    assert torch.allclose(streamed.float(), frames.float(), atol=1e-3)


def test_the_demo_taehv_decodes_as_the_codec(comfy, tmp_path, clip):
    from tempo_pack.demo import world
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.wan_models import StreamingTAEHVDecoder

    want = world.codec_latents(clip)
    dec = StreamingTAEHVDecoder(factory.write_demo_taehv(str(tmp_path / "taew2_1.pth")))
    frames = torch.cat([dec.decode(want[:, :, :1]), dec.decode(want[:, :, 1:])])
    assert frames.shape == (9, world.HEIGHT, world.WIDTH, 3)
    assert torch.allclose(frames, world.codec_frames(want), atol=2e-3), float((frames - world.codec_frames(want)).abs().max())
