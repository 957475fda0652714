"""The TAEHV tiny decoder (models/taehv.py): decoding block by block equals decoding in one piece, and
equals the reference implementation (madebyollin/taehv's TAEHV.decode_video, when TAEHV_PATH names a
checkout; ComfyUI 0.8's own comfy.taesd.taehv is compared in test_causal_comfy) on random weights."""

import os
import sys

import pytest
import torch

from tempo_pack.models.taehv import TAEHVDecoder

TAEHV_PATH = os.environ.get("TAEHV_PATH", "")


def _model(latent_channels=16, seed=3):
    torch.manual_seed(seed)
    return TAEHVDecoder(latent_channels, 1 if latent_channels == 16 else 2).eval()


@pytest.mark.parametrize("latent_channels,scale", [(16, 8), (48, 16)])
def test_blocks_equal_one_piece_and_give_4t_minus_3_frames(latent_channels, scale):
    model = _model(latent_channels)
    x = torch.randn(1, latent_channels, 7, 4, 6, generator=torch.Generator().manual_seed(1))
    whole = model.decode(x)
    assert whole.shape == (1, 3, 4 * 7 - 3, 4 * scale, 6 * scale)
    stream = model.stream()
    parts = [stream.decode(x[:, :, a:b]) for a, b in ((0, 1), (1, 4), (4, 7))]
    assert [p.shape[2] for p in parts] == [1, 12, 12]  # the first block's 3 leading frames are trimmed
    torch.testing.assert_close(torch.cat(parts, 2), whole, rtol=0, atol=1e-6)
    # without the carried memory the later blocks differ: the check can fail
    fresh = model.stream()
    fresh.decode(x[:, :, :1])
    fresh.memory.clear()
    assert not torch.allclose(fresh.decode(x[:, :, 1:4]), parts[1], atol=1e-4)


def test_a_file_that_is_not_taehv_is_refused():
    with pytest.raises(ValueError, match="not a TAEHV file.*taew2_1.pth"):
        TAEHVDecoder.from_state_dict({"encoder.0.weight": torch.zeros(1)})


@pytest.mark.skipif(not os.path.isfile(os.path.join(TAEHV_PATH, "taehv.py")),
                    reason="TAEHV_PATH does not name a madebyollin/taehv checkout (taehv.py): the cross-check against "
                           "the reference TAEHV is skipped; streaming = one piece is tested above")
@pytest.mark.parametrize("latent_channels", [16, 48])
def test_equals_the_reference_taehv(latent_channels):
    sys.path.insert(0, TAEHV_PATH)
    try:
        import taehv
    finally:
        sys.path.remove(TAEHV_PATH)
    torch.manual_seed(5)
    ref = taehv.TAEHV(checkpoint_path=None, latent_channels=latent_channels,
                      patch_size=1 if latent_channels == 16 else 2).eval()
    ours = TAEHVDecoder.from_state_dict(ref.state_dict())
    x = torch.randn(1, 7, latent_channels, 4, 6, generator=torch.Generator().manual_seed(2))  # NTCHW
    with torch.no_grad():
        expected = ref.decode_video(x, parallel=True, show_progress_bar=False)
    stream = ours.stream()
    got = torch.cat([stream.decode(x[:, a:b].movedim(1, 2)) for a, b in ((0, 1), (1, 4), (4, 7))], 2).movedim(2, 1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
