"""Causal video inside real ComfyUI: weight compatibility, checkpoint layouts, streaming decode,
and bad input. Tiny Wan 2.1 shapes (1 head of 128, 2 layers), fp32."""

import logging

import pytest
import torch

pytestmark = pytest.mark.comfy


@pytest.fixture(scope="module")
def files(comfy, tmp_path_factory):
    from tempo_pack.factory import checkpoints as factory

    root = tmp_path_factory.mktemp("causal")
    return {
        "pt": factory.write_self_forcing_pt(str(root / "self_forcing_dmd.pt")),
        "pt_fsdp": factory.write_self_forcing_pt(str(root / "fsdp_self_forcing.pt"), fsdp=True),
        "safetensors": factory.write_causal_safetensors(str(root / "repack.safetensors")),
        "framewise": factory.write_causal_safetensors(str(root / "framewise.safetensors"), frames_per_block=1),
        "noncausal": factory.write_causal_safetensors(str(root / "wan_t2v.safetensors"), frames_per_block=None,
                                                      causal=False),
        "vae": factory.write_wan_vae(str(root / "wan_vae.safetensors")),
        "root": root,
    }


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 16, 3, 8, 8, generator=g), torch.randn(1, 12, 4096, generator=g)


def test_same_outputs_as_comfyui_wan_model(comfy):
    """Our backbone loads Wan 2.1 weights as ComfyUI's own WanModel does and computes the same thing."""
    import comfy.ldm.wan.model as wan
    import comfy.ops

    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.models.causal_wan import CausalWanModel

    sd = factory.causal_wan_state_dict()
    cfg = dict(factory.WAN_TINY)
    ref = wan.WanModel(model_type="t2v", patch_size=(1, 2, 2), operations=comfy.ops.disable_weight_init, **cfg)
    ref.load_state_dict(sd, strict=True)
    ours = CausalWanModel(**cfg)
    ours.load_state_dict(sd, strict=True)
    x, ctx = _inputs()
    with torch.no_grad():
        for t in (torch.tensor([500.0]), torch.tensor([[1000.0, 500.0, 0.0]])):  # one timestep, and one per frame
            torch.testing.assert_close(ours(x, t, ctx), ref(x, t, ctx), rtol=1e-4, atol=1e-4)


def test_causal_forward_runs_over_comfyuis_own_wan_model(files):
    """One Wan path: the loader builds ComfyUI's own WanModel, and the causal forward run over its
    modules computes what ComfyUI's own forward computes (t2v and i2v shapes)."""
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.wan_models import build_wan_model, causal_runner, load_causal_model

    import comfy.ldm.wan.model as wan

    t2v = load_causal_model(files["safetensors"], "fp32")[0]
    assert type(t2v.model.diffusion_model) is wan.WanModel
    x, ctx = _inputs()
    with torch.no_grad():
        for t in (torch.tensor([500.0]), torch.tensor([[1000.0, 500.0, 0.0]])):
            torch.testing.assert_close(causal_runner(t2v).forward(x, t, ctx), t2v.model.diffusion_model(x, t, ctx),
                                       rtol=1e-4, atol=1e-4)
    i2v = build_wan_model(factory.causal_wan_state_dict(in_dim=36, model_type="i2v"), "fp32", "i2v")
    g = torch.Generator().manual_seed(4)
    x, ctx, clip = (torch.randn(1, 36, 2, 8, 8, generator=g), torch.randn(1, 12, 4096, generator=g),
                    torch.randn(1, 257, 1280, generator=g))
    t = torch.tensor([600.0])
    with torch.no_grad():
        torch.testing.assert_close(causal_runner(i2v).forward(x, t, ctx, clip_fea=clip),
                                   i2v.model.diffusion_model(x, t, ctx, clip_fea=clip), rtol=1e-4, atol=1e-4)


def test_a_model_from_comfyuis_own_loader_runs_in_the_causal_sampler(files, add_model_folder):
    """Interop: the causal file loaded by ComfyUI's native UNETLoader (ComfyUI's own Wan class, or its
    own causal class where it has one) samples exactly as the same file through Tempo's loader."""
    import nodes

    from tempo_pack.nodes.wan_models import load_causal_model

    add_model_folder("diffusion_models", files["root"])
    from tempo_pack.nodes import compat

    native = nodes.UNETLoader().load_unet("repack.safetensors", "default")[0]
    assert "tempo_causal" not in native.model_options
    if compat.WAN21_CausalAR is not None:  # 0.21+: the causal_ar metadata picks ComfyUI's own causal class
        assert isinstance(native.model, compat.WAN21_CausalAR)
    ours = load_causal_model(files["safetensors"], "fp32")[0]
    a = [lat for _, lat in _plan(native, length=21).blocks()]
    b = [lat for _, lat in _plan(ours, length=21).blocks()]
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_a_model_that_is_not_wan_is_refused(comfy):
    from tempo_pack.nodes.common import TempoInputError

    class NotWan:
        model_options = {}

        class model:  # noqa: N801 - mimics ModelPatcher.model
            diffusion_model = torch.nn.Linear(2, 2)

    with pytest.raises(TempoInputError, match="not a Wan 2.1 model.*Tempo Causal Video Loader"):
        _plan(NotWan())


def test_same_outputs_as_diffusers_wan_transformer(comfy, tmp_path):
    diffusers = pytest.importorskip("diffusers", reason="diffusers (dev dependency) is needed for this cross-check")
    from safetensors.torch import save_file

    from tempo_pack.loaders.wan import read_wan_checkpoint
    from tempo_pack.models.causal_wan import CausalWanModel

    torch.manual_seed(0)
    ref = diffusers.WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=1, attention_head_dim=128,
                                          in_channels=16, out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=256,
                                          num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                          eps=1e-6).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.05)
    (tmp_path / "transformer").mkdir()
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()},
              str(tmp_path / "transformer" / "diffusion_pytorch_model.safetensors"))
    sd, _ = read_wan_checkpoint(str(tmp_path))
    from tempo_pack.models.causal_wan import config_from_state_dict

    ours = CausalWanModel(**config_from_state_dict(sd))
    ours.load_state_dict(sd, strict=True)
    x, ctx = _inputs()
    t = torch.tensor([700.0])
    with torch.no_grad():
        theirs = ref(hidden_states=x, timestep=t, encoder_hidden_states=ctx, return_dict=False)[0]
        torch.testing.assert_close(ours(x, t, ctx), theirs, rtol=1e-4, atol=1e-4)


def test_self_forcing_pickle_and_safetensors_repackage_are_identical(files):
    from tempo_pack.nodes.wan_models import load_causal_model

    x, ctx = _inputs()
    t = torch.tensor([[900.0, 900.0, 900.0]])
    outs = {}
    for key in ("pt", "pt_fsdp", "safetensors"):
        model, info = load_causal_model(files[key], "fp32")
        with torch.no_grad():
            outs[key] = model.model.diffusion_model(x, t, ctx)
    torch.testing.assert_close(outs["pt"], outs["safetensors"], rtol=0, atol=0)
    torch.testing.assert_close(outs["pt_fsdp"], outs["safetensors"], rtol=0, atol=0)


def test_streaming_decode_equals_decoding_the_whole_video(files):
    """On every ComfyUI the suite runs: 0.3.64 and 0.8.0 decode with tensors and count_conv3d, 0.27 with
    chunk lists and count_cache_layers (nodes/compat.py)."""
    import comfy.sd
    import comfy.utils

    from tempo_pack.nodes.wan_models import StreamingWanDecoder

    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(files["vae"]))
    lat = torch.randn(1, 16, 7, 6, 8, generator=torch.Generator().manual_seed(1))
    whole = vae.decode(lat).reshape(-1, 48, 64, 3)
    dec = StreamingWanDecoder(vae)
    parts = [dec.decode(lat[:, :, :1]), dec.decode(lat[:, :, 1:4]), dec.decode(lat[:, :, 4:7])]
    assert [p.shape[0] for p in parts] == [1, 12, 12]  # 1 + 4(n - 1) for the first block, 4n after
    torch.testing.assert_close(torch.cat(parts), whole, rtol=0, atol=1e-6)


# -- bad input ---------------------------------------------------------------------------------

def _plan(model, **over):
    from tempo_pack.nodes.causal_video import plan_video

    args = dict(width=64, height=48, length=21, seed=0, schedule="Self Forcing", custom_timesteps="",
                shift=5.0, frames_per_block="auto", cache="window", sink_size=1, local_attn_size=7)
    args.update(over)
    positive = [[torch.zeros(1, 12, 4096), {}]]
    return plan_video(model, positive, **args)


@pytest.fixture(scope="module")
def chunkwise(files):
    from tempo_pack.nodes.wan_models import load_causal_model

    return load_causal_model(files["safetensors"], "fp32")[0]


@pytest.mark.parametrize("over,message", [
    ({"frames_per_block": "1"}, "trained with 3 frame\\(s\\) per block; set frames_per_block to 3"),
    ({"schedule": "nope"}, "schedule 'nope' is not one of Self Forcing"),
    ({"cache": "../x"}, "cache '../x' is not one of preset, window, full, rolling"),
    ({"frames_per_block": "7"}, "frames_per_block '7' is not one of auto"),
    ({"width": 70}, "multiples of 16.*got 70x48: try 64x48"),
    ({"length": 20}, "length 20 is not 1 \\+ 4k.*try 9 or 21"),
    ({"length": 17}, "gives 5 latent frame\\(s\\) to generate, not whole blocks of 3; try 9 or 21"),
    ({"length": 4801}, "gives 1201 latent frame\\(s\\) .* try 4797 or 4809"),  # past 399 blocks too
    ({"length": 99997}, "gives 25000 latent .* try 99981 or 99993"),  # the largest allowed is one of them
    ({"schedule": "custom", "custom_timesteps": "250, 500"}, "must run from high to low"),
    ({"schedule": "custom", "custom_timesteps": " , "}, "custom_timesteps is empty, so the schedule would run no step"),
    ({"local_attn_size": 4}, "local_attn_size 4 leaves no earlier frame.*must be at least 5"),
    ({"cache": "rolling", "local_attn_size": 2}, "window_frames 2 is smaller than one block"),
    ({"context_noise": 1001}, "context_noise 1001 is outside"),
])
def test_sampler_refuses_bad_settings(chunkwise, over, message):
    with pytest.raises(ValueError, match=message):
        _plan(chunkwise, **over)


def test_cache_too_big_for_memory_names_the_setting(chunkwise):
    with pytest.raises(ValueError, match="this video needs about .* GiB \\(.* GiB of KV cache, .* working memory for "
                                         "4096x4096\\) but only .* can be had on cpu; lower the resolution, or set "
                                         "cache to 'window' with a smaller local_attn_size \\(now 600\\)"):
        _plan(chunkwise, width=4096, height=4096, cache="full", length=12 * 200 - 3)


def test_working_memory_counts_even_with_a_small_cache(chunkwise, monkeypatch):
    """The block's activations at a large size are refused too, not only a large cache."""
    import comfy.model_management as mm

    ok = _plan(chunkwise, width=1024, height=1024)
    need = ok.session().activation_bytes() + ok.session().cache_bytes()
    monkeypatch.setattr(mm, "get_free_memory", lambda *a, **k: need)  # fits, but not within the 80% margin
    with pytest.raises(ValueError, match="working memory for 1024x1024"):
        _plan(chunkwise, width=1024, height=1024)


def test_the_largest_allowed_size_is_refused_at_once_not_attempted(files, chunkwise):
    """4096x4096 with the rolling cache: the plan fits this tiny model, the Wan VAE's decode of one
    frame at that size does not; the job is refused before its first block, in well under a minute."""
    import time

    import comfy.sd
    import comfy.utils

    from tempo_pack.nodes.causal_video import run_stream

    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(files["vae"]))
    start = time.monotonic()
    plan = _plan(chunkwise, width=4096, height=4096, length=21)
    with pytest.raises(ValueError, match="decoding this video with the Wan VAE needs about .* GiB per frame at "
                                         "4096x4096 but cpu has .* GiB free; lower the resolution"):
        run_stream(plan, vae)
    assert time.monotonic() - start < 30


def test_start_image_of_another_size(chunkwise):
    with pytest.raises(ValueError, match="start image is 32x32 but the video is 64x48"):
        _plan(chunkwise, length=13, start_latent={"samples": torch.zeros(1, 16, 1, 4, 4)})


@pytest.mark.parametrize("name,writer,what", [
    ("apt_video.safetensors", "apt", "a one-step video model \\(its metadata sets tempo.timestep\\)"),
    ("rCM_Wan2.1_T2V_1.3B_480p.pt", "rcm", "an rCM few-step video model"),
])
def test_a_one_step_video_file_in_the_causal_loader_is_refused_before_its_weights_are_read(
        tmp_path, add_model_folder, monkeypatch, name, writer, what):
    """APT / rCM files are Wan 2.1 DiTs too, but not causal: said at once, with the loader to use. A
    safetensors file is refused from its header, before its weights are read."""
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.loaders import wan
    from tempo_pack.nodes.causal_video import CausalVideoLoader

    path = str(tmp_path / name)
    if writer == "apt":
        factory.write_apt_video(path, dtype=torch.float32)
        monkeypatch.setattr(wan, "read_file", lambda p: (_ for _ in ()).throw(AssertionError("weights read")))
    else:
        factory.write_rcm_pt(path)
    add_model_folder("diffusion_models", tmp_path)
    with pytest.raises(ValueError, match=f"{name} is {what}, not a causal one: .* Load it with 'Tempo One-Step "
                                         "Video Loader'"):
        CausalVideoLoader.execute(model_name=name, weight_dtype="fp32")


def test_non_causal_checkpoint_warns_but_runs(files, caplog, add_model_folder):
    from tempo_pack.nodes.causal_video import CausalVideoLoader

    add_model_folder("diffusion_models", files["root"])
    with caplog.at_level(logging.WARNING):
        out = CausalVideoLoader.execute(model_name="wan_t2v.safetensors", weight_dtype="fp32")
    assert "NO (not trained for this)" in out.args[1]
    assert any("non-causal Wan checkpoint" in r.message for r in caplog.records)
    plan = _plan(out.args[0])  # it still runs
    assert plan.num_blocks == 2


def test_frame_wise_checkpoint_is_detected(files):
    from tempo_pack.nodes.wan_models import load_causal_model

    model = load_causal_model(files["framewise"], "fp32")[0]
    plan = _plan(model, length=9)
    assert plan.spec.frames_per_block == 1 and plan.num_blocks == 3


def test_interrupt_frees_the_cache(chunkwise, monkeypatch):
    """A stop between blocks (an exception from the callback) ends the stream and releases the cache."""
    import gc
    import weakref

    from tempo_pack.models import kv_cache

    plan = _plan(chunkwise, length=33)
    made = []
    original = kv_cache.RollingKVCache.__init__

    def spy(self, *a, **k):
        original(self, *a, **k)
        made.append(weakref.ref(self))

    class Stop(Exception):
        pass

    def stop_at_block_2(block, step):
        if block == 2 and step == 0:
            raise Stop()

    monkeypatch.setattr(kv_cache.RollingKVCache, "__init__", spy)
    blocks = []
    with pytest.raises(Stop):
        for kind, latent in plan.blocks(stop_at_block_2):
            blocks.append(latent)
    assert len(blocks) == 2
    gc.collect()
    cache = made[0]()
    assert cache is None or cache.k is None


def test_image_to_video_variant_matches_comfyui(comfy):
    """Wan 2.1 I2V shapes (36 input channels, CLIP image tokens through img_emb and k_img/v_img)."""
    import comfy.ldm.wan.model as wan
    import comfy.ops

    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.models.causal_wan import CausalWanModel, config_from_state_dict

    cfg = dict(factory.WAN_TINY, in_dim=36)
    ref = wan.WanModel(model_type="i2v", patch_size=(1, 2, 2), operations=comfy.ops.disable_weight_init, **cfg)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.05)
    sd = ref.state_dict()
    assert config_from_state_dict(sd)["model_type"] == "i2v"
    ours = CausalWanModel(**config_from_state_dict(sd))
    ours.load_state_dict(sd, strict=True)
    g = torch.Generator().manual_seed(4)
    x, ctx, clip = torch.randn(1, 36, 2, 8, 8, generator=g), torch.randn(1, 12, 4096, generator=g), \
        torch.randn(1, 257, 1280, generator=g)
    t = torch.tensor([600.0])
    with torch.no_grad():
        torch.testing.assert_close(ours(x, t, ctx, clip_fea=clip), ref(x, t, ctx, clip_fea=clip), rtol=1e-4, atol=1e-4)


def test_fp8_weight_storage_runs_and_stays_close(files):
    """fp8 storage: weights kept in 8 bits, computed in the activations' dtype by comfy.ops."""
    from tempo_pack.nodes.wan_models import load_causal_model

    full = load_causal_model(files["safetensors"], "fp32")[0]
    fp8 = load_causal_model(files["safetensors"], "fp8_e4m3fn (storage)")[0]
    assert fp8.model.diffusion_model.blocks[0].self_attn.q.weight.dtype == torch.float8_e4m3fn
    x, ctx = _inputs()
    t = torch.tensor([800.0])
    with torch.no_grad():
        a = full.model.diffusion_model(x, t, ctx)
        b = fp8.model.diffusion_model(x, t, ctx)
    assert torch.isfinite(b).all()
    assert (a - b).abs().mean() < 0.1 * a.abs().mean()


def test_fp8_scaled_checkpoint_samples_causally(files):
    """An fp8_scaled repackage (per-tensor scales, 'scaled_fp8' marker) loads through ComfyUI's own
    Wan loader and its quantized operations run in the causal sampler, close to the full weights."""
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.wan_models import load_causal_model

    path = factory.write_causal_fp8_scaled(str(files["root"] / "wan_fp8_scaled.safetensors"))
    scaled = load_causal_model(path)[0]
    weight = scaled.model.diffusion_model.blocks[0].self_attn.q.weight  # 0.8: a QuantizedTensor
    assert getattr(weight, "storage_dtype", weight.dtype) == torch.float8_e4m3fn
    full = load_causal_model(files["safetensors"], "fp32")[0]
    a = torch.cat([lat for _, lat in _plan(scaled).blocks()], 2)
    b = torch.cat([lat for _, lat in _plan(full).blocks()], 2)
    assert torch.isfinite(a).all()
    assert (a - b).abs().mean() < 0.1 * b.abs().mean()


def test_gguf_file_through_comfyui_gguf_samples_causally(files, add_model_folder):
    """A Q8_0 GGUF Wan file loaded by ComfyUI-GGUF's own node (its operations dequantize at run
    time) samples in the causal sampler close to the full-precision file."""
    from comfy_helpers import comfyui_gguf

    from tempo_pack.client.local import find_comfyui
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.wan_models import load_causal_model

    gguf_pack = comfyui_gguf(find_comfyui())
    from comfyui_gguf.nodes import UnetLoaderGGUF

    factory.write_wan_gguf(str(files["root"] / "tiny_wan_Q8_0.gguf"))
    add_model_folder("diffusion_models", files["root"])
    model = UnetLoaderGGUF().load_unet("tiny_wan_Q8_0.gguf")[0]
    weight = model.model.diffusion_model.blocks[0].self_attn.q.weight
    assert type(weight).__module__ == gguf_pack.ops.__name__ and weight.tensor_type.name == "Q8_0"
    full = load_causal_model(files["safetensors"], "fp32")[0]
    a = torch.cat([lat for _, lat in _plan(model).blocks()], 2)
    b = torch.cat([lat for _, lat in _plan(full).blocks()], 2)
    assert torch.isfinite(a).all()
    assert (a - b).abs().mean() < 0.02 * b.abs().mean()


def test_lora_from_the_native_loader_reaches_the_causal_sampler(files, tmp_path, add_model_folder):
    """A LoRA applied by ComfyUI's model patcher (LoraLoaderModelOnly) changes the causal video
    exactly as merging it into the weights by hand does."""
    from safetensors.torch import save_file

    import nodes

    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.wan_models import build_wan_model, load_causal_model

    lora = factory.wan_lora_state_dict()
    save_file(lora, str(tmp_path / "tiny_wan_lora.safetensors"))
    add_model_folder("loras", tmp_path)
    base = load_causal_model(files["safetensors"], "fp32")[0]
    patched = nodes.LoraLoaderModelOnly().load_lora_model_only(base, "tiny_wan_lora.safetensors", 0.8)[0]
    merged_sd = factory.causal_wan_state_dict()
    for key in [k for k in lora if k.endswith(".lora_up.weight")]:
        layer = key[len("diffusion_model."):-len(".lora_up.weight")]
        up, down = lora[key], lora[key.replace("lora_up", "lora_down")]
        scale = 0.8 * float(lora[key.replace("lora_up.weight", "alpha")]) / down.shape[0]
        merged_sd[layer + ".weight"] = merged_sd[layer + ".weight"] + scale * (up @ down)
    merged = build_wan_model(merged_sd, "fp32", "merged")
    merged.model_options["tempo_causal"] = base.model_options["tempo_causal"]
    a = torch.cat([lat for _, lat in _plan(patched).blocks()], 2)
    b = torch.cat([lat for _, lat in _plan(merged).blocks()], 2)
    c = torch.cat([lat for _, lat in _plan(base).blocks()], 2)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert (a - c).abs().max() > 1e-3  # the LoRA did change the video


def test_decode_node_returns_every_frame_and_the_latent(files, chunkwise):
    """Tempo Causal Video Decode: IMAGE frames (1 + 4(n - 1) for n latent frames) and the LATENT."""
    import comfy.sd
    import comfy.utils

    from tempo_pack.nodes.causal_video import CausalVideoDecode

    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(files["vae"]))
    plan = _plan(chunkwise, length=21)
    frames, latent = CausalVideoDecode.execute(video=plan, vae=vae).args
    assert frames.shape == (21, 48, 64, 3)
    assert latent["samples"].shape == (1, 16, 6, 6, 8)


def test_saved_conditioning_loads_back_in_order(comfy, tmp_path, add_model_folder):
    from tempo_pack.nodes.common import CONDITIONING_FOLDER
    from tempo_pack.nodes.conditioning import LoadConditioning, SaveConditioning

    add_model_folder(CONDITIONING_FOLDER, tmp_path)
    conds = [[torch.randn(1, 5, 8, generator=torch.Generator().manual_seed(i)), {}] for i in range(11)]
    SaveConditioning.execute(conditioning=conds, name="my-prompt_x.v1")
    assert (tmp_path / "my-prompt_x.v1.safetensors").is_file()
    loaded = LoadConditioning.execute(name="my-prompt_x.v1.safetensors").args[0]
    assert len(loaded) == 11
    for (a, _), (b, _) in zip(conds, loaded):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# -- the authors' window terms, and workflows saved with the old inputs -----------------------------

def test_cache_preset_takes_the_published_window(chunkwise):
    sf = _plan(chunkwise, cache="preset").spec
    assert (sf.sink, sf.window) == (3, 15), "Self Forcing: 21 frames with the block and 3 sinks"
    ll = _plan(chunkwise, cache="preset", schedule="LongLive").spec
    assert (ll.sink, ll.window) == (3, 6), "LongLive: local_attn_size 12, sink_size 3"
    pp = _plan(chunkwise, cache="preset", schedule="Causal Forcing++ 2-step", frames_per_block="auto")
    assert len(pp.spec.first_sigmas) == 4 and len(pp.spec.sigmas) == 2
    assert any("published with 1 frame(s) per block" in line for line in pp.report), \
        "a preset run at another block size says so"


def test_old_rolling_workflow_runs_as_before_and_says_how_to_convert(chunkwise):
    """An editor workflow saved with cache 'rolling', sink_frames 1, window_frames 3: its values arrive
    positionally in sink_size / local_attn_size; an API workflow carries the old names."""
    from tempo_pack.nodes.causal_video import legacy_cache_inputs

    old = _plan(chunkwise, cache="rolling", sink_size=1, local_attn_size=3)
    new = _plan(chunkwise, cache="window", sink_size=1, local_attn_size=1 + 3 + 3)
    assert (old.spec.sink, old.spec.window) == (new.spec.sink, new.spec.window) == (1, 3)
    assert any("cache 'window' with sink_size 1 and local_attn_size 7" in line for line in old.report)
    api = {"5": {"class_type": "TempoCausalVideoSampler", "inputs": {"cache": "rolling", "sink_frames": 2,
                                                                     "window_frames": 9}}}
    assert legacy_cache_inputs(api, "5") == (2, 9)
    assert legacy_cache_inputs({"5": {"inputs": {"cache": "window"}}}, "5") is None
    from_api = _plan(chunkwise, cache="rolling", legacy=(2, 9))
    assert (from_api.spec.sink, from_api.spec.window) == (2, 9)
    with pytest.raises(ValueError, match="come from other nodes; set cache to 'window'"):
        legacy_cache_inputs({"5": {"inputs": {"sink_frames": ["3", 0], "window_frames": 9}}}, "5")


def test_long_prompts_are_cut_at_512_tokens_and_said(chunkwise):
    from tempo_pack.nodes.causal_video import plan_video

    plan = plan_video(chunkwise, [[torch.zeros(1, 600, 4096), {}]], width=64, height=48, length=21, seed=0,
                      schedule="Self Forcing", custom_timesteps="", shift=5.0, frames_per_block="auto", cache="preset",
                      sink_size=3, local_attn_size=21)
    assert any("600 tokens long" in line for line in plan.report)


def test_taehv_decoder_equals_comfyuis_own_where_it_has_one(comfy):
    """ComfyUI 0.8 ships TAEHV (comfy/taesd/taehv.py); ours, built from ComfyUI's ops and streamed in
    blocks, equals it on the same weights. 0.3.64 has none: there the reference check is
    test_taehv_unit's (madebyollin/taehv, with TAEHV_PATH)."""
    taehv = pytest.importorskip("comfy.taesd.taehv", reason="this ComfyUI has no TAEHV of its own (added after 0.3.64)")
    import comfy.ops

    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.models.taehv import TAEHVDecoder

    sd = factory.taehv_state_dict()
    theirs = taehv.TAEHV(latent_channels=16, latent_format=None, show_progress_bar=False)
    assert not [k for k in theirs.load_state_dict(sd, strict=False).missing_keys if k.startswith("decoder.")]
    ours = TAEHVDecoder.from_state_dict(sd, comfy.ops.disable_weight_init)
    x = torch.randn(1, 16, 5, 4, 6, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = theirs.decode(x).clamp(0, 1)
    stream = ours.stream()
    got = torch.cat([stream.decode(x[:, :, a:b]) for a, b in ((0, 2), (2, 5))], 2)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_taehv_files_get_the_latent_space_they_were_made_for(comfy, tmp_path):
    """madebyollin's taew2_1 decodes the diffusion model's latents (Wan21 process_in of the LATENT);
    lightx2v's lighttaew2_1 the LATENT itself, as ComfyUI 0.8's VAE loader treats them."""
    import comfy.latent_formats

    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.wan_models import StreamingTAEHVDecoder

    latent = torch.randn(1, 16, 2, 4, 6, generator=torch.Generator().manual_seed(8))
    for name, feed in (("taew2_1.pth", comfy.latent_formats.Wan21().process_in(latent)), ("lighttaew2_1.pth", latent)):
        dec = StreamingTAEHVDecoder(factory.write_taehv(str(tmp_path / name)))
        expected = dec.model.decode(feed.float())  # [B, 3, T, H, W]
        got = dec.decode(latent)
        torch.testing.assert_close(got, expected.movedim(1, -1).reshape(-1, *expected.shape[-2:], 3))
        dec.close()
    with pytest.raises(ValueError, match="decodes 48-channel latents.*pick taew2_1"):
        StreamingTAEHVDecoder(factory.write_taehv(str(tmp_path / "taew2_2.pth"), latent_channels=48))


def test_taehv_decoders_are_listed_by_their_weights_so_a_renamed_file_still_decodes(comfy, tmp_path, add_model_folder):
    """The decoder list reads each vae_approx file's weights (ComfyUI's own VAE loader tells TAEHV files
    apart the same way, comfy/sd.py 0.27 decoder.22.bias): a renamed taew2_1 is listed and decodes, an
    image taesd file and a Wan 2.2 (48-channel) one are not listed. A name that does not say which Wan
    file it is decodes as ComfyUI reads it (the LATENT as it is)."""
    import torch.nn

    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.wan_models import StreamingTAEHVDecoder, taehv_files

    folder = tmp_path / "vae_approx"
    factory.write_taehv(str(folder / "my_fast_decoder.pth"))
    factory.write_taehv(str(folder / "taew2_1.safetensors"))
    factory.write_taehv(str(folder / "taew2_2.pth"), latent_channels=48)
    torch.save({"decoder.1.weight": torch.zeros(64, 4, 3, 3)}, folder / "taesd_decoder.pth")
    add_model_folder("vae_approx", str(folder))
    listed = taehv_files()
    assert "my_fast_decoder.pth" in listed and "taew2_1.safetensors" in listed
    assert "taew2_2.pth" not in listed and "taesd_decoder.pth" not in listed
    latent = torch.randn(1, 16, 2, 4, 6, generator=torch.Generator().manual_seed(8))
    dec = StreamingTAEHVDecoder(str(folder / "my_fast_decoder.pth"))
    want = dec.model.decode(latent)
    torch.testing.assert_close(dec.decode(latent), want.movedim(1, -1).reshape(-1, *want.shape[-2:], 3))
    dec.close()
