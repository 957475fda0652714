"""The demo's decoders, their weights set by hand (no training, deterministic): the Wan 2.1 VAE as
ComfyUI builds it, and a TAEHV decoder in taew2_1's layout, both computing the demo world's codec
(demo/world.py: a latent holds each 8x8 patch's mean colour over the frames its latent frame covers;
decoding fills the patch with it). The demo's causal model is trained in that latent space.
"""

from __future__ import annotations

import torch


def _clamp(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x / 3) * 3


def codec_taehv_state_dict(latents_mean, latents_std, scale_factor: float, knots: int = 85,
                           offset: float = 2 ** -4) -> dict:
    """A taew2_1-layout TAEHV decoder (``decoder.*``, float32) that decodes the codec's latents as the
    pack feeds a "taew2_1" file: in the diffusion model's space, ``process_in(latent) = (latent - mean)
    * scale_factor / std`` per channel (ComfyUI's Wan 2.1 latent format: pass its values), then TAEHV's
    own input Clamp, y = 3 tanh(x / 3).

    Layer by layer (decoder.<i>; "copy": a centre tap / 1x1 identity on the 3 colour channels, every other
    weight 0):

    * decoder.1 + ReLU: per colour c, ``knots - 1`` hinge channels relu(y_c - t_j) whose knots t_j are the
      Clamp outputs of colours -1..1; one linear layer over them is then a piecewise-linear fit of
      Clamp^-1, process_in^-1 and (colour + 1) / 2 at once (about 1e-6 off in float32).
    * decoder.3 (a MemBlock): its first two convs copy the hinges (the previous frame's half weighs 0),
      its last one forms the fit on channels 0..2 and cancels the identity skip on the hinge channels.
    * the other MemBlocks: all zero, so relu(0 + x) = x: no frame sees another, and decoding block by
      block equals decoding the whole clip.
    * Upsample (nearest) + decoder.8 / 14 / 20: copies (each latent pixel fills its 8x8 patch); the TGrow
      layers copy a frame into each of their stride outputs (latent frame k -> frames 4k..4k+3, of which
      TAEHV's own trim of 3 leaves 1 for the first latent frame, as the Wan VAE gives).
    * decoder.22: copy, minus the small ``offset`` that kept the ReLUs clear of rounding below 0.
    """
    from ..models.taehv import MemBlock, TAEHVDecoder, TGrow

    mean = torch.as_tensor(latents_mean, dtype=torch.float64).flatten()
    std = torch.as_tensor(latents_std, dtype=torch.float64).flatten()
    sf = float(scale_factor)
    model = TAEHVDecoder(16, 1)
    sd = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in model.state_dict().items()}
    layers = model.decoder
    n_hinge = knots - 1
    if 3 * n_hinge > layers[1].out_channels:
        raise ValueError(f"{knots} knots need {3 * n_hinge} channels; decoder.1 has {layers[1].out_channels}")

    def copy3(key):
        w = sd[key]
        for c in range(3):
            w[c, c, w.shape[2] // 2, w.shape[3] // 2] = 1.0

    w1, b1 = sd["decoder.1.weight"], sd["decoder.1.bias"]
    w3, b3 = sd["decoder.3.conv.4.weight"], sd["decoder.3.conv.4.bias"]
    for c in range(3):
        colours = torch.linspace(-1.0, 1.0, knots, dtype=torch.float64)
        t = _clamp((colours - mean[c]) * sf / std[c])   # the knots, as the Clamp outputs them
        g = (colours + 1) / 2                             # the pixel at each knot
        slope = (g[1:] - g[:-1]) / (t[1:] - t[:-1])
        a = torch.cat([slope[:1], slope[1:] - slope[:-1]])  # each hinge's weight
        for j in range(n_hinge):
            ch = c * n_hinge + j
            w1[ch, c, 1, 1] = 1.0
            b1[ch] = -t[j]
            w3[c, ch, 1, 1] += a[j]
        b3[c] = g[0] + offset
    for ch in range(3 * n_hinge):
        sd["decoder.3.conv.0.weight"][ch, ch, 1, 1] = 1.0
        sd["decoder.3.conv.2.weight"][ch, ch, 1, 1] = 1.0
        w3[ch, ch, 1, 1] -= 1.0
    for i, layer in enumerate(layers):
        if isinstance(layer, TGrow):
            w = sd[f"decoder.{i}.conv.weight"]
            n = layer.conv.in_channels
            for s in range(layer.stride):
                for c in range(3):
                    w[s * n + c, c, 0, 0] = 1.0
        elif isinstance(layer, torch.nn.Conv2d) and i in (8, 14, 20):
            copy3(f"decoder.{i}.weight")
        elif isinstance(layer, MemBlock):
            pass  # all zero
    copy3("decoder.22.weight")
    sd["decoder.22.bias"][:] = -offset
    return {k: v.float().contiguous() for k, v in sd.items()}
