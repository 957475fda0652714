"""Steering a causal video while it runs (plain torch, fp32): prompt switches with LongLive's
re-cache, and streaming video-to-video."""

import pytest
import torch

from causal_reference import longlive_interactive, pad_text
from test_causal_unit import TINY, tiny_model
from tempo_pack.errors import TempoError
from tempo_pack.models.kv_cache import RollingKVCache
from tempo_pack.samplers import causal

H, W, TPF = 4, 6, 6  # latent 4x6 -> 2x3 tokens per frame
SIGMAS = tuple(causal.schedule_sigmas(*causal.CAUSAL_SCHEDULES["Self Forcing"]))


def prompt(seed, n=7):
    return torch.randn(1, n, TINY["text_dim"], generator=torch.Generator().manual_seed(seed))


def session(model, blocks, fpb, sink=0, window=None, sigmas=SIGMAS, seed=5):
    spec = causal.VideoSpec(H, W, blocks * fpb, fpb, sigmas, seed, sink, window, channels=TINY["in_dim"])
    return causal.CausalSession(model.causal, spec)


def run(model, blocks, fpb, cond, switches=None, recache=True, source=None, **kw):
    s = session(model, blocks, fpb, **kw)
    return [x for kind, x in s.run(cond, switches=switches, recache=recache, source=source) if kind == "block"]


def longlive(model, prompts, switch_blocks, blocks, fpb, local_attn_size, sink, seed=5):
    r = model.causal
    ctx = [r.cross_kv(*r.embed_context(pad_text(p))) for p in prompts]
    shape = (1, TINY["in_dim"], fpb, H, W)
    with torch.no_grad():
        return longlive_interactive(r, ctx, [b * fpb for b in switch_blocks], blocks, fpb, SIGMAS,
                                    lambda b: causal.block_noise(shape, seed, b),
                                    lambda b: causal.block_generator(seed, b, kind=1), TPF, local_attn_size, sink)


# (frames per block, LongLive's local_attn_size, sink, blocks, switch blocks): switches while the
# window still holds the whole video (the sinks are recomputed) and after it rolled (they are kept).
# The sink is at most one block: LongLive reads its sink slots before the first block has filled
# them when the sink is larger (zero keys at block 0), a combination its configs never run (3 and 3).
CASES = [
    (3, 12, 3, 9, [2, 6]),   # LongLive's own setting: switch at frame 6 (<= 12) and at frame 18 (> 12)
    (3, 12, 3, 7, [4]),      # frame 12 = local_attn_size exactly: the cache still holds frames 0..11
    (1, 6, 1, 12, [3, 5, 9]),  # frame-wise, three switches, one in each regime
    (3, 9, 0, 6, [4]),       # no sink
]


@pytest.mark.parametrize("fpb,local,sink,blocks,switch_blocks", CASES)
def test_recache_equals_longlive_switching_rule(fpb, local, sink, blocks, switch_blocks):
    model = tiny_model()
    prompts = [prompt(9 + i) for i in range(len(switch_blocks) + 1)]
    ref = longlive(model, prompts, switch_blocks, blocks, fpb, local, sink)
    ours = run(model, blocks, fpb, prompts[0], dict(zip(switch_blocks, prompts[1:])), sink=sink,
               window=local - sink - fpb)
    assert len(ours) == len(ref) == blocks
    for i, (a, b) in enumerate(zip(ours, ref)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m: f"block {i}: {m}")


def test_recache_with_a_full_cache_equals_longlive_global_attention():
    """local_attn_size -1: every frame is recomputed (a video short enough for LongLive's 21-frame cap)."""
    model = tiny_model(1)
    prompts = [prompt(3), prompt(4)]
    ref = longlive(model, prompts, [3], 6, 3, -1, 0)
    ours = run(model, 6, 3, prompts[0], {3: prompts[1]}, window=None)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_without_recache_longlive_differs_so_the_rule_is_what_is_compared():
    """A plain switch (context only) is not LongLive's output: the equality above tests the re-cache."""
    model = tiny_model()
    prompts = [prompt(9), prompt(10)]
    ref = longlive(model, prompts, [4], 6, 3, 12, 3)
    plain = run(model, 6, 3, prompts[0], {4: prompts[1]}, recache=False, sink=3, window=6)
    for a, b in zip(plain[:4], ref[:4]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # before the switch: the same video
    assert (plain[4] - ref[4]).abs().max() > 1e-3


@pytest.mark.parametrize("recache", [True, False])
def test_a_timeline_of_one_prompt_is_the_single_prompt_video(recache):
    model = tiny_model()
    p = prompt(9)
    single = run(model, 5, 3, p, sink=3, window=6)
    same = run(model, 5, 3, p, {1: p.clone(), 3: p.clone()}, recache=recache, sink=3, window=6)
    for a, b in zip(single, same):
        assert torch.equal(a, b)


def test_switch_changes_only_the_blocks_after_it():
    model = tiny_model()
    a = run(model, 5, 3, prompt(9), sink=3, window=6)
    b = run(model, 5, 3, prompt(9), {3: prompt(10)}, sink=3, window=6)
    for i in range(3):
        assert torch.equal(a[i], b[i])
    assert all((a[i] - b[i]).abs().max() > 1e-3 for i in (3, 4))


def test_recache_memory_stays_flat_over_a_long_rolling_video():
    """The re-cache keeps clean latents of the sinks and the last local_attn_size frames only."""
    model = tiny_model()
    p, q = prompt(9), prompt(10)
    s = session(model, 40, 1, sink=2, window=4)
    seen = []
    orig = causal.recache

    def spy(model_, history, *a, **k):
        seen.append(len(history))
        return orig(model_, history, *a, **k)

    causal.recache = spy
    try:
        list(s.run(p, switches={10: q, 20: p, 39: q}))
    finally:
        causal.recache = orig
    assert seen == [2 + 4 + 1] * 3  # the sinks + window + one block, however long the video


# -- commit when more frames arrive than the cache holds (the re-cache stages a whole window) --

def test_commit_keeps_the_sinks_and_the_newest_frames():
    c = RollingKVCache(1, 1, 1, 1, 1, 2, 3)
    for f, value in ((0, 0.0), (1, 1.0)):
        c.stage(0, torch.full((1, 1, 1, 1), value), torch.full((1, 1, 1, 1), value))
        c.commit(f, 1)
    c.stage(0, torch.arange(2, 8.).view(1, 6, 1, 1), torch.arange(2, 8.).view(1, 6, 1, 1))
    c.commit(2, 6)  # frames 2..7 into a cache of 2 sinks + 3
    assert c.frames == [0, 1, 5, 6, 7]
    assert c.k.flatten().tolist() == [0, 1, 5, 6, 7]
    c.restart(keep_sinks=False)
    c.stage(0, torch.arange(10, 18.).view(1, 8, 1, 1), torch.zeros(1, 8, 1, 1))
    c.commit(0, 8)  # a re-cache from frame 0: the first two become the sinks again
    assert c.frames == [0, 1, 5, 6, 7] and c.k.flatten().tolist() == [10, 11, 15, 16, 17]


# -- video-to-video ------------------------------------------------------------------------------

def source_blocks(blocks, fpb, seed=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, TINY["in_dim"], fpb, H, W, generator=g) for _ in range(blocks)]


def test_strength_one_is_text_to_video_with_the_same_seed():
    model = tiny_model()
    t2v = run(model, 3, 3, prompt(9), sink=3, window=6)
    v2v = run(model, 3, 3, prompt(9), source=iter(source_blocks(3, 3)), sink=3, window=6,
              sigmas=causal.strength_sigmas(SIGMAS, 1.0))
    for a, b in zip(t2v, v2v):
        assert torch.equal(a, b)


def test_one_block_equals_the_sdedit_rule():
    """x = (1 - s) x_in + s eps with the block's noise, then the schedule's steps below s, each
    x0 = x - sigma v and re-noised with the block's re-noise generator (written out here)."""
    model = tiny_model()
    src = source_blocks(1, 3)[0]
    strength = 0.7
    sig = causal.strength_sigmas(SIGMAS, strength)
    assert sig[0] == 0.7 and all(s < 0.7 for s in sig[1:]) and len(sig) == 2  # 0.625 is the one below
    ours = run(model, 1, 3, prompt(9), source=iter([src]), sigmas=sig, window=None)[0]
    r = model.causal
    with torch.no_grad():
        ctx = r.cross_kv(*r.embed_context(pad_text(prompt(9))))  # the authors pad the text to 512 rows
        eps = causal.block_noise(src.shape, 5, 0)
        x = (1 - strength) * src + strength * eps
        gen = causal.block_generator(5, 0, kind=1)
        for i, s in enumerate(sig):
            x0 = x - s * r.forward_frames(x, torch.full((1, 3), s * 1000.0), ctx, 0)
            if i + 1 < len(sig):
                x = (1 - sig[i + 1]) * x0 + sig[i + 1] * torch.randn(src.shape, generator=gen)
    torch.testing.assert_close(ours, x0, rtol=1e-5, atol=1e-6)


def test_lower_strength_stays_closer_to_the_input():
    model = tiny_model()
    src = source_blocks(2, 3)
    dist = {}
    for s in (0.3, 0.9):
        out = run(model, 2, 3, prompt(9), source=iter(src), sigmas=causal.strength_sigmas(SIGMAS, s), sink=3, window=6)
        dist[s] = sum((o - i).abs().mean().item() for o, i in zip(out, src))
    assert dist[0.3] < dist[0.9]


def test_v2v_with_a_prompt_switch_runs_and_the_input_running_out_is_an_error():
    model = tiny_model()
    out = run(model, 3, 3, prompt(9), {2: prompt(10)}, source=iter(source_blocks(3, 3)),
              sigmas=causal.strength_sigmas(SIGMAS, 0.6), sink=3, window=6)
    assert len(out) == 3
    with pytest.raises(TempoError, match="input video ended before block 3"):
        run(model, 3, 3, prompt(9), source=iter(source_blocks(2, 3)), sigmas=causal.strength_sigmas(SIGMAS, 0.6),
            sink=3, window=6)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5])
def test_strength_outside_range_is_refused(bad):
    with pytest.raises(TempoError, match="outside \\(0, 1\\]"):
        causal.strength_sigmas(SIGMAS, bad)


def test_a_live_prompt_at_a_block_equals_a_timeline_switch_there():
    """What the live page does (a new prompt asked for before block k) is a timeline switch at k."""
    model = tiny_model()
    timeline = run(model, 5, 3, prompt(9), {3: prompt(10)}, sink=3, window=6)
    asked = []

    def live(blk):
        asked.append(blk)
        return prompt(10) if blk == 3 else None

    s = session(model, 5, 3, sink=3, window=6)
    got = [x for kind, x in s.run(prompt(9), live=live) if kind == "block"]
    assert asked == [1, 2, 3, 4]
    for a, b in zip(got, timeline):
        assert torch.equal(a, b)
