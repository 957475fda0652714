"""The causal KV-cache rollout equals masked full-sequence attention (plain torch, fp32)."""

import pytest
import torch

from tempo_pack.models.causal_wan import CausalWanModel, apply_rope, config_from_state_dict, rope_freqs
from tempo_pack.models.kv_cache import RollingKVCache
from causal_reference import RecomputeModel, rolling_attended
from tempo_pack.samplers import causal

TINY = dict(dim=64, ffn_dim=96, num_heads=2, num_layers=2, in_dim=4, out_dim=4, text_dim=32, freq_dim=32)
LATENT = (1, 4, 1, 4, 6)  # one frame: 4 channels, 4x6 latent -> 2x3 = 6 tokens


def tiny_model(seed=0, **over):
    torch.manual_seed(seed)
    m = CausalWanModel(**{**TINY, **over}).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.normal_(0, 0.2 if p.ndim > 1 else 0.05)
    return m


def _ctx(model):
    context = torch.randn(1, 7, TINY["text_dim"], generator=torch.Generator().manual_seed(9))
    ctx, img_len = model.embed_context(context)
    return model.cross_kv(ctx, img_len)


def _cache(model, sink, window):
    return RollingKVCache(model.causal.num_layers, 1, model.causal.num_heads, model.causal.head_dim, 6, sink, window)


def _run(model, fpb, blocks, sink=0, window=64, start=0, reference=False):
    """Blocks from the cached rollout, or from the reference (masked full sequence, no cache)
    through the same loop; and the cache (its frames after the run)."""
    sigmas = causal.schedule_sigmas(*causal.CAUSAL_SCHEDULES["Self Forcing"])
    shape = (1, 4, fpb, 4, 6)
    settings = causal.RolloutSettings(fpb, tuple(sigmas), 5, blocks, start)
    with torch.no_grad():
        ctx_kv = _ctx(model)
        cache = _cache(model, sink, window)
        net = model.causal
        if reference:
            net, cache = RecomputeModel(model.causal, fpb, 6, start, rolling_attended(sink, window)), None
        return [b.latent for b in causal.rollout(net, shape, ctx_kv, cache, settings)], cache


@pytest.mark.parametrize("fpb", [1, 3])
def test_cached_rollout_equals_block_causal_full_sequence(fpb):
    model = tiny_model()
    cached, _ = _run(model, fpb, 4)
    ref, _ = _run(model, fpb, 4, reference=True)
    for a, b in zip(cached, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fpb,sink,window", [(1, 1, 2), (3, 3, 3), (3, 1, 4)])
def test_rolling_cache_equals_sink_plus_window_mask(fpb, sink, window):
    model = tiny_model(1)
    cached, cache = _run(model, fpb, 5, sink, window)
    assert len(cache.frames) == sink + window  # the cache filled up, and held no more
    ref, _ = _run(model, fpb, 5, sink, window, reference=True)
    for a, b in zip(cached, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_rolling_cache_memory_is_the_same_for_2x_and_4x_length():
    model = tiny_model(2)
    sizes = []
    for blocks in (4, 8, 16):
        _, cache = _run(model, 1, blocks, sink=1, window=3)
        sizes.append((cache.nbytes, len(cache.frames)))
    assert sizes[0] == sizes[1] == sizes[2] == (sizes[0][0], 4)


def test_full_cache_grows_only_up_to_its_capacity():
    model = tiny_model(2)
    _, cache = _run(model, 1, 3, sink=0, window=64)
    assert cache.frames == [0, 1, 2]


def test_positions_past_the_1024_frame_table_are_exact():
    """Keys carry absolute RoPE; attention depends only on offsets, so a video that runs past
    latent frame 1024 behaves as one that starts at 0 (angles are computed, not looked up)."""
    model = tiny_model(3)
    near_zero, _ = _run(model, 1, 3, sink=0, window=2)
    far, _ = _run(model, 1, 3, sink=0, window=2, start=5000)
    for a, b in zip(near_zero, far):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_same_seed_same_video_and_blocks_do_not_depend_on_length():
    model = tiny_model(4)
    a, _ = _run(model, 3, 2)
    b, _ = _run(model, 3, 4)
    for x, y in zip(a, b[:2]):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_schedules():
    sigmas = causal.schedule_sigmas(*causal.CAUSAL_SCHEDULES["Self Forcing"])
    assert sigmas == pytest.approx([1.0, 0.9375, 0.8333333, 0.625], abs=1e-6)
    with pytest.raises(ValueError, match="high to low"):
        causal.schedule_sigmas([250, 500], 5.0)
    with pytest.raises(ValueError, match="outside"):
        causal.schedule_sigmas([1200], 5.0)
    assert causal.parse_timesteps("1000, 757 522") == [1000, 757, 522]
    # CausVid's config does not warp its list (warp_denoising_step: false): sigma = t / 1000
    assert causal.schedule_sigmas(*causal.CAUSAL_SCHEDULES["CausVid"]) == pytest.approx([1.0, 0.757, 0.522])


def test_config_from_shapes():
    sd = tiny_model(dim=128, num_heads=1).state_dict()
    cfg = config_from_state_dict(sd)
    assert cfg["dim"] == 128 and cfg["num_heads"] == 1 and cfg["num_layers"] == 2 and cfg["in_dim"] == 4
    assert cfg["model_type"] == "t2v" and cfg["ffn_dim"] == 96 and cfg["text_dim"] == 32


def _wan_rope_reference(x, start, f, h, w, theta=10000.0):
    """Wan 2.1's RoPE as the authors write it (wan/modules/model.py: rope_params + rope_apply):
    per-axis complex frequency tables, split [c - 2(c//3), c//3, c//3] over (frame, row, col)
    with c = head_dim / 2, multiplied into the query/key as complex pairs."""
    d = x.shape[-1]
    c = d // 2

    def rope_params(n, dim):
        freqs = torch.outer(torch.arange(n, dtype=torch.float64),
                            1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
        return torch.polar(torch.ones_like(freqs), freqs)

    tables = [rope_params(start + f, d - 4 * (d // 6)), rope_params(h, 2 * (d // 6)), rope_params(w, 2 * (d // 6))]
    assert [t.shape[1] for t in tables] == [c - 2 * (c // 3), c // 3, c // 3]
    grid = torch.cat([tables[0][start:start + f].view(f, 1, 1, -1).expand(f, h, w, -1),
                      tables[1][:h].view(1, h, 1, -1).expand(f, h, w, -1),
                      tables[2][:w].view(1, 1, w, -1).expand(f, h, w, -1)], dim=-1).reshape(f * h * w, 1, c)
    xc = torch.view_as_complex(x.double().reshape(*x.shape[:-1], c, 2))
    return torch.view_as_real(xc * grid).flatten(-2).float()


@pytest.mark.parametrize("start", [0, 7, 1500])
def test_rope_equals_the_authors_complex_tables(start):
    """Our float64 angles at absolute frame positions equal Wan's own complex-table RoPE (including
    past the 1024-frame table the authors precompute)."""
    f, h, w, heads, d = 2, 3, 4, 2, 24
    x = torch.randn(1, f * h * w, heads, d, generator=torch.Generator().manual_seed(start))
    freqs = rope_freqs(torch.arange(start, start + f), h, w, d, "cpu")
    torch.testing.assert_close(apply_rope(x, freqs), _wan_rope_reference(x, start, f, h, w), rtol=1e-5, atol=1e-5)


# -- the published checkpoints' settings in the authors' terms ----------------------------------

def test_presets_are_the_configs():
    """Warped as the authors' pipelines warp them (SF pipeline/causal_inference.py:29-31)."""
    sf = causal.CAUSAL_PRESETS["Self Forcing"]
    assert causal.schedule_sigmas(sf.timesteps, sf.shift) == pytest.approx([1.0, 0.9375, 0.83333, 0.625], abs=1e-5)
    assert (sf.frames_per_block, sf.local_attn_size, sf.context_noise) == (3, 21, 0.0)
    cv = causal.CAUSAL_PRESETS["CausVid"]
    assert causal.schedule_sigmas(cv.timesteps, cv.shift) == pytest.approx([1.0, 0.757, 0.522])
    pp2 = causal.CAUSAL_PRESETS["Causal Forcing++ 2-step"]
    assert causal.schedule_sigmas(pp2.timesteps, pp2.shift) == pytest.approx([1.0, 0.83333], abs=1e-5)
    assert causal.schedule_sigmas(pp2.first_timesteps, pp2.shift) == pytest.approx([1.0, 0.9375, 0.83333, 0.625],
                                                                                   abs=1e-5)
    assert pp2.frames_per_block == causal.CAUSAL_PRESETS["Causal Forcing frame-wise"].frames_per_block == 1
    ll = causal.CAUSAL_PRESETS["LongLive"]
    assert (ll.local_attn_size, ll.sink_size) == (12, 3)
    assert causal.window_in_cache_terms(ll.local_attn_size, ll.sink_size, ll.frames_per_block) == 6
    for p in causal.CAUSAL_PRESETS.values():
        assert p.source, f"{p.name} says where its numbers come from"


@pytest.mark.parametrize("local,sink,fpb", [(21, 3, 3), (12, 3, 3), (21, 0, 3), (21, 3, 1), (8, 1, 1), (10, 2, 3)])
def test_local_attn_size_counts_the_block_and_the_sink_as_self_forcing_does(local, sink, fpb):
    """Each block attends to exactly the frames Self Forcing's cache index rules give it."""
    from causal_reference import self_forcing_attended

    blocks = 3 * local // fpb + 2
    theirs = self_forcing_attended(local, sink, fpb, blocks)
    window = causal.window_in_cache_terms(local, sink, fpb)
    ours = [sorted(set(rolling_attended(sink, window)(b * fpb)) | set(range(b * fpb, (b + 1) * fpb)))
            for b in range(blocks)]
    assert ours == theirs
    assert max(len(a) for a in ours) == local


@pytest.mark.parametrize("fpb,local,sink", [(3, 21, 3), (1, 12, 3)])
def test_cache_of_local_attn_size_equals_the_mask_of_the_authors_window(fpb, local, sink):
    model = tiny_model()
    window = causal.window_in_cache_terms(local, sink, fpb)
    blocks = (local + 6) // fpb
    cached, _ = _run(model, fpb, blocks, sink, window)
    ref, _ = _run(model, fpb, blocks, sink, window, reference=True)
    for a, b in zip(cached, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_window_without_earlier_frames_is_refused():
    with pytest.raises(ValueError, match="local_attn_size 6 leaves no earlier frame.*at least 7"):
        causal.window_in_cache_terms(6, 3, 3)


class _Recorder:
    """Stands for the model in ``rollout`` and records every call's timesteps."""

    def __init__(self, runner):
        self.runner, self.calls = runner, []

    def forward_frames(self, x, t, ctx_kv, start_frame=0, cache=None, write=False):
        self.calls.append((start_frame, write, t.flatten().tolist()))
        return self.runner.forward_frames(x, t, ctx_kv, start_frame, cache, write)


def test_first_block_runs_its_own_list_and_the_refill_is_fed_context_noise():
    """Causal Forcing++: the first block over denoising_step_list_first_chunk, the later over the short
    list (CF pipeline/causal_inference.py:224-228); the refill pass at t = context_noise (:274-284)."""
    model = tiny_model()
    pp = causal.CAUSAL_PRESETS["Causal Forcing++ 1-step"]
    sig = tuple(causal.schedule_sigmas(pp.timesteps, pp.shift))
    first = tuple(causal.schedule_sigmas(pp.first_timesteps, pp.shift))
    with torch.no_grad():
        rec = _Recorder(model.causal)
        settings = causal.RolloutSettings(1, sig, 5, 3, 0, first, context_noise=7.0)
        blocks = [b.latent for b in causal.rollout(rec, (1, 4, 1, 4, 6), _ctx(model), _cache(model, 0, 8), settings)]
        plain = causal.RolloutSettings(1, first, 5, 1)
        block0 = next(causal.rollout(model.causal, (1, 4, 1, 4, 6), _ctx(model), _cache(model, 0, 8), plain)).latent
    per_block = [[c for c in rec.calls if c[0] == b] for b in range(3)]
    assert [len(c) for c in per_block] == [len(first) + 1, len(sig) + 1, len(sig) + 1]
    assert all(c[2] == [7.0] for c in rec.calls if c[1]), "every refill pass is fed context_noise"
    assert [c[2][0] for c in per_block[0] if not c[1]] == pytest.approx([s * 1000 for s in first])
    torch.testing.assert_close(blocks[0], block0, rtol=0, atol=0)


def test_text_context_is_512_rows_zero_padded_and_cut():
    c = torch.randn(1, 7, 4)
    padded = causal.text_context(c)
    assert padded.shape == (1, 512, 4) and torch.equal(padded[:, :7], c) and not padded[:, 7:].any()
    long = torch.randn(1, 600, 4)
    assert torch.equal(causal.text_context(long), long[:, :512])
    batch = [(5, 1.0)] * 700
    cut = causal.truncate_tokens(batch)
    assert len(cut) == 512 and cut[-1] == (1, 1.0) and cut[:511] == batch[:511]
    assert causal.truncate_tokens(batch[:20]) == batch[:20]


def test_a_short_prompt_conditions_as_its_512_row_padding():
    """The session pads itself: 7 rows and the same 7 rows zero-padded to 512 give the same video."""
    from test_steering_unit import prompt, run

    model = tiny_model()
    p = prompt(3)
    a = run(model, 2, 3, p)
    b = run(model, 2, 3, torch.cat([p, p.new_zeros(1, 505, p.shape[2])], 1))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_a_start_image_is_cached_at_t0_whatever_the_context_noise():
    """The prefix (image-to-video's start frame) is written at t = 0 (CF pipeline/causal_inference.py:165-198);
    only the blocks' refill passes are fed context_noise."""
    model = tiny_model()
    sig = tuple(causal.schedule_sigmas(*causal.CAUSAL_SCHEDULES["Self Forcing"]))
    rec = _Recorder(model.causal)
    prefix = torch.randn(1, 4, 1, 4, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        settings = causal.RolloutSettings(1, sig, 5, 2, 1, context_noise=9.0)
        list(causal.rollout(rec, (1, 4, 1, 4, 6), _ctx(model), _cache(model, 0, 8), settings, prefix=prefix))
    writes = [(start, t) for start, write, t in rec.calls if write]
    assert writes == [(0, [0.0]), (1, [9.0]), (2, [9.0])]
