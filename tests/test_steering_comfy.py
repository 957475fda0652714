"""Steering inside real ComfyUI: the prompt timeline nodes, the sampler's switches and
video-to-video, the Wan VAE's streamed encode. Tiny Wan 2.1 shapes, fp32."""

import re

import pytest
import torch

pytestmark = pytest.mark.comfy


@pytest.fixture(scope="module")
def files(comfy, tmp_path_factory):
    from tempo_pack.factory import checkpoints as factory

    root = tmp_path_factory.mktemp("steering")
    return {"model": factory.write_causal_safetensors(str(root / "causal.safetensors")),
            "vae": factory.write_wan_vae(str(root / "wan_vae.safetensors")),
            "sd15": factory.write_sd_checkpoint(str(root / "sd15.safetensors"), "SD15", dtype=torch.float32)}


@pytest.fixture(scope="module")
def model(files):
    from tempo_pack.nodes.wan_models import load_causal_model

    return load_causal_model(files["model"], "fp32")[0]


@pytest.fixture(scope="module")
def vae(files):
    import comfy.sd
    import comfy.utils

    return comfy.sd.VAE(sd=comfy.utils.load_torch_file(files["vae"]))


def cond(seed):
    return [[torch.randn(1, 12, 4096, generator=torch.Generator().manual_seed(seed)), {}]]


def timeline(*entries, units="seconds", fps=16.0):
    """Chain 'Tempo Prompt Timeline Add' nodes: entries (start, seed)."""
    from tempo_pack.nodes.prompt_timeline import PromptTimelineAdd

    t = None
    for start, seed in entries:
        t = PromptTimelineAdd.execute(cond(seed), start, units, fps, t, f"prompt {seed}").args[0]
    return t


def plan(model, **over):
    from tempo_pack.nodes.causal_video import plan_video

    args = dict(positive=None, width=64, height=48, length=45, seed=0, schedule="Self Forcing", custom_timesteps="",
                shift=5.0, frames_per_block="auto", cache="window", sink_size=3, local_attn_size=12)
    args.update(over)
    if args["positive"] is None and "timeline" not in over:
        args["positive"] = cond(1)
    return plan_video(args.pop("model", model), **args)


def latents(p, vae=None):
    return [lat for kind, lat in p.blocks(vae=vae) if kind == "block"]


# -- the timeline ---------------------------------------------------------------------------------

def test_timeline_switches_land_on_block_boundaries_and_say_where(model):
    # 45 frames = 12 latent frames = 4 blocks of 3, starting at frames 0, 9, 21, 33
    p = plan(model, timeline=timeline((0, 1), (0.5, 2), (1.5, 3)))  # 0.5 s = frame 8 -> block 2; 1.5 s = 24 -> 4
    assert sorted(p.switches) == [1, 3]
    assert "asked at 0.5 s, starts at block 2, frame 9 (0.56 s)" in p.report[1]
    assert "asked at 1.5 s, starts at block 4, frame 33 (2.06 s)" in p.report[2]


def test_timeline_video_equals_the_core_session_and_an_all_same_timeline_the_single_prompt(model):
    one = latents(plan(model, positive=cond(1)))
    same = latents(plan(model, timeline=timeline((0, 1), (0.5, 1), (1.5, 1))))
    for a, b in zip(one, same):
        assert torch.equal(a, b)
    switched = latents(plan(model, timeline=timeline((0, 1), (0.5, 2))))
    assert torch.equal(switched[0], one[0]) and (switched[1] - one[1]).abs().max() > 1e-3
    plain = latents(plan(model, timeline=timeline((0, 1), (0.5, 2)), switch="plain"))
    assert torch.equal(plain[0], one[0]) and (plain[1] - switched[1]).abs().max() > 1e-4


def test_timeline_text_node_encodes_each_line_with_the_native_text_encoder(files):
    """A real ComfyUI CLIP (the tiny SD 1.5 checkpoint's): each line's conditioning, encoded when the
    sampler places the timeline, is CLIP Text Encode's for the same text, at the line's time."""
    import nodes

    from tempo_pack.nodes.causal_video import _encoder
    from tempo_pack.nodes.prompt_timeline import PromptTimeline
    from tempo_pack.nodes.unet_models import load_image_model
    from tempo_pack.samplers import timeline as tl

    clip = load_image_model(files["sd15"], "fp32")[1]
    text = "# a comment\n0: a fox\n\n2.5s: a fox jumps\n0:03: the fox lands\n"
    t = PromptTimeline.execute(clip, text, "seconds", 16.0).args[0]
    assert [(e.frame, e.label, e.asked) for e in t.entries] == [(0, "a fox", "0 s"), (40, "a fox jumps", "2.5 s"),
                                                                 (48, "the fox lands", "0:03")]
    assert all(e.cond is None for e in t.entries)  # nothing encoded until the sampler has placed every prompt
    first, switches, _ = tl.place(t, [0, 20, 44, 60], 80, encode=_encoder(clip, None))
    ref = nodes.CLIPTextEncode().encode(clip, "a fox jumps")[0][0][0]
    assert torch.equal(switches[2], ref[:1])
    assert torch.equal(first, nodes.CLIPTextEncode().encode(clip, "a fox")[0][0][0][:1])
    frames = PromptTimeline.execute(clip, "0: a\n30: b\n0:02: c", "frames", 16.0).args[0]
    assert [e.frame for e in frames.entries] == [0, 30, 32]  # minutes:seconds is clock time in either unit


def test_conditioning_of_another_text_encoder_is_refused_by_the_sampler_before_any_work(model, files, tmp_path):
    """768-wide conditioning (an SD CLIP) reaching the Wan sampler (4096 wide) through the text timeline,
    Timeline Add, Load Conditioning or positive: refused when the plan is made, naming the text encoder
    to use, not as a shape error in the MP4 node."""
    from safetensors.torch import save_file

    from tempo_pack.nodes.common import TempoInputError
    from tempo_pack.nodes.conditioning import LoadConditioning
    from tempo_pack.nodes.prompt_timeline import PromptTimeline, PromptTimelineAdd
    from tempo_pack.nodes.unet_models import load_image_model
    from comfy_helpers import model_folder

    sd_cond = [[torch.randn(1, 77, 768), {}]]
    words = "is text conditioning 768 wide, but this model reads 4096 wide .* encode it with Load CLIP, type wan"
    with pytest.raises(TempoInputError, match="positive " + words):
        plan(model, positive=sd_cond)
    clip = load_image_model(files["sd15"], "fp32")[1]
    typed = PromptTimeline.execute(clip, "0: a fox\n1: a fox jumps", "seconds", 16.0).args[0]
    with pytest.raises(TempoInputError, match="the timeline's prompt 'a fox' " + words):
        plan(model, timeline=typed)
    added = PromptTimelineAdd.execute(sd_cond, 1.0, "seconds", 16.0, timeline((0, 1)), "sd prompt").args[0]
    with pytest.raises(TempoInputError, match="the timeline's prompt at 1 s \\('sd prompt'\\) " + words):
        plan(model, timeline=added)
    save_file({"cond.0": sd_cond[0][0]}, str(tmp_path / "sd_prompt.safetensors"))
    with model_folder("tempo_conditioning", tmp_path):
        loaded = LoadConditioning.execute("sd_prompt.safetensors").args[0]
    with pytest.raises(TempoInputError, match="positive " + words):
        plan(model, positive=loaded)


def test_a_timeline_longer_than_the_video_has_blocks_is_refused_before_encoding(model):
    """1000 typed lines into a 4-block video: refused at once, with no line encoded."""
    from tempo_pack.nodes.common import TempoInputError
    from tempo_pack.nodes.prompt_timeline import PromptTimeline

    class CountingClip:  # the sampler must refuse before asking it for anything
        asked = 0

        def tokenize(self, text):
            CountingClip.asked += 1
            raise AssertionError("encoded before the timeline was checked")

    text = "\n".join(f"{i}: prompt {i}" for i in range(1000))
    t = PromptTimeline.execute(CountingClip(), text, "frames", 16.0).args[0]
    with pytest.raises(TempoInputError, match="the timeline has 1000 prompts but the video has 4 blocks"):
        plan(model, timeline=t)
    assert CountingClip.asked == 0


@pytest.mark.parametrize("text,message", [
    ("0: a\nten: b", "line 2: the start time 'ten' is not a number; write each line as 'time: prompt'"),
    ("0: a\n5:   ", "line 2: the prompt after '5:' is empty"),
    ("0: a\n5: b\n3: c", "the prompt at 3 s \\('c'\\) does not come after the one before it at 5 s"),
    ("2: a", "the first prompt must start at 0"),
    ("a fox", "line 1 'a fox' has no start time"),
    ("\n# only a comment\n", "the timeline is empty"),
    ("0: a\n-3: b", "the start time '-3' is not a number"),
    ("0: a\n1:30 b", "reads two ways"),
    ("0: a\n10:30 cats", "reads two ways"),
    ("0: a\n1e308: b", "the start time '1e308' is not a number"),
    ("0: a\n100000: b", "past the longest video the sampler makes"),
])
def test_timeline_text_errors_name_the_line_and_the_fix(files, text, message):
    from tempo_pack.nodes.common import TempoInputError
    from tempo_pack.nodes.prompt_timeline import PromptTimeline
    from tempo_pack.nodes.unet_models import load_image_model

    clip = load_image_model(files["sd15"], "fp32")[1]
    with pytest.raises(TempoInputError, match=message):
        PromptTimeline.execute(clip, text, "seconds", 16.0)


@pytest.mark.parametrize("entries,over,message", [
    (((0, 1), (5, 2)), {}, "the prompt at 5 s \\('prompt 2'\\) starts after the video ends \\(frame 44"),
    (((0, 1), (2.5, 2)), {}, "falls inside the last block, which starts at frame 33"),
    (((0, 1), (0.6, 2), (0.7, 3)), {}, "lands on the same block as the one before it"),
])
def test_timeline_placement_errors(model, entries, over, message):
    from tempo_pack.nodes.common import TempoInputError

    with pytest.raises(TempoInputError, match=message):
        plan(model, timeline=timeline(*entries), **over)


def test_positive_and_timeline_are_one_or_the_other(model):
    from tempo_pack.nodes.common import TempoInputError

    with pytest.raises(TempoInputError, match="either positive .* or timeline .*, not both"):
        plan(model, positive=cond(1), timeline=timeline((0, 1)))
    with pytest.raises(TempoInputError, match="connect positive .* or a prompt timeline"):
        plan(model, positive=None, timeline=None)


def test_add_node_refuses_mixed_fps_and_non_conditioning(comfy):
    from tempo_pack.nodes.common import TempoInputError
    from tempo_pack.nodes.prompt_timeline import PromptTimelineAdd

    t = timeline((0, 1))
    with pytest.raises(TempoInputError, match="fps 24 differs from the timeline's \\(16\\)"):
        PromptTimelineAdd.execute(cond(2), 1.0, "seconds", 24.0, t)
    with pytest.raises(TempoInputError, match="not text conditioning"):
        PromptTimelineAdd.execute([[torch.zeros(4, 4), {}]], 0.0, "seconds", 16.0)


# -- video-to-video -------------------------------------------------------------------------------

def clip_frames(n, seed=2, h=48, w=64):
    return torch.rand(n, h, w, 3, generator=torch.Generator().manual_seed(seed))


def test_streamed_encode_equals_vae_encode_of_the_whole_clip(vae):
    from tempo_pack.nodes.wan_models import StreamingWanEncoder

    frames = clip_frames(21)
    whole = vae.encode(frames)
    enc = StreamingWanEncoder(vae)
    parts = [enc.encode(frames[:9]), enc.encode(frames[9:14]), enc.encode(frames[14:16]),
             enc.encode(frames[16:21], final=True)]
    assert parts[2] is None  # two frames complete no latent frame (and a 0.18+ encoder holds the last one back)
    got = torch.cat([p for p in parts if p is not None], dim=2)
    assert got.shape == whole.shape == (1, 16, 6, 6, 8)
    torch.testing.assert_close(got, whole, rtol=0, atol=1e-5)


def test_v2v_output_follows_the_input_and_image_and_latent_inputs_agree(model, vae):
    from tempo_pack.nodes.causal_video import CausalVideoDecode

    frames = clip_frames(40)  # 1 + 39 // 4 = 10 latent frames -> 3 blocks of 3 = 33 output frames
    p = plan(model, input_video=frames, strength=0.6, length=1)
    assert p.num_blocks == 3
    out, lat = CausalVideoDecode.execute(video=p, vae=vae).args
    assert out.shape == (33, 48, 64, 3)
    from_latent = latents(plan(model, input_latent={"samples": vae.encode(frames)}, strength=0.6))
    torch.testing.assert_close(torch.cat(from_latent, dim=2), lat["samples"], rtol=1e-4, atol=1e-4)
    t2v = latents(plan(model, length=33))
    full = latents(plan(model, input_video=frames, strength=1.0), vae)
    for a, b in zip(t2v, full):
        assert torch.equal(a, b)


def test_v2v_with_a_timeline(model, vae):
    out = latents(plan(model, input_video=clip_frames(33), strength=0.5, timeline=timeline((0, 1), (0.5, 2))), vae)
    assert len(out) == 3


@pytest.mark.parametrize("over,message", [
    ({"input_video": clip_frames(9, h=32)}, "input video is 64x32 but the output is 64x48; resize the input "
                                            "\\(Upscale Image to 64x48\\) or set width/height to 64x32"),
    ({"input_video": clip_frames(8)}, "has 8 frame\\(s\\), too few for one block of 3 latent frames; it needs at least 9"),
    ({"input_latent": {"samples": torch.zeros(1, 16, 2, 6, 8)}}, "2 latent frame\\(s\\), too few for one block"),
    ({"input_video": clip_frames(9), "strength": 0.0}, "strength: strength 0.0 is outside \\(0, 1\\]"),
    ({"input_video": clip_frames(9), "strength": 1.2}, "is outside \\(0, 1\\]"),
    ({"input_video": clip_frames(9), "input_latent": {"samples": torch.zeros(1, 16, 3, 6, 8)}}, "not both"),
    ({"input_video": clip_frames(9), "start_latent": {"samples": torch.zeros(1, 16, 1, 6, 8)}},
     "disconnect start_latent and continue_from"),
    ({"input_video": torch.zeros(9, 48, 64)}, "input_video is not video frames"),
    ({"input_latent": {"samples": torch.zeros(1, 4, 3, 6, 8)}}, "input_latent is not a Wan video latent"),
    ({"switch": "sideways"}, "switch 'sideways' is not one of re-cache, plain"),
])
def test_v2v_and_switch_bad_input(model, over, message):
    from tempo_pack.nodes.common import TempoInputError

    with pytest.raises(TempoInputError, match=message):
        plan(model, **over)


def test_v2v_frames_need_the_vae_of_the_stream_consumer(model):
    from tempo_pack.nodes.common import TempoInputError

    with pytest.raises(TempoInputError, match="needs the Wan VAE to be encoded"):
        latents(plan(model, input_video=clip_frames(9)))


def test_an_interrupt_during_v2v_closes_the_encoder_and_frees_the_cache(model, vae, monkeypatch):
    from tempo_pack.models.kv_cache import RollingKVCache
    from tempo_pack.nodes import wan_models

    closed, caches = [], []
    monkeypatch.setattr(wan_models.StreamingWanEncoder, "close", lambda self: closed.append(self.stream.pending))
    real_init = RollingKVCache.__init__

    def spy_init(self, *a, **k):
        real_init(self, *a, **k)
        caches.append(self)

    monkeypatch.setattr(RollingKVCache, "__init__", spy_init)

    def stop(block, step):
        if block == 1:
            raise KeyboardInterrupt("interrupted")

    p = plan(model, input_video=clip_frames(33), strength=0.5, timeline=timeline((0, 1), (0.5, 2)))
    with pytest.raises(KeyboardInterrupt):
        for _ in p.blocks(stop, vae):
            pass
    assert len(closed) == 1 and caches and caches[0].k is None  # encoder closed, cache released


# -- the live page's requests, as run_stream takes them ------------------------------------------

def test_a_saved_conditioning_sent_from_the_live_page_equals_a_timeline_switch(model, vae, tmp_path,
                                                                               add_model_folder):
    from safetensors.torch import load_file

    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.live.streams import LiveHub
    from tempo_pack.nodes.causal_video import run_stream
    from tempo_pack.nodes.common import CONDITIONING_FOLDER

    add_model_folder(CONDITIONING_FOLDER, tmp_path)
    factory.write_conditioning(str(tmp_path / "other.safetensors"), seed=5)
    saved = load_file(str(tmp_path / "other.safetensors"))["cond.0"]
    p = plan(model, positive=cond(1))
    stream = LiveHub().open(title="t", width=64, height=48, fps=16.0, total_blocks=p.num_blocks,
                            saved=["other.safetensors"])
    stream.request_prompt("saved", "other.safetensors")  # taken before block 2, the first it can steer
    live = run_stream(p, vae, live=stream)["samples"]
    from tempo_pack.nodes.prompt_timeline import PromptTimelineAdd

    t = PromptTimelineAdd.execute(cond(1), 0.0, "frames", 16.0).args[0]
    t = PromptTimelineAdd.execute([[saved, {}]], 9.0, "frames", 16.0, t).args[0]  # block 2 starts at frame 9
    ref = run_stream(plan(model, timeline=t), vae)["samples"]
    torch.testing.assert_close(live, ref, rtol=0, atol=0)
    assert [e["text"] for e in stream.info()["events"]] == ["from block 2: 'other.safetensors'"]


def test_a_live_prompt_that_cannot_be_used_is_told_and_the_video_goes_on(model, vae, files):
    from tempo_pack.live.streams import LiveHub
    from tempo_pack.nodes.causal_video import run_stream
    from tempo_pack.nodes.unet_models import load_image_model

    sd15_clip = load_image_model(files["sd15"], "fp32")[1]  # a real CLIP, but not the Wan text encoder
    p = plan(model, positive=cond(1), clip=sd15_clip)
    stream = LiveHub().open(title="t", width=64, height=48, fps=16.0, total_blocks=p.num_blocks, can_encode=True)
    stream.request_prompt("text", "a fox")
    out = run_stream(p, vae, live=stream)["samples"]
    ref = run_stream(plan(model, positive=cond(1)), vae)["samples"]
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    events = [e["text"] for e in stream.info()["events"]]
    assert len(events) == 1 and "could not use 'a fox': it is not Wan text conditioning" in events[0]


def test_stop_from_the_live_page_ends_after_the_block_and_keeps_what_was_made(model, vae):
    from tempo_pack.live.streams import LiveHub
    from tempo_pack.nodes.causal_video import run_stream

    p = plan(model, positive=cond(1))
    stream = LiveHub().open(title="t", width=64, height=48, fps=16.0, total_blocks=p.num_blocks)
    frames = []

    def on_frames(f):
        frames.append(f)
        stream.request_stop()

    out = run_stream(p, vae, on_frames, live=stream)["samples"]
    assert out.shape[2] == 3 and sum(f.shape[0] for f in frames) == 9  # one block of 3 latent frames, 9 frames
    assert stream.info()["events"][-1]["text"] == "stopped after block 1"


def test_prompts_are_cut_at_512_tokens_before_encoding():
    """Tempo Prompt Timeline and the live page encode through encode_wan_prompt: 511 tokens and the end
    token, what the reference tokenizer's truncation keeps; shorter prompts are untouched."""
    from tempo_pack.nodes.common import encode_wan_prompt

    class Clip:
        def tokenize(self, text):
            return {"umt5xxl": [[(i + 2, 1.0) for i in range(len(text.split()))] + [(1, 1.0)]]}

        def encode_from_tokens_scheduled(self, tokens):
            self.seen = tokens
            return [[torch.zeros(1, len(tokens["umt5xxl"][0]), 8), {}]]

    clip = Clip()
    assert encode_wan_prompt(clip, "word " * 700)[0][0].shape[1] == 512
    assert clip.seen["umt5xxl"][0][-1] == (1, 1.0) and clip.seen["umt5xxl"][0][:511] == [(i + 2, 1.0) for i in range(511)]
    assert encode_wan_prompt(clip, "a red fox")[0][0].shape[1] == 4


@pytest.mark.parametrize("tensors,holds", [({"weight": torch.zeros(2, 2)}, "weight"),
                                           ({"cond.1": torch.zeros(1, 4, 8)}, "cond.1"),
                                           ({"cond.0": torch.zeros(4, 8)}, "cond.0")])
def test_load_conditioning_of_a_file_that_is_not_one(comfy, tmp_path, tensors, holds):
    from safetensors.torch import save_file

    from comfy_helpers import model_folder
    from tempo_pack.nodes.common import TempoInputError
    from tempo_pack.nodes.conditioning import LoadConditioning

    save_file(tensors, str(tmp_path / "odd.safetensors"))
    with model_folder("tempo_conditioning", tmp_path), \
            pytest.raises(TempoInputError, match=f"odd.safetensors is not a saved conditioning \\(it holds {holds}"
                                                 "\\); save prompts with 'Tempo Save Conditioning'"):
        LoadConditioning.execute("odd.safetensors")


@pytest.mark.parametrize("name,message", [
    ("../../x/c", "name '../../x/c' has '/'; use letters, digits, - _ and . only \\(no folders"),
    ("", "name is empty"), (".hidden", "has a leading '.'"), ("a" * 600, "characters long; use at most"),
])
def test_save_conditioning_refuses_a_name_with_folders_and_writes_nothing(comfy, tmp_path, name, message):
    from comfy_helpers import model_folder
    from tempo_pack.nodes.common import TempoInputError
    from tempo_pack.nodes.conditioning import SaveConditioning

    with model_folder("tempo_conditioning", tmp_path):
        said = SaveConditioning.validate_inputs(name=name)  # as the job is queued
        assert isinstance(said, str) and re.search(message, said), said
        with pytest.raises(TempoInputError, match=message):
            SaveConditioning.execute(cond(1), name)
    assert list(tmp_path.iterdir()) == []
