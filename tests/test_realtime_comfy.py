"""Tempo Causal Speed inside real ComfyUI: each option over ComfyUI's own Wan model makes the video the
defaults make (in-place cache writes, a named attention kernel, compiled layers, decode on a worker),
bad choices are refused by name, a failing decode on the worker stops the run cleanly, and
fp8_e4m3fn_fast loads as ComfyUI's Load Diffusion Model loads it. Tiny Wan 2.1 shapes, fp32."""

import pytest
import torch

pytestmark = pytest.mark.comfy


@pytest.fixture(scope="module")
def parts(comfy, tmp_path_factory):
    import comfy.sd
    import comfy.utils

    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.wan_models import load_causal_model

    root = tmp_path_factory.mktemp("speed")
    path = factory.write_causal_safetensors(str(root / "repack.safetensors"))
    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(factory.write_wan_vae(str(root / "vae.safetensors"))))
    return {"model": load_causal_model(path, "fp32")[0], "vae": vae, "path": path}


def _plan(model, **over):
    from tempo_pack.nodes.causal_video import plan_video

    args = dict(width=64, height=48, length=21, seed=0, schedule="Self Forcing", custom_timesteps="",
                shift=5.0, frames_per_block="auto", cache="window", sink_size=1, local_attn_size=7)
    args.update(over)
    return plan_video(model, [[torch.zeros(1, 12, 4096), {}]], **args)


def _sped(model, **opts):
    from tempo_pack.nodes.causal_speed import CausalSpeed

    return CausalSpeed.execute(model, **opts).args[0]


def _decode(model, vae):
    from tempo_pack.nodes.causal_video import CausalVideoDecode

    return CausalVideoDecode.execute(video=_plan(model), vae=vae).args


@pytest.mark.parametrize("opts", [dict(in_place_cache=False), dict(attention="sdpa math"), dict(overlap_decode="on"),
                                  dict(compile="layers", overlap_decode="on")],
                         ids=["joined cache", "sdpa math", "decode on a worker", "compiled layers"])
def test_each_speed_option_makes_the_default_video(parts, opts):
    model, vae = parts["model"], parts["vae"]
    frames, latent = _decode(model, vae)
    frames_s, latent_s = _decode(_sped(model, **opts), vae)
    assert frames_s.shape == frames.shape == (21, 48, 64, 3)
    torch.testing.assert_close(latent_s["samples"], latent["samples"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(frames_s, frames, rtol=1e-4, atol=1e-4)


def test_the_speed_node_leaves_the_models_it_was_given_alone(parts):
    from tempo_pack.nodes.causal_speed import SPEED_KEY, speed_of

    model = parts["model"]
    sped = _sped(model, in_place_cache=False, attention="sdpa", compile="off")
    assert SPEED_KEY not in model.model_options and speed_of(model).in_place_cache
    assert speed_of(sped).in_place_cache is False and speed_of(sped).attention == "sdpa"


@pytest.mark.parametrize("opts,message", [(dict(attention="flash9"), "attention 'flash9' is not one of"),
                                          (dict(compile="max"), "compile 'max' is not one of"),
                                          (dict(overlap_decode="maybe"), "overlap_decode 'maybe' is not one of")])
def test_bad_speed_choices_are_named(parts, opts, message):
    from tempo_pack.nodes.common import TempoInputError

    with pytest.raises(TempoInputError, match=message):
        _sped(parts["model"], **opts)


def test_a_kernel_this_machine_lacks_is_refused_before_anything_runs(parts):
    from tempo_pack.errors import TempoError
    from tempo_pack.models import attention

    missing = [n for n in ("xformers", "sage") if n not in attention.available("cpu", torch.float32)]
    if not missing:
        pytest.skip("xformers and SageAttention are both installed here: nothing is missing to refuse")
    with pytest.raises(TempoError, match="not installed"):
        _decode(_sped(parts["model"], attention=missing[0]), parts["vae"])


def test_a_decode_failing_on_the_worker_stops_the_run_and_frees_the_cache(parts, monkeypatch):
    from tempo_pack.models import kv_cache
    from tempo_pack.nodes import wan_models

    caches, real_init = [], kv_cache.RollingKVCache.__init__

    def spy(self, *a, **k):
        real_init(self, *a, **k)
        caches.append(self)

    calls = []

    def failing(self, latent, load=True):
        calls.append(load)
        if len(calls) == 2:
            raise RuntimeError("decoder out of memory")
        return torch.zeros(4, 48, 64, 3)

    monkeypatch.setattr(kv_cache.RollingKVCache, "__init__", spy)
    monkeypatch.setattr(wan_models.StreamingWanDecoder, "decode", failing)
    with pytest.raises(RuntimeError, match="decoder out of memory"):
        _decode(_sped(parts["model"], overlap_decode="on"), parts["vae"])
    assert calls[:2] == [False, False]  # on the worker nothing is loaded: the VAE was loaded beside the model
    assert caches and caches[0].k is None


def test_fp8_matmul_weight_dtype_loads_as_comfyuis_own_fast_fp8(parts):
    """fp8_e4m3fn_fast: fp8 weights and ComfyUI's fp8_optimizations (fp8 matmul where the GPU has it;
    on this CPU, fp8 storage computed in the activations' dtype), the video close to fp32's."""
    from tempo_pack.nodes.wan_models import load_causal_model
    from tempo_pack.nodes.common import FP8_MATMUL

    fast = load_causal_model(parts["path"], FP8_MATMUL)[0]
    assert fast.model.diffusion_model.blocks[0].self_attn.q.weight.dtype == torch.float8_e4m3fn
    assert fast.model.model_config.optimizations.get("fp8") is True
    _, a = _decode(parts["model"], parts["vae"])
    _, b = _decode(fast, parts["vae"])
    a, b = a["samples"], b["samples"]
    assert torch.isfinite(b).all() and (a - b).abs().mean() < 0.1 * a.abs().mean()


def test_overlap_auto_is_on_for_a_gpu_with_room_only(parts, monkeypatch):
    import comfy.model_management as mm

    from tempo_pack.nodes.causal_speed import overlap_of

    model = parts["model"]
    monkeypatch.setattr(mm, "vram_state", mm.VRAMState.NORMAL_VRAM)
    assert overlap_of(model, torch.device("cuda")) and not overlap_of(model, torch.device("cpu"))
    monkeypatch.setattr(mm, "vram_state", mm.VRAMState.LOW_VRAM)
    assert not overlap_of(model, torch.device("cuda"))
    assert overlap_of(_sped(model, overlap_decode="on"), torch.device("cpu"))
    assert not overlap_of(_sped(model, overlap_decode="off"), torch.device("cuda"))


def _as_dynamic(monkeypatch, model):
    """This model as ComfyUI 0.16+ hands it over on an NVIDIA GPU with dynamic VRAM (weights streamed per
    layer call): ``is_dynamic()`` true. The rest of ComfyUI's clone(disable_dynamic=True) runs for real."""
    monkeypatch.setattr(type(model), "is_dynamic", lambda self: True, raising=False)


def test_compiling_a_dynamic_vram_model_runs_a_resident_copy_loaded_again_by_tempos_loader(parts, monkeypatch):
    """Compiled layers never trace weights ComfyUI streams in: on a dynamic-VRAM model the Speed node takes
    ComfyUI's own clone(disable_dynamic=True), which reloads the file through the loader's
    cached_patcher_init (0.23+); where a loader registered none, compile is switched off, and said."""
    from tempo_pack.nodes import compat
    from tempo_pack.nodes.causal_speed import CausalSpeed, speed_of

    model = parts["model"]
    if not hasattr(model, "cached_patcher_init"):
        pytest.skip("this ComfyUI has no dynamic VRAM and no reload factory (both from 0.16 / 0.23 on)")
    assert model.cached_patcher_init[1] == (parts["path"], "fp32")
    calls = []
    real = model.cached_patcher_init[0]
    model.cached_patcher_init = (lambda *a, **k: calls.append(k) or real(*a, **k),) + model.cached_patcher_init[1:]
    _as_dynamic(monkeypatch, model)
    out = CausalSpeed.execute(model, compile="layers")
    assert calls == [{"disable_dynamic": True}] and out.args[0].model is not model.model
    assert speed_of(out.args[0]).compile == "layers" and "copy of the model" in out.ui.as_dict()["text"][0]
    bare = model.clone()
    bare.cached_patcher_init = None
    out = CausalSpeed.execute(bare, compile="layers + CUDA graphs")
    assert speed_of(out.args[0]).compile == "off"
    assert "compile is off for this model" in out.ui.as_dict()["text"][0] and "--disable-dynamic-vram" in out.ui.as_dict()["text"][0]
    assert compat.is_dynamic(bare)


def test_core_select_model_device_can_reload_a_model_from_tempos_loader(parts):
    """ComfyUI 0.23's Select Model Device / MultiGPU nodes deep-clone a model through its loader's reload
    factory; a Tempo-loaded causal model keeps its file's causal facts through it."""
    import comfy.model_management

    model = parts["model"]
    if not hasattr(model, "deepclone_multigpu"):
        pytest.skip("ComfyUI before 0.23 has no multi-GPU deep clones")
    clone = model.deepclone_multigpu(new_load_device=comfy.model_management.get_torch_device())
    assert clone.model is not model.model and clone.model_options["tempo_causal"] == model.model_options["tempo_causal"]
    a = [lat for _, lat in _plan(model).blocks()]
    b = [lat for _, lat in _plan(clone).blocks()]
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_a_per_model_attention_override_reaches_the_causal_sampler(parts):
    """An attention patch set on the MODEL (transformer_options' optimized_attention_override, as ComfyUI's
    own Wan reads it) is used by every attention call of the causal sampler, not silently ignored."""
    model = parts["model"].clone()
    seen = []

    def override(func, *args, **kwargs):
        seen.append(func.__name__)
        return func(*args, **kwargs)
    model.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = override
    a = [lat for _, lat in _plan(model).blocks()]
    b = [lat for _, lat in _plan(parts["model"]).blocks()]
    assert seen, "the override was never called"
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_speed_settings_this_device_cannot_apply_are_said(parts):
    from tempo_pack.nodes.causal_speed import CausalSpeed

    out = CausalSpeed.execute(parts["model"], compile="layers + CUDA graphs", overlap_decode="on")
    text = out.ui.as_dict()["text"][0]
    assert "CUDA graphs need a GPU" in text and "shares the cores" in text
    assert CausalSpeed.execute(parts["model"]).ui is None
