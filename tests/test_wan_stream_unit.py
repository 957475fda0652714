"""Streaming decode stays exact under the spring-2026 Wan VAE cache convention (chunk lists,
caches of the current call only), which neither ComfyUI test snapshot has; the 0.3.64 / 0.8
decoders are checked against their own whole-clip decode in test_causal_comfy.py."""

import torch
import wan_vae_2026 as vae2026

from tempo_pack.video.wan_stream import StreamingDecoder


def _decoder():
    torch.manual_seed(0)
    return vae2026.Decoder2026().eval()


def test_stand_in_has_the_2026_shape():
    dec = _decoder()
    out = dec(torch.randn(1, 4, 1, 2, 3), feat_cache=[None] * vae2026.count_cache_layers(dec), feat_idx=[0])
    assert isinstance(out, list)
    assert vae2026.count_cache_layers(dec) == 5


def test_one_frame_calls_without_the_cache_rule_drift():
    """Why the stream completes one-frame cache entries: without it, the 2026 convention loses context."""
    dec = _decoder()
    z = torch.randn(1, 4, 7, 2, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = vae2026.decode_whole(dec, z)
        cache = [None] * vae2026.count_cache_layers(dec)
        naive = torch.cat([torch.cat(dec(z[:, :, i:i + 1], feat_cache=cache, feat_idx=[0]), 2) for i in range(7)], 2)
    assert naive.shape == whole.shape == (1, 3, 25, 2, 3)
    assert (naive - whole).abs().max() > 1e-2


def test_streamed_blocks_equal_the_whole_clip_decode():
    dec = _decoder()
    z = torch.randn(1, 4, 7, 2, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = vae2026.decode_whole(dec, z)
        for blocks in ([1, 3, 3], [3, 3, 1], [1] * 7):
            stream = StreamingDecoder(dec, vae2026.count_cache_layers(dec))
            parts, at = [], 0
            for n in blocks:
                parts.append(stream.decode(z[:, :, at:at + n]))
                at += n
            stream.close()
            assert parts[0].shape[2] == 1 + 4 * (blocks[0] - 1)
            torch.testing.assert_close(torch.cat(parts, 2), whole, rtol=0, atol=1e-6)


def test_mp4_has_its_index_first_so_a_browser_streams_it(tmp_path):
    from checks import mp4_boxes, read_mp4_info

    from tempo_pack.video.mp4 import Mp4Writer

    path = str(tmp_path / "clip.mp4")
    with Mp4Writer(path, 32, 16, 16.0) as w:
        w.write(torch.rand(9, 16, 32, 3))
    boxes = mp4_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat"), boxes  # faststart
    assert read_mp4_info(path)["frames"] == 9
