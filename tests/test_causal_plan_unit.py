"""The causal run's rules alone (samplers/causal_plan.py): plain Python, no ComfyUI, no tensors."""

import dataclasses

import pytest

from tempo_pack.samplers import causal, causal_plan as cp

S = cp.CausalSettings()


def settings(**over):
    return dataclasses.replace(S, **over)


@pytest.mark.parametrize("mode,latent,frames", [("text", 21, 81), ("video", 21, 81), ("image", 21, 85),
                                                 ("continue", 21, 84), ("text", 1, 1), ("image", 3, 13)])
def test_frames_of_a_run_follow_the_wan_vae(mode, latent, frames):
    assert cp.frames_of(latent, mode) == frames


@pytest.mark.parametrize("mode,length,fpb,latent", [("text", 81, 3, 21), ("image", 85, 3, 21), ("continue", 84, 3, 21),
                                                    ("text", 81, 1, 21), ("text", 9, 3, 3), ("image", 13, 3, 3)])
def test_lengths_give_whole_blocks(mode, length, fpb, latent):
    assert cp.latent_frames_of(length, mode, fpb) == latent
    assert cp.frames_of(latent, mode) == length


@pytest.mark.parametrize("mode,length,message", [
    ("text", 80, "length 80 is not 1 \\+ 4k .* try 69 or 81"),
    ("text", 77, "gives 20 latent frame\\(s\\) to generate, not whole blocks of 3; try 69 or 81"),
    ("image", 81, "gives 20 latent frame\\(s\\).* try 73 or 85"),
    ("continue", 80, "a continuation adds 4 frames per latent frame in whole blocks of 3: length 80 does not fit; "
                     "try 72 or 84"),
])
def test_a_length_that_does_not_fit_is_refused_with_the_nearest_that_do(mode, length, message):
    with pytest.raises(cp.PlanError, match=message):
        cp.latent_frames_of(length, mode, 3)


def test_each_block_starts_after_the_frames_of_the_blocks_before_it():
    for mode in cp.MODES:
        starts = cp.block_starts(mode, 3, 4)
        assert starts[0] == (1 if mode == "image" else 0)
        assert [b - a for a, b in zip(starts[1:], starts[2:])] == [12, 12]
        assert starts[1] == cp.frames_of(3, mode)


def test_the_window_in_the_authors_terms():
    """local_attn_size counts the block and the sink: 21 with a 3-frame sink and blocks of 3 keeps 15 earlier
    frames; the preset's window is the published one; 'full' keeps every frame."""
    assert cp.window(settings(cache="window", sink_size=3, local_attn_size=21), 3) == (3, 15, "")
    assert cp.window(settings(cache="preset", schedule="LongLive"), 3) == (3, 6, "")
    assert cp.window(settings(cache="full"), 3) == (0, None, "")
    sink, kept, note = cp.window(settings(cache="rolling", legacy=(2, 9)), 3)
    assert (sink, kept) == (2, 9) and "sink_size 2 and local_attn_size 14" in note
    with pytest.raises(cp.PlanError, match="local_attn_size must be at least 7"):
        cp.window(settings(cache="window", sink_size=3, local_attn_size=6), 3)


def test_every_field_of_a_preset_is_read(monkeypatch):
    """Denoising list, shift, frames per block, window, first-block list and context_noise: each comes from the
    preset (a context_noise setting other than 0 takes its place)."""
    p = dataclasses.replace(causal.CAUSAL_PRESETS["Causal Forcing++ 2-step"], context_noise=125.0)
    monkeypatch.setitem(causal.CAUSAL_PRESETS, p.name, p)
    run = cp.plan(settings(schedule=p.name, length=21, cache="preset"), "text")
    spec = run.spec
    assert spec.frames_per_block == p.frames_per_block == 1
    assert spec.sigmas == tuple(causal.schedule_sigmas(p.timesteps, p.shift))
    assert spec.first_sigmas == tuple(causal.schedule_sigmas(p.first_timesteps, p.shift))
    assert (spec.sink, spec.window) == (p.sink_size, p.local_attn_size - p.sink_size - 1)
    assert spec.context_noise == 125.0
    assert cp.plan(settings(schedule=p.name, length=21, context_noise=50.0), "text").spec.context_noise == 50.0
    assert cp.plan(settings(schedule=p.name, length=84), "continue").spec.first_sigmas == ()  # not the video's start


def test_video_to_video_starts_the_schedule_at_the_strength():
    run = cp.plan(settings(strength=0.5), "video", input_frames=40)
    assert run.spec.sigmas[0] == 0.5 and all(s < 0.5 for s in run.spec.sigmas[1:])
    assert run.spec.latent_frames == 9 and run.total_frames == 33  # 10 latent frames, 3 whole blocks
    assert cp.plan(settings(), "video", input_frames=6, input_counted="latent").spec.latent_frames == 6
    with pytest.raises(cp.PlanError, match="has 8 frame\\(s\\), too few for one block of 3 latent frames; it needs at "
                                           "least 9 frames"):
        cp.plan(settings(), "video", input_frames=8)


def test_the_files_frames_per_block_decide_and_a_contradiction_is_refused():
    assert cp.plan(settings(length=21), "text", stated_fpb=1).spec.frames_per_block == 1
    with pytest.raises(cp.PlanError, match="frames_per_block is 3 but x.pt was trained with 1 frame\\(s\\) per block"):
        cp.plan(settings(frames_per_block="3"), "text", stated_fpb=1, file="x.pt")
    run = cp.plan(settings(frames_per_block="1", length=21), "text")  # Self Forcing's list, made frame by frame
    assert "published with 3 frame(s) per block and this run makes 1" in run.notes[0]


@pytest.mark.parametrize("over,message", [
    (dict(width=100), "multiples of 16.*try 96x480"),
    (dict(schedule="Self Forcing 2"), "schedule 'Self Forcing 2' is not one of"),
    (dict(cache="ring"), "cache 'ring' is not one of"),
    (dict(schedule="custom", custom_timesteps="1000, a"), "not a list of timesteps"),
    (dict(schedule="custom", custom_timesteps="250, 500"), "must run from high to low"),
    (dict(context_noise=2000.0), "context_noise 2000.0 is outside"),
    (dict(cache="window", local_attn_size=4), "local_attn_size must be at least 7"),
])
def test_settings_are_checked_alone_before_any_model(over, message):
    with pytest.raises(causal.TempoError, match=message):
        cp.check_settings(settings(**over))
