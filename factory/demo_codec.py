"""The demo's decoders, their weights set by hand (no training, deterministic): the Wan 2.1 VAE as
ComfyUI builds it, and a TAEHV decoder in taew2_1's layout, both computing the demo world's codec
(demo/world.py: a latent holds each 8x8 patch's mean colour over the frames its latent frame covers;
decoding fills the patch with it). The demo's causal model is trained in that latent space.
"""

from __future__ import annotations

import math

import torch

from ..demo.world import GAIN


def codec_taehv_state_dict(latents_mean, latents_std, scale_factor: float, knots: int = 85,
                           offset: float = 2 ** -4, gain: float = GAIN) -> dict:
    """A taew2_1-layout TAEHV decoder (``decoder.*``, float32) that decodes the codec's latents as the
    pack feeds a "taew2_1" file: in the diffusion model's space, ``process_in(latent) = (latent - mean)
    * scale_factor / std`` per channel (ComfyUI's Wan 2.1 latent format: pass its values), then TAEHV's
    own input Clamp, y = 3 tanh(x / 3).

    Layer by layer (decoder.<i>; "copy": a centre tap / 1x1 identity on the 3 colour channels, every other
    weight 0):

    * decoder.1 + ReLU: per colour c, ``knots - 1`` hinge channels relu(y_c - t_j) whose knots t_j are the
      Clamp outputs of the latents of colours -1..1 (``gain`` times them); one linear layer over them is then a piecewise-linear fit of
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
    from ..models.taehv import Clamp, TAEHVDecoder, TGrow

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
        t = Clamp()((gain * colours - mean[c]) * sf / std[c])  # the knots, as TAEHV's Clamp outputs them
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
    copy3("decoder.22.weight")
    sd["decoder.22.bias"][:] = -offset
    return {k: v.float().contiguous() for k, v in sd.items()}


# ---------------------------------------------------------------------------------------------
# A hand-set Wan 2.1 VAE that works as a plain, near-exact video codec (no training).
#
# ``codec_wan_vae_state_dict()`` returns a state dict with the exact keys and shapes of the Wan 2.1
# VAE that ComfyUI builds (``comfy.sd.VAE(sd=...)`` sees ``decoder.middle.0.residual.0.gamma`` and no
# ``decoder.upsamples.0.upsamples.0.residual.2.weight`` -> ``comfy.ldm.wan.vae.WanVAE`` with dim 96,
# z_dim 16, dim_mult [1, 2, 4, 4], 2 res blocks, temporal downsampling [False, True, True]).
#
# What it does (v = the VAE's internal pixel value, 2 * rgb - 1, in -1..1):
#
# * encode: latent channels 0, 1, 2 = GAIN x mean R, G, B (in v units) over each 8x8 pixel patch and over
#   the frames a latent frame stands for (latent frame 0 = frame 0 alone, latent frame k >= 1 = the
#   plain mean of frames 4k-3 .. 4k; an exact average, not an approximation); channels 3..15 = 0.
# * decode: each latent frame's colour fills its 8x8 patch (nearest; ``smooth=True``: a bilinear-like
#   x2 interpolation at each of the three upsampling stages) in each of the frames it stands for.
#
# Carried representation. Every layer on the main path carries only 12 channels (all others 0):
# ``[v_R, v_G, v_B, -v_R, -v_G, -v_B, a, a, a, a, a, a]``, six constant channels of value a (default
# 1024) set by a conv bias. Why: the only non-linear layers left on the main path are the two heads,
# ``RMS_norm -> SiLU -> CausalConv3d``.
#
# * RMS_norm (F.normalize over channels * sqrt(C) * gamma) divides by the channel norm
#   N = sqrt(6 a^2 + 2 |v|^2); with a >> |v| <= sqrt(3), N = a sqrt(6) (1 + O(|v|^2 / 6a^2)), so
#   gamma = a sqrt(6) / sqrt(C) gives back v * a sqrt(6) / N = v (1 - |v|^2 / (6 a^2) + ...):
#   relative error <= 1 / (2 a^2), 4.8e-7 at a = 1024 (the only approximation in the whole codec).
#   Six constant channels rather than one because C = 384 = 6 * 64 and 96 = 6 * 16, so gamma =
#   a / 8 (encoder) and a / 4 (decoder): with a a power of 2 every weight is exact in fp16/bf16 too.
#   gamma of the constant channels is 0 (they are not needed after the head).
# * SiLU is exact on the pair: silu(y) - silu(-y) = y (sigmoid(y) + sigmoid(-y) = 1), so the head
#   conv reads out +1 * silu(v) - 1 * silu(-v) = v with no offset and no approximation.
#
# Layer groups (every CausalConv3d with a time kernel of 3 uses only its last time tap, the current
# frame, so nothing depends on the causal feature cache except the two temporal downsamplers):
#
# * ``encoder.conv1`` (3 -> 96): centre tap; out 0..2 = v, 3..5 = -v, bias[6:12] = a.
# * every ResidualBlock (encoder, decoder, middle): both branch convs (``residual.2``, ``residual.6``)
#   have zero weights, ``residual.6`` a zero bias, so the block is ``x + shortcut(x)`` with the branch
#   exactly 0 (``residual.2``'s bias is 1 so the branch's second RMS_norm never normalises an all-zero
#   vector: 0/0 = NaN in fp16, where F.normalize's eps underflows); a ``shortcut`` 1x1x1 conv that
#   changes the channel count copies channel i to channel i.
# * AttentionBlocks (the two middles): ``to_qkv`` and ``proj`` zero -> exactly identity.
# * encoder ``downsample2d`` / ``downsample3d`` spatial part (ZeroPad right/bottom, 3x3 stride 2):
#   taps [0:2, 0:2] = 1/4 per channel -> exact 2x2 mean (the pad is never read). Three of them = 8x8.
# * encoder ``time_conv`` (causal, kernel 3, stride 2, no padding) of both ``downsample3d``: taps
#   (0, 1/2, 1/2). ComfyUI feeds the first frame alone (the layer passes it through untouched and
#   caches it) and then 4 frames (0.3.64 / 0.8.0) or 2 frames (0.18+; a lone output is held back)
#   per call, with the cached last frame before them: windows (f[4k-4], f[4k-3], f[4k-2]) and
#   (f[4k-2], f[4k-1], f[4k]) -> (f[4k-3] + f[4k-2]) / 2 and (f[4k-1] + f[4k]) / 2; the second layer
#   averages those two the same way -> the plain 4-frame mean. The taps sum to 1, so a stays a.
# * ``encoder.head``: gamma = a sqrt(6/384) = a/8 on channels 0..5, 0 on the rest; conv centre tap
#   out c = silu(ch c) - silu(ch c+3) for c = 0..2 -> 32 channels [mean v, 0 ...].
# * ``conv1`` (32 -> 32, 1x1x1) identity -> mu = channels 0..15 (ComfyUI's Wan encode returns mu).
# * ``conv2`` (16 -> 16) identity; ``decoder.conv1`` (16 -> 384): centre tap, out 0..2 = z 0..2,
#   3..5 = -z 0..2, bias[6:12] = a (latent channels 3..15 are ignored).
# * decoder ``upsample3d`` ``time_conv`` (384 -> 768, kernel 3): last tap = identity into both
#   halves, so each frame is repeated (2 frames per input frame, or 1 for the first latent frame,
#   which ComfyUI passes through untouched); two of them -> 1 + 4 (k >= 1) frames per latent frame.
# * decoder ``upsample2d``/``upsample3d`` spatial part (nearest-exact x2, 3x3 conv dim -> dim/2):
#   centre tap copies channel i -> nearest. ``smooth=True``: the separable kernel
#   [1/4, 1/2, 1/4] after the nearest x2 is exactly bilinear x2 (align_corners=False) inside the
#   image; at the border the zero padding dims v and a alike, and the head's RMS_norm divides by
#   a's local value, so the ratio (the colour) is kept: a normalised convolution.
# * ``decoder.head`` (96 -> 3): as the encoder head, gamma = a sqrt(6/96) = a/4.




DIM = 96
Z_DIM = 16
DIM_MULT = (1, 2, 4, 4)
NUM_RES_BLOCKS = 2
TEMPORAL_DOWN = (False, True, True)
K_CHANNELS = slice(6, 12)  # six channels of the constant a: channels 0..11 carry
# [v_R, v_G, v_B, -v_R, -v_G, -v_B, a, a, a, a, a, a]


# ---------------------------------------------------------------------------------------------
# the architecture's layer list (comfy/ldm/wan/vae.py Encoder3d / Decoder3d / WanVAE), as specs
# ---------------------------------------------------------------------------------------------

def _encoder_layers():
    dims = [DIM * u for u in (1,) + DIM_MULT]
    layers = []
    for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
        for _ in range(NUM_RES_BLOCKS):
            layers.append(("res", in_dim, out_dim))
            in_dim = out_dim
        if i != len(DIM_MULT) - 1:
            layers.append(("downsample3d" if TEMPORAL_DOWN[i] else "downsample2d", out_dim))
    return layers, dims[-1]


def _decoder_layers():
    dims = [DIM * u for u in (DIM_MULT[-1],) + DIM_MULT[::-1]]
    temporal_up = TEMPORAL_DOWN[::-1]
    layers = []
    for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
        if i in (1, 2, 3):
            in_dim = in_dim // 2
        for _ in range(NUM_RES_BLOCKS + 1):
            layers.append(("res", in_dim, out_dim))
            in_dim = out_dim
        if i != len(DIM_MULT) - 1:
            layers.append(("upsample3d" if temporal_up[i] else "upsample2d", out_dim))
    return layers, dims[0], dims[-1]


# ---------------------------------------------------------------------------------------------
# weight helpers
# ---------------------------------------------------------------------------------------------

def _copy(out_ch: int, in_ch: int, kernel: tuple, tap: tuple, scale: float = 1.0) -> torch.Tensor:
    """A conv weight that copies channel i to channel i (i < min(out, in)) through one tap."""
    w = torch.zeros((out_ch, in_ch) + kernel)
    n = min(out_ch, in_ch)
    idx = torch.arange(n)
    w[(idx, idx) + tap] = scale
    return w


def _res_block(sd: dict, prefix: str, in_dim: int, out_dim: int):
    sd[f"{prefix}.residual.0.gamma"] = torch.ones(in_dim, 1, 1, 1)
    sd[f"{prefix}.residual.2.weight"] = torch.zeros(out_dim, in_dim, 3, 3, 3)
    # bias 1, not 0: the branch's second RMS_norm must not see an all-zero vector (F.normalize's
    # eps 1e-12 is 0 in fp16, and 0/0 there would be NaN, which the zero conv after it keeps)
    sd[f"{prefix}.residual.2.bias"] = torch.ones(out_dim)
    sd[f"{prefix}.residual.3.gamma"] = torch.ones(out_dim, 1, 1, 1)
    sd[f"{prefix}.residual.6.weight"] = torch.zeros(out_dim, out_dim, 3, 3, 3)  # branch == 0
    sd[f"{prefix}.residual.6.bias"] = torch.zeros(out_dim)
    if in_dim != out_dim:
        sd[f"{prefix}.shortcut.weight"] = _copy(out_dim, in_dim, (1, 1, 1), (0, 0, 0))
        sd[f"{prefix}.shortcut.bias"] = torch.zeros(out_dim)


def _attention(sd: dict, prefix: str, dim: int):
    sd[f"{prefix}.norm.gamma"] = torch.ones(dim, 1, 1)
    sd[f"{prefix}.to_qkv.weight"] = torch.zeros(dim * 3, dim, 1, 1)
    sd[f"{prefix}.to_qkv.bias"] = torch.zeros(dim * 3)
    sd[f"{prefix}.proj.weight"] = torch.zeros(dim, dim, 1, 1)  # output == 0 -> identity block
    sd[f"{prefix}.proj.bias"] = torch.zeros(dim)


def _middle(sd: dict, prefix: str, dim: int):
    _res_block(sd, f"{prefix}.0", dim, dim)
    _attention(sd, f"{prefix}.1", dim)
    _res_block(sd, f"{prefix}.2", dim, dim)


def _head(sd: dict, prefix: str, dim: int, out_ch: int, a: float, gain: float = 1.0):
    """RMS_norm -> SiLU -> conv reading out v = silu(v) - silu(-v) for channels 0..2."""
    gamma = torch.zeros(dim, 1, 1, 1)
    # RMS_norm gives v * sqrt(dim) * gamma / N with N ~ a * sqrt(6); dim = 6 * 4^n, so
    # gamma = a * sqrt(6) / sqrt(dim) = a / 2^n is exact in any float format when a is a power of 2
    gamma[:6] = a * math.sqrt(6.0 / dim)
    sd[f"{prefix}.0.gamma"] = gamma
    w = torch.zeros(out_ch, dim, 3, 3, 3)
    for c in range(3):
        w[c, c, 2, 1, 1] = gain
        w[c, c + 3, 2, 1, 1] = -gain
    sd[f"{prefix}.2.weight"] = w
    sd[f"{prefix}.2.bias"] = torch.zeros(out_ch)


def _carry_in(out_ch: int, in_ch: int, a: float, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A causal 3x3x3 conv (weight, bias) into the carried representation: the current frame's centre tap
    gives channels 0..2 = scale x in 0..2 and 3..5 = their negatives; the bias sets the constant channels to a."""
    w = torch.zeros(out_ch, in_ch, 3, 3, 3)
    for c in range(3):
        w[c, c, 2, 1, 1] = scale
        w[c + 3, c, 2, 1, 1] = -scale
    b = torch.zeros(out_ch)
    b[K_CHANNELS] = a
    return w, b


def _downsample(sd: dict, p: str, kind: str, dim: int):
    """Spatial 2x2 mean (3x3 stride 2 after a right/bottom zero pad that is never read); ``downsample3d``
    also halves time (taps 0, 1/2, 1/2)."""
    w = torch.zeros(dim, dim, 3, 3)
    idx = torch.arange(dim)
    for dy in (0, 1):
        for dx in (0, 1):
            w[idx, idx, dy, dx] = 0.25
    sd[f"{p}.resample.1.weight"], sd[f"{p}.resample.1.bias"] = w, torch.zeros(dim)
    if kind == "downsample3d":
        tw = torch.zeros(dim, dim, 3, 1, 1)
        tw[idx, idx, 1, 0, 0] = 0.5
        tw[idx, idx, 2, 0, 0] = 0.5
        sd[f"{p}.time_conv.weight"], sd[f"{p}.time_conv.bias"] = tw, torch.zeros(dim)


def _upsample(sd: dict, p: str, kind: str, dim: int, smooth: bool):
    """Spatial x2 (nearest, then a centre-tap copy or the smooth kernel); ``upsample3d`` also repeats each
    frame into both of its time_conv outputs."""
    sd[f"{p}.resample.1.weight"] = (_smooth_up_kernel(dim // 2, dim) if smooth
                                   else _copy(dim // 2, dim, (3, 3), (1, 1)))
    sd[f"{p}.resample.1.bias"] = torch.zeros(dim // 2)
    if kind == "upsample3d":
        tw = torch.zeros(dim * 2, dim, 3, 1, 1)
        idx = torch.arange(dim)
        tw[idx, idx, 2, 0, 0] = 1.0        # first output frame = current frame
        tw[idx + dim, idx, 2, 0, 0] = 1.0  # second output frame = current frame
        sd[f"{p}.time_conv.weight"], sd[f"{p}.time_conv.bias"] = tw, torch.zeros(dim * 2)


def _stages(sd: dict, prefix: str, layers: list, resample):
    """The residual blocks and resamplers of an encoder or decoder, in the architecture's order."""
    for i, layer in enumerate(layers):
        if layer[0] == "res":
            _res_block(sd, f"{prefix}.{i}", layer[1], layer[2])
        else:
            resample(sd, f"{prefix}.{i}", layer[0], layer[1])


def _smooth_up_kernel(out_ch: int, in_ch: int) -> torch.Tensor:
    k1 = torch.tensor([0.25, 0.5, 0.25])
    k2 = torch.outer(k1, k1)
    w = torch.zeros(out_ch, in_ch, 3, 3)
    for i in range(min(out_ch, in_ch)):
        w[i, i] = k2
    return w


# ---------------------------------------------------------------------------------------------
# the state dict
# ---------------------------------------------------------------------------------------------

def codec_wan_vae_state_dict(a: float = 1024.0, smooth: bool = False, gain: float = GAIN) -> dict[str, torch.Tensor]:
    """The Wan 2.1 VAE (ComfyUI's layout, float32) set by hand as a video codec; see the module
    docstring. ``a``: the value of the six constant carried channels (a power of 2 keeps every
    weight exact in fp16/bf16; larger = closer to exact: relative error <= |v|^2 / (6 a^2) = 4.8e-7
    at 1024; keep it <= 4096 so fp16 activations stay in range). ``smooth``: bilinear-like
    spatial upsampling in the decoder instead of nearest. ``gain``: the latent holds the colour times
    this (demo/world.py GAIN; a power of 2 keeps the weights exact)."""
    sd: dict[str, torch.Tensor] = {}

    # ---- encoder
    sd["encoder.conv1.weight"], sd["encoder.conv1.bias"] = _carry_in(DIM, 3, a)
    enc_layers, enc_out = _encoder_layers()
    _stages(sd, "encoder.downsamples", enc_layers, _downsample)
    _middle(sd, "encoder.middle", enc_out)
    _head(sd, "encoder.head", enc_out, Z_DIM * 2, a, gain)

    # ---- between: mu = first 16 of conv1's output; conv2 before the decoder
    sd["conv1.weight"] = _copy(Z_DIM * 2, Z_DIM * 2, (1, 1, 1), (0, 0, 0))
    sd["conv1.bias"] = torch.zeros(Z_DIM * 2)
    sd["conv2.weight"] = _copy(Z_DIM, Z_DIM, (1, 1, 1), (0, 0, 0))
    sd["conv2.bias"] = torch.zeros(Z_DIM)

    # ---- decoder
    dec_layers, dec_in, dec_out = _decoder_layers()
    sd["decoder.conv1.weight"], sd["decoder.conv1.bias"] = _carry_in(dec_in, Z_DIM, a, 1.0 / gain)
    _middle(sd, "decoder.middle", dec_in)
    _stages(sd, "decoder.upsamples", dec_layers,
            lambda sd, p, kind, dim: _upsample(sd, p, kind, dim, smooth))
    _head(sd, "decoder.head", dec_out, 3, a)
    return sd
