"""Few-step Wan releases (rCM / TurboDiffusion, lightx2v, Wan 2.2 Lightning, FastWan, CausVid 14B) on
ComfyUI's own Wan model, set by Tempo One-Step Preset and sampled by Tempo One-Step Generate and
Tempo Two-Expert Generate: each equals its authors' sampling loop, written out below from their code
(the schedule by their formula, the flow prediction x0 = x - sigma v, the start noise, the update
between steps, the expert switch), on tiny random weights and the same noise. The files: rCM's
``net.`` .pt loads, TurboDiffusion's SLA and int8 files and AAD-1 are refused with the way out."""

import math

import pytest
import torch

pytestmark = pytest.mark.comfy

LATENT = (1, 16, 3, 4, 6)
SEED = 7


@pytest.fixture(scope="module")
def wan(comfy, tmp_path_factory):
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.onestep_video import load_onestep_video

    root = tmp_path_factory.mktemp("fewstep")
    high, _ = load_onestep_video(factory.write_rcm_pt(str(root / "rCM_Wan2.1_T2V_1.3B_480p.pt"), seed=19), "fp32")
    low, _ = load_onestep_video(factory.write_rcm_pt(str(root / "low.pt"), seed=23, wrapped=True), "fp32")
    return {"high": high, "low": low, "root": root}


def _ctx():
    return torch.randn(1, 12, 4096, generator=torch.Generator().manual_seed(2))


def preset(model, name, **kw):
    from tempo_pack.nodes.onestep_preset import OneStepPreset

    return OneStepPreset.execute(model=model, preset=name, **kw).args[0]


def shift(u, s):
    return s * u / (1 + (s - 1) * u)


def authors_sigmas(name, steps):
    """Each release's schedule by its own formula (not the pack's code)."""
    trig = lambda t: math.sin(t) / (math.sin(t) + math.cos(t))  # rcm wan2pt1_t2v_rcm_infer.py:154
    if name in ("rCM", "rCM Wan 2.2 I2V"):
        sigma_max = 80.0 if name == "rCM" else 200.0
        return [trig(t) for t in [math.atan(sigma_max), 1.5, 1.4, 1.0][:steps]]
    if name.startswith(("lightx2v", "Wan2.2-Lightning")):  # linspace(1000, 0, 5)[:-1], shift 5
        return [shift(1 - k / 4, 5.0) for k in range(4)]
    if name == "FastWan":  # the nearest timestep on the shift-8 grid of 1000
        grid = [shift(i / 1000, 8.0) for i in range(1000, 0, -1)]
        return [min(grid, key=lambda g: abs(g * 1000 - t)) for t in (1000, 757, 522)]
    if name == "CausVid 14B (lightx2v)":
        return [shift(t / 1000, 8.0) for t in (999, 934, 862, 756, 603, 410, 250, 140, 74)]
    raise KeyError(name)


def authors_loop(nets, name, steps, update, switch=lambda i, s: True):
    """The authors' loop: x = sigma_0 eps; v = net(x, 1000 sigma); x0 = x - sigma v; then
    fresh: (1 - sigma') x0 + sigma' eps' (rCM :166-171, lightx2v's step-distill scheduler, FastVideo's
    DMD stage), deterministic: x + (sigma' - sigma) v (Lightning, lightx2v Wan 2.2). ``switch(i, sigma)``
    is True while the high-noise expert runs. The noise: ComfyUI's start noise for the seed, then the
    pack's per-image stream (the only difference: where the Gaussian numbers come from)."""
    import comfy.sample

    from tempo_pack.samplers.onestep import batch_generators

    sig = authors_sigmas(name, steps) + [0.0]
    eps = comfy.sample.prepare_noise(torch.zeros(LATENT), SEED)
    stream = batch_generators(SEED, [0])[0]
    x = sig[0] * eps
    for i in range(len(sig) - 1):
        s, s_next = sig[i], sig[i + 1]
        net = nets[0] if switch(i, s) else nets[1]
        with torch.no_grad():
            v = net.model.diffusion_model(x, torch.tensor([1000.0 * s]), _ctx())
        x0 = x - s * v
        if s_next == 0:
            x = x0
        elif update == "fresh":
            x = (1 - s_next) * x0 + s_next * torch.randn(x.shape, generator=stream, dtype=torch.float32)
        else:
            x = x + (s_next - s) * v
    return x


def ours(model, steps, low=None, **kw):
    from tempo_pack.nodes.onestep import generate

    out = generate(model, [[_ctx(), {}]], None, {"samples": torch.zeros(LATENT)}, SEED, steps, 1.0, 1.0,
                   model_low=low, **kw)
    return model.model.process_latent_in(out["samples"])


@pytest.mark.parametrize("name,steps,update", [("rCM", 1, "fresh"), ("rCM", 2, "fresh"), ("rCM", 4, "fresh"),
                                               ("lightx2v Wan 2.1", 4, "fresh"), ("FastWan", 3, "fresh"),
                                               ("CausVid 14B (lightx2v)", 9, "fresh")])
def test_single_model_presets_equal_the_authors_loop(wan, name, steps, update):
    model = preset(wan["high"], name)
    torch.testing.assert_close(ours(model, steps), authors_loop([model], name, steps, update), rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("name,steps,update,high_steps", [
    ("Wan2.2-Lightning T2V", 4, "deterministic", lambda i, s: 1000 * s >= 875),   # text2video.py:200-205
    ("Wan2.2-Lightning I2V", 4, "deterministic", lambda i, s: 1000 * s >= 900),
    ("lightx2v Wan 2.2", 4, "deterministic", lambda i, s: i < 2),                  # wan_distill_runner.py:179
    ("rCM Wan 2.2 I2V", 4, "fresh", lambda i, s: not s < 0.9),                     # wan2pt2_i2v_rcm_infer.py:194
    ("rCM Wan 2.2 I2V", 3, "fresh", lambda i, s: not s < 0.9),
])
def test_two_expert_presets_equal_the_authors_loop_with_its_switch(wan, name, steps, update, high_steps):
    from tempo_pack.nodes.onestep import TwoExpertGenerate

    high, low = preset(wan["high"], name), preset(wan["low"], name)
    expected = authors_loop([high, low], name, steps, update, high_steps)
    out = TwoExpertGenerate.execute(model_high=high, model_low=low, positive=[[_ctx(), {}]],
                                    latent={"samples": torch.zeros(LATENT)}, seed=SEED, steps=steps, cfg=1.0).args[0]
    torch.testing.assert_close(high.model.process_latent_in(out["samples"]), expected, rtol=1e-4, atol=1e-5)
    one_model = authors_loop([high, high], name, steps, update)
    assert not torch.allclose(expected, one_model, atol=1e-4), "the low-noise expert changed nothing"


@pytest.mark.parametrize("renoise", ["fresh", "deterministic"])
def test_the_same_model_as_both_experts_is_one_run(wan, renoise):
    """The split goes on with the noise the first part would have drawn next: no repeated draws."""
    model = preset(wan["high"], "rCM Wan 2.2 I2V")
    torch.testing.assert_close(ours(model, 4, low=model, renoise=renoise), ours(model, 4, renoise=renoise),
                               rtol=1e-5, atol=1e-6)


def test_renoise_on_generate_overrides_the_preset(wan):
    model = preset(wan["high"], "lightx2v Wan 2.1")
    torch.testing.assert_close(ours(model, 4, renoise="deterministic"),
                               authors_loop([model], "lightx2v Wan 2.1", 4, "deterministic"), rtol=1e-4, atol=1e-5)


def test_an_explicit_sigma_list_is_sampled_exactly(wan):
    from tempo_pack.nodes.onestep import onestep_sigmas

    model = preset(wan["high"], "rCM", sigmas="0.9917, 0.9338, 0.8529, 0.609")
    assert onestep_sigmas(model, 4, 1.0).tolist() == pytest.approx([0.9917, 0.9338, 0.8529, 0.609, 0.0], abs=1e-6)
    with pytest.raises(ValueError, match="published for 4 step"):
        onestep_sigmas(model, 3, 1.0)


@pytest.mark.parametrize("text,message", [("1.0, 0.5, 0.7", "must decrease strictly"), ("1.5, 0.5", "outside \\(0, 1\\]"),
                                          ("1.0, 0", "outside \\(0, 1\\]"), ("1.0, fast", "not numbers"),
                                          (", ".join(str(1 - i / 100) for i in range(40)), "at most 16"),
                                          ("nan", "outside")])
def test_a_bad_sigma_list_is_refused(wan, text, message):
    with pytest.raises(ValueError, match=message):
        preset(wan["high"], "rCM", sigmas=text)


def test_a_step_count_the_release_was_not_published_for(wan):
    model = preset(wan["high"], "Wan2.2-Lightning T2V")
    with pytest.raises(ValueError, match="published for 4 step\\(s\\), not 2"):
        ours(model, 2)


def test_an_expert_pair_that_does_not_match(wan, tmp_path):
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.onestep_video import load_onestep_video

    other = factory.causal_wan_state_dict(5, num_layers=3)
    factory.save_safetensors(other, str(tmp_path / "three_layers.safetensors"), {}, torch.float32)
    odd, _ = load_onestep_video(str(tmp_path / "three_layers.safetensors"), "fp32")
    with pytest.raises(ValueError, match="the high-noise and low-noise models differ"):
        two(preset(wan["high"], "lightx2v Wan 2.2"), preset(odd, "lightx2v Wan 2.2"))
    with pytest.raises(ValueError, match="set both to the same preset"):
        two(preset(wan["high"], "lightx2v Wan 2.2"), preset(wan["low"], "Wan2.2-Lightning T2V"))


def two(high, low, steps=4, **kw):
    from tempo_pack.nodes.onestep import TwoExpertGenerate

    return TwoExpertGenerate.execute(model_high=high, model_low=low, positive=[[_ctx(), {}]],
                                     latent={"samples": torch.zeros(LATENT)}, seed=SEED, steps=steps, cfg=1.0, **kw)


def test_the_same_expert_twice_is_refused(wan, tmp_path):
    """One file in both inputs (the same MODEL, or the same file loaded twice): said, not run."""
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.onestep_video import load_onestep_video

    high = preset(wan["high"], "lightx2v Wan 2.2")
    again, _ = load_onestep_video(factory.write_rcm_pt(str(tmp_path / "again.pt"), seed=19), "fp32")
    for low in (high, high.clone(), preset(again, "lightx2v Wan 2.2")):
        with pytest.raises(ValueError, match="model_high and model_low are the same model \\(the same weights\\); "
                                             "connect the high_noise file to model_high and the low_noise file"):
            two(high, low)


def test_a_causal_model_as_an_expert_is_refused(wan):
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.wan_models import load_causal_model

    causal = load_causal_model(factory.write_causal_safetensors(str(wan["root"] / "sf.safetensors")), "fp32")[0]
    with pytest.raises(ValueError, match="model_low is a causal \\(block-by-block\\) Wan 2.1 model; it makes video "
                                         "with Tempo Causal Video Sampler"):
        two(preset(wan["high"], "lightx2v Wan 2.2"), causal)


def test_swapped_experts_are_named_by_their_files(wan, tmp_path):
    """Where ComfyUI records the file a MODEL came from (0.23 on), the high_noise file in model_low is said."""
    import nodes

    from comfy_helpers import model_folder
    from tempo_pack.factory import checkpoints as factory

    names = {}
    for role, seed in (("high", 19), ("low", 23)):
        names[role] = f"wan2.2_t2v_{role}_noise_14B_fp16.safetensors"
        factory.save_safetensors(factory.causal_wan_state_dict(seed), str(tmp_path / names[role]), {}, torch.float32)
    with model_folder("diffusion_models", tmp_path):
        high, low = (nodes.UNETLoader().load_unet(names[r], "default")[0] for r in ("high", "low"))
    if not hasattr(high, "cached_patcher_init"):
        pytest.skip("this ComfyUI (before 0.23) does not record the file a MODEL came from")
    high, low = preset(high, "lightx2v Wan 2.2"), preset(low, "lightx2v Wan 2.2")
    with pytest.raises(ValueError, match=f"the experts look swapped: model_high is {names['low']} and model_low is "
                                         f"{names['high']}"):
        two(low, high)
    assert two(high, low).args[0]["samples"].shape == LATENT


@pytest.mark.parametrize("boundary,message", [(100.0, "expert_boundary 100 with expert_rule step is how many of the "
                                                      "4 steps run on the high-noise model; use a whole number from 0 "
                                                      "to 4"),
                                              (1.5, "expert_boundary 1.5 with expert_rule step")])
def test_a_step_boundary_past_the_steps_is_refused_as_queued_and_when_run(wan, boundary, message):
    from tempo_pack.nodes.onestep import TwoExpertGenerate

    said = TwoExpertGenerate.validate_inputs(steps=4, expert_rule="step", expert_boundary=boundary)
    assert isinstance(said, str) and said.startswith(message), said
    assert TwoExpertGenerate.validate_inputs(steps=4, expert_rule="step", expert_boundary=2.0) is True
    assert TwoExpertGenerate.validate_inputs(steps=4, expert_rule="timestep", expert_boundary=900.0) is True
    name = "lightx2v Wan 2.2"
    with pytest.raises(ValueError, match=message):
        two(preset(wan["high"], name), preset(wan["low"], name), expert_rule="step", expert_boundary=boundary)


def test_a_preset_for_another_base(wan, tmp_path):
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.unet_models import load_image_model

    sd_model = load_image_model(factory.write_unet_file(str(tmp_path / "sd15_unet.safetensors")), "fp32")[0]
    with pytest.raises(ValueError, match="rCM preset is published for the Wan 2.1 architecture.*this MODEL is SD 1.5"):
        preset(sd_model, "rCM")
    with pytest.raises(ValueError, match="the DMD2 preset is published for SDXL and SD 1.5 models, and this model is "
                                         "the Wan 2.1 architecture"):
        preset(wan["high"], "DMD2")


def test_rcm_pt_loads_as_the_same_network(wan, tmp_path):
    """net. prefix, bf16, the Linear patch embedding and the checkpoint wrapper: the same weights."""
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.loaders.wan import read_wan_checkpoint

    sd, _ = read_wan_checkpoint(factory.write_rcm_pt(str(tmp_path / "r.pt"), seed=23, wrapped=True))
    ref = factory.causal_wan_state_dict(23)
    assert set(sd) == set(ref)
    for k in ref:
        torch.testing.assert_close(sd[k].float(), ref[k].to(torch.bfloat16).float())


@pytest.mark.parametrize("quant,message", [(True, "int8 '-quant' file"), (False, "SLA sparse attention")])
def test_turbodiffusion_files_are_refused_with_the_file_to_use(wan, tmp_path, quant, message):
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.onestep_video import load_onestep_video

    path = factory.write_turbodiffusion_pth(str(tmp_path / ("TurboWan2.1-T2V-1.3B-480P" + ("-quant" if quant else "")
                                                             + ".pth")), quant=quant)
    with pytest.raises(ValueError, match=f"{message}.*rCM_Wan2.1_T2V_1.3B_480p.pt"):
        load_onestep_video(path, "fp32")


def test_aad1_is_refused_with_its_reason(wan, tmp_path):
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.wan_models import load_causal_model

    path = factory.write_causal_safetensors(str(tmp_path / "AAD-1_14b_i2v_1step.safetensors"))
    with pytest.raises(ValueError, match="AAD-1.*no inference code or settings"):
        load_causal_model(path)


def test_the_preset_node_says_what_it_set(wan):
    from tempo_pack.nodes.onestep_preset import OneStepPreset

    info = OneStepPreset.execute(model=wan["high"], preset="Wan2.2-Lightning I2V").args[1]
    assert "4 steps at sigma 1, 0.9375, 0.8333, 0.625" in info and "steps at t >= 900 on the high-noise one" in info
    assert "Wan 2.2 A14B expert" in info


def test_wan22_5b_is_named_as_such_and_takes_only_its_presets(wan, tmp_path):
    """ComfyUI's detection (48-channel latent: WAN22_T2V) decides; the info says Wan 2.2 TI2V 5B, not 'Wan 2.1
    image-to-video'; FastWan is published for it, the A14B presets are not."""
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.onestep_video import load_onestep_video

    path = factory.save_safetensors(factory.causal_wan_state_dict(5, in_dim=48, out_dim=48),
                                    str(tmp_path / "wan22_ti2v_5b.safetensors"), {}, torch.float32)
    model, info = load_onestep_video(path, "fp32")
    assert "Wan 2.2 TI2V 5B" in info and "2.1" not in info.split("on ", 1)[1]
    assert "FastWan" in preset_info(model, "FastWan")
    with pytest.raises(ValueError, match="this MODEL is Wan 2.2 TI2V 5B"):
        preset(model, "Wan2.2-Lightning T2V")


def preset_info(model, name):
    from tempo_pack.nodes.onestep_preset import OneStepPreset

    return OneStepPreset.execute(model=model, preset=name).args[1]


def test_a_file_can_carry_its_preset_and_sigmas(wan, tmp_path):
    """tempo.preset / tempo.sigmas in a file's metadata, read by Tempo One-Step Video Loader; a bad list
    in a file is refused naming the file."""
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.onestep import onestep_sigmas
    from tempo_pack.nodes.onestep_video import load_onestep_video

    sd = factory.causal_wan_state_dict(5)
    good = factory.save_safetensors(sd, str(tmp_path / "rcm_720p.safetensors"),
                                    {"tempo.preset": "rCM", "tempo.sigmas": "0.9917, 0.9338, 0.6090"}, torch.float32)
    model, info = load_onestep_video(good, "fp32")
    assert onestep_sigmas(model, 3, 1.0).tolist() == pytest.approx([0.9917, 0.9338, 0.609, 0.0], abs=1e-6)
    assert "rCM: 3 steps at sigma 0.9917, 0.9338, 0.609; update fresh" in info and "[file metadata]" in info
    bad = factory.save_safetensors(sd, str(tmp_path / "bad.safetensors"), {"tempo.sigmas": "0.5, 0.9"}, torch.float32)
    with pytest.raises(ValueError, match="bad.safetensors: its metadata: .*must decrease strictly"):
        load_onestep_video(bad, "fp32")


def test_the_expert_rule_input_overrides_the_preset_switch(wan):
    """expert_rule 'step' with boundary 1: only the first step on the high-noise expert."""
    from tempo_pack.nodes.onestep import TwoExpertGenerate

    name = "Wan2.2-Lightning T2V"
    high, low = preset(wan["high"], name), preset(wan["low"], name)
    expected = authors_loop([high, low], name, 4, "deterministic", lambda i, s: i < 1)
    out = TwoExpertGenerate.execute(model_high=high, model_low=low, positive=[[_ctx(), {}]],
                                    latent={"samples": torch.zeros(LATENT)}, seed=SEED, steps=4, cfg=1.0,
                                    expert_rule="step", expert_boundary=1.0).args[0]
    torch.testing.assert_close(high.model.process_latent_in(out["samples"]), expected, rtol=1e-4, atol=1e-5)
