"""One-step image sampling inside real ComfyUI equals the published rules and diffusers.

Everything runs in fp32 on the tiny SD 1.5-architecture UNet that the factory writes. The
prediction rules do not depend on the architecture, so every preset is checked on that one
UNet (SDXL-only presets included), applied directly rather than through the loader's base
check.
"""

import os

import pytest
import torch

pytestmark = pytest.mark.comfy

SEED = 7
LATENT = (1, 4, 8, 8)


@pytest.fixture(scope="module")
def tiny(comfy, tmp_path_factory):
    from tempo_pack.factory import checkpoints as factory

    root = tmp_path_factory.mktemp("onestep")
    paths = {
        "checkpoint": factory.write_sd_checkpoint(str(root / "ckpt.safetensors"), "SD15", dtype=torch.float32),
        "unet": factory.write_unet_file(str(root / "unet.safetensors"), dtype=torch.float32),
        "unet_diffusers": factory.write_unet_file(str(root / "unet_diffusers.safetensors"), naming="diffusers",
                                                  dtype=torch.float32),
        "pickle": factory.write_unet_file(str(root / "unet.pt"), dtype=torch.float32),
        "diffusers_folder": factory.write_diffusers_folder(str(root / "pipe"), dtype=torch.float32),
    }
    return paths


@pytest.fixture(scope="module")
def unet_model(tiny):
    from tempo_pack.nodes.unet_models import load_image_model

    model, _, _, base, _ = load_image_model(tiny["unet"], "fp32")
    return model


def _ctx():
    return torch.randn(1, 5, 768, generator=torch.Generator().manual_seed(3))


def test_every_file_format_gives_the_same_unet(tiny):
    from tempo_pack.nodes.unet_models import load_image_model

    x = torch.randn(LATENT, generator=torch.Generator().manual_seed(0))
    outs = {}
    for name, path in tiny.items():
        model, clip, vae, base, _ = load_image_model(path, "fp32")
        assert base == "SD15"
        assert (clip is not None and vae is not None) == (name == "checkpoint"), name
        with torch.no_grad():
            outs[name] = model.model.diffusion_model(x, torch.tensor([399.0]), context=_ctx())
    for name, out in outs.items():
        torch.testing.assert_close(out, outs["unet"], rtol=0, atol=0, msg=name)


def _ours(model, preset, steps=1, strength=1.0, latent=None, renoise="auto", rule="run steps", batch_index=None):
    from tempo_pack.nodes.onestep import apply_preset
    from tempo_pack.nodes.onestep import generate
    from tempo_pack.samplers.onestep import PRESETS

    m = apply_preset(model, PRESETS[preset] if isinstance(preset, str) else preset)
    latent = torch.zeros(LATENT) if latent is None else latent
    cond = [[_ctx().expand(latent.shape[0], -1, -1), {}]]
    samples = {"samples": latent} if batch_index is None else {"samples": latent, "batch_index": batch_index}
    out = generate(m, cond, None, samples, SEED, steps, strength, 1.0, renoise, rule)
    return _latent_in(model, out["samples"])


def _latent_in(model, latent):
    """ComfyUI's LATENT is in VAE units; the network works on latent * 0.18215 (SD 1.x)."""
    return model.model.process_latent_in(latent)


def _noise(latent=None):
    import comfy.sample

    return comfy.sample.prepare_noise(torch.zeros(LATENT) if latent is None else latent, SEED)


def _unet(model):
    def f(x, t):
        with torch.no_grad():
            return model.model.diffusion_model(x, torch.tensor([float(t)]), context=_ctx())
    return f


def _abar(t):
    from onestep_reference import ddpm_alphas_cumprod

    return float(ddpm_alphas_cumprod()[int(t)])


@pytest.mark.parametrize("preset,t,pred,start", [
    ("DMD2", 399, "eps", "pure"), ("Hyper-SD-1step", 800, "eps", "pure"), ("UFOGen", 999, "eps", "pure"),
    ("SwiftBrush", 999, "eps", "pure"), ("SD-Turbo", 999, "eps", "scaled"), ("SDXL-Turbo", 999, "eps", "scaled"),
    ("SDXL-Lightning-1step", 999, "x0", "scaled"),
])
def test_one_step_equals_the_published_rule(unet_model, preset, t, pred, start):
    """x_t from noise (pure, or sqrt(1 - abar) eps for Euler-style pipelines), one network call, x0."""
    from onestep_reference import x0_from_prediction

    eps, ab = _noise(), _abar(t)
    x_t = eps if start == "pure" else (1 - ab) ** 0.5 * eps
    x0 = x0_from_prediction(pred, _unet(unet_model)(x_t, t), x_t, alpha_bar=ab)
    torch.testing.assert_close(_ours(unet_model, preset), x0, rtol=1e-4, atol=1e-5)


def test_img2img_strength_noises_the_image_to_one_timestep(unet_model):
    """DMD2 at strength 0.5: t = 199, x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, one step."""
    from onestep_reference import x0_from_prediction

    image_latent = torch.randn(LATENT, generator=torch.Generator().manual_seed(11))
    eps, ab = _noise(image_latent), _abar(199)
    x_t = ab ** 0.5 * _latent_in(unet_model, image_latent) + (1 - ab) ** 0.5 * eps
    x0 = x0_from_prediction("eps", _unet(unet_model)(x_t, 199), x_t, alpha_bar=ab)
    torch.testing.assert_close(_ours(unet_model, "DMD2", 1, 0.5, image_latent), x0, rtol=1e-4, atol=1e-5)


def test_ufogen_multistep_renoises_with_fresh_noise(unet_model):
    """UFOGen, 4 steps: x0 at t, then x_{t'} = sqrt(abar') x0 + sqrt(1 - abar') eps_fresh (paper, Alg. 2)."""
    from onestep_reference import x0_from_prediction

    unet = _unet(unet_model)
    gen = torch.Generator().manual_seed(SEED + 1)
    ts = [999, 749, 499, 249]
    x = _noise()
    for i, t in enumerate(ts):
        ab = _abar(t)
        x0 = x0_from_prediction("eps", unet(x, t), x, alpha_bar=ab)
        if i + 1 < len(ts):
            ab_next = _abar(ts[i + 1])
            x = ab_next ** 0.5 * x0 + (1 - ab_next) ** 0.5 * torch.randn(LATENT, generator=gen)
    torch.testing.assert_close(_ours(unet_model, "UFOGen", 4), x0, rtol=1e-4, atol=1e-5)


def test_instaflow_euler_rule(unet_model):
    """InstaFlow (RectifiedFlowPipeline): z at t = 1000, z <- z + dt * v at t = 1000, 500, x0 = z."""
    unet = _unet(unet_model)
    z = _noise()
    for t in (1000.0, 500.0):
        z = z + 0.5 * unet(z, t)
    torch.testing.assert_close(_ours(unet_model, "InstaFlow", 2), z, rtol=1e-4, atol=1e-5)


def test_instaflow_one_step_is_z_plus_v(unet_model):
    z = _noise()
    torch.testing.assert_close(_ours(unet_model, "InstaFlow"), z + _unet(unet_model)(z, 1000.0), rtol=1e-4, atol=1e-5)


# -- against diffusers' schedulers, loading the same weights from the diffusers folder -------

@pytest.fixture(scope="module")
def diffusers_unet(tiny):
    diffusers = pytest.importorskip("diffusers", reason="diffusers (dev dependency) is needed for this cross-check")
    unet = diffusers.UNet2DConditionModel.from_pretrained(tiny["diffusers_folder"] + "/unet").float().eval()
    return unet


def _diffusers_loop(unet, scheduler, latents, steps=1, **set_kw):
    scheduler.set_timesteps(steps, **set_kw)
    ctx = _ctx()
    for t in scheduler.timesteps:
        with torch.no_grad():
            inp = scheduler.scale_model_input(latents, t)
            pred = unet(inp, t, encoder_hidden_states=ctx).sample
        out = scheduler.step(pred, t, latents, generator=torch.Generator().manual_seed(0))
        latents = out.prev_sample
    denoised = getattr(out, "denoised", None)
    return denoised if denoised is not None else latents


def test_dmd2_equals_diffusers_lcm_scheduler_at_399(unet_model, diffusers_unet):
    from diffusers import LCMScheduler

    sched = LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    eps = _noise()
    theirs = _diffusers_loop(diffusers_unet, sched, eps * sched.init_noise_sigma, timesteps=[399], steps=None)
    torch.testing.assert_close(_ours(unet_model, "DMD2"), theirs, rtol=1e-4, atol=1e-5)


def test_sd_turbo_one_step_equals_diffusers_euler_trailing(unet_model, diffusers_unet):
    from diffusers import EulerDiscreteScheduler

    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   timestep_spacing="trailing")
    sched.set_timesteps(1)
    eps = _noise()
    theirs = _diffusers_loop(diffusers_unet, sched, eps * sched.init_noise_sigma)
    torch.testing.assert_close(_ours(unet_model, "SD-Turbo"), theirs, rtol=1e-4, atol=1e-5)


def test_sdxl_lightning_equals_diffusers_euler_sample_prediction(unet_model, diffusers_unet):
    from diffusers import EulerDiscreteScheduler

    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   timestep_spacing="trailing", prediction_type="sample")
    sched.set_timesteps(1)
    eps = _noise()
    theirs = _diffusers_loop(diffusers_unet, sched, eps * sched.init_noise_sigma)
    torch.testing.assert_close(_ours(unet_model, "SDXL-Lightning-1step"), theirs, rtol=1e-4, atol=1e-5)


# -- against ComfyUI's own samplers ------------------------------------------------------------

def _native(model, preset, sampler_name, sigmas, latent):
    import comfy.sample
    import comfy.samplers

    from tempo_pack.nodes.onestep import apply_preset
    from tempo_pack.samplers.onestep import PRESETS

    m = apply_preset(model, PRESETS[preset])
    noise = comfy.sample.prepare_noise(latent, SEED)
    out = comfy.sample.sample_custom(m, noise, 1.0, comfy.samplers.sampler_object(sampler_name), sigmas,
                                     [[_ctx(), {}]], [[_ctx(), {}]], latent, seed=SEED)
    return _latent_in(model, out)


def test_deterministic_renoise_equals_comfyui_euler(unet_model):
    """Deterministic multi-step (APT-style) is ComfyUI's Euler sampler on the same sigmas (img2img start)."""
    from tempo_pack.nodes.onestep import apply_preset
    from tempo_pack.nodes.onestep import onestep_sigmas
    from tempo_pack.samplers.onestep import PRESETS

    latent = torch.randn(LATENT, generator=torch.Generator().manual_seed(2))
    sigmas = onestep_sigmas(apply_preset(unet_model, PRESETS["SD-Turbo"]), 3, 0.8)
    native = _native(unet_model, "SD-Turbo", "euler", sigmas, latent)
    ours = _ours(unet_model, "SD-Turbo", 3, 0.8, latent, renoise="deterministic")
    torch.testing.assert_close(ours, native, rtol=1e-4, atol=1e-5)


def test_schedule_node_sigmas_are_the_model_table(unet_model):
    from tempo_pack.nodes.onestep import apply_preset
    from tempo_pack.nodes.onestep import onestep_sigmas
    from onestep_reference import ddpm_sigma
    from tempo_pack.samplers.onestep import PRESETS

    s = onestep_sigmas(apply_preset(unet_model, PRESETS["UFOGen"]), 4, 1.0)
    expected = [ddpm_sigma(t) for t in (999, 749, 499, 249)] + [0.0]
    torch.testing.assert_close(s, torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_sampler_and_sigmas_work_in_native_sampler_custom_advanced(unet_model):
    """Native SamplerCustomAdvanced + CFGGuider + RandomNoise with the Tempo SAMPLER and SIGMAS gives
    the same latent as the Tempo generate node."""
    from comfy_extras import nodes_custom_sampler as ncs

    from tempo_pack.nodes.onestep import apply_preset
    from tempo_pack.nodes.onestep import make_onestep_sampler, onestep_sigmas
    from tempo_pack.samplers.onestep import PRESETS

    m = apply_preset(unet_model, PRESETS["DMD2"])
    cond = [[_ctx(), {}]]

    def call(node_cls, method, **kw):  # V1 and V3 node classes alike
        out = node_cls.execute(**kw) if hasattr(node_cls, "execute") else getattr(node_cls(), method)(**kw)
        return out.args if hasattr(out, "args") else out

    guider = call(ncs.CFGGuider, "get_guider", model=m, positive=cond, negative=cond, cfg=1.0)[0]
    noise = call(ncs.RandomNoise, "get_noise", noise_seed=SEED)[0]
    out = call(ncs.SamplerCustomAdvanced, "sample", noise=noise, guider=guider, sampler=make_onestep_sampler(),
               sigmas=onestep_sigmas(m, 1, 1.0), latent_image={"samples": torch.zeros(LATENT)})[0]
    torch.testing.assert_close(_latent_in(unet_model, out["samples"]), _ours(unet_model, "DMD2"), rtol=1e-5, atol=1e-6)


def test_native_lora_applies_to_a_tempo_model(unet_model, tmp_path):
    """ComfyUI's LoraLoaderModelOnly patches a Tempo MODEL like any other: the one-step result equals the
    same rule with the LoRA delta merged into the weight by hand."""
    import comfy.sd
    import comfy.utils
    from safetensors.torch import save_file

    from tempo_pack.nodes.onestep import apply_preset
    from tempo_pack.samplers.onestep import PRESETS

    key = "input_blocks.1.1.transformer_blocks.0.attn2.to_k"
    weight = unet_model.model.diffusion_model.state_dict()[key + ".weight"]
    g = torch.Generator().manual_seed(8)
    up, down = torch.randn(weight.shape[0], 4, generator=g) * 0.5, torch.randn(4, weight.shape[1], generator=g) * 0.5
    lora = {f"diffusion_model.{key}.lora_up.weight": up, f"diffusion_model.{key}.lora_down.weight": down}
    path = tmp_path / "tiny_lora.safetensors"
    save_file(lora, str(path))
    model = apply_preset(unet_model, PRESETS["DMD2"])
    # what LoraLoaderModelOnly does with the file it finds in models/loras
    patched = comfy.sd.load_lora_for_models(model, None, comfy.utils.load_torch_file(str(path)), 0.7, 0)[0]
    ours = _ours_on(patched)

    merged = unet_model.clone()
    merged.add_object_patch("diffusion_model." + key + ".weight",
                            torch.nn.Parameter(weight + 0.7 * (up @ down), requires_grad=False))
    expected = _ours_on(apply_preset(merged, PRESETS["DMD2"]))
    assert not torch.allclose(ours, _ours(unet_model, "DMD2"), atol=1e-4), "the LoRA changed nothing"
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def _ours_on(model):
    from tempo_pack.nodes.onestep import generate

    out = generate(model, [[_ctx(), {}]], None, {"samples": torch.zeros(LATENT)}, SEED, 1, 1.0, 1.0)
    return model.model.process_latent_in(out["samples"])


def test_every_seed_the_input_allows_works(unet_model):
    """The largest seed (2^64 - 1) with fresh re-noising between steps (it overflowed before)."""
    from tempo_pack.nodes.onestep import apply_preset, generate
    from tempo_pack.samplers.onestep import PRESETS

    m = apply_preset(unet_model, PRESETS["DMD2"])
    for seed in (0xFFFFFFFFFFFFFFFF, 0):
        out = generate(m, [[_ctx(), {}]], None, {"samples": torch.zeros(LATENT)}, seed, 4, 1.0, 1.0)
        assert torch.isfinite(out["samples"]).all()


# -- every published row against the diffusers scheduler its card names -------------------------
# The same tiny weights (the diffusers folder) and the same noise: the start noise is ComfyUI's
# (prepare_noise), the noise between steps comes from one generator seeded as the Tempo sampler
# seeds image 0's stream (seed + 1), drawn by the scheduler's own step in its own order.

def _scheduler(name, **kw):
    import diffusers

    if name == "DDIMScheduler":  # as SD 1.5's and SDXL's scheduler_config.json set it
        kw.update(set_alpha_to_one=False, clip_sample=False)
    return getattr(diffusers, name)(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", **kw)


def _card_loop(unet, sched, latents, step_kw=None, timesteps=None):
    """The denoising loop of diffusers' SD pipelines (scale_model_input, the UNet, scheduler.step), one
    generator across steps; returns what the pipeline decodes (LCM's last step returns its denoised)."""
    ctx, gen = _ctx(), torch.Generator().manual_seed(SEED + 1)
    out = None
    for t in (sched.timesteps if timesteps is None else timesteps):
        with torch.no_grad():
            pred = unet(sched.scale_model_input(latents, t), t, encoder_hidden_states=ctx).sample
        out = sched.step(pred, t, latents, generator=gen, **(step_kw or {}))
        latents = out.prev_sample
    return latents


# (preset, base, steps, scheduler, set_timesteps kwargs, step kwargs, the pipeline's output is VP at t = 0)
CARD_ROWS = [
    ("SD-Turbo", "SD21", 2, "EulerDiscreteScheduler", dict(timestep_spacing="trailing"), {}, False),
    ("SD-Turbo", "SD21", 4, "EulerDiscreteScheduler", dict(timestep_spacing="trailing"), {}, False),
    ("SDXL-Turbo", "SDXL", 1, "EulerAncestralDiscreteScheduler", dict(timestep_spacing="trailing"), {}, False),
    ("SDXL-Turbo", "SDXL", 4, "EulerAncestralDiscreteScheduler", dict(timestep_spacing="trailing"), {}, False),
    ("SDXL-Lightning", "SDXL", 2, "EulerDiscreteScheduler", dict(timestep_spacing="trailing"), {}, False),
    ("SDXL-Lightning", "SDXL", 4, "EulerDiscreteScheduler", dict(timestep_spacing="trailing"), {}, False),
    ("SDXL-Lightning", "SDXL", 8, "EulerDiscreteScheduler", dict(timestep_spacing="trailing"), {}, False),
    ("Hyper-SD-1step", "SDXL", 1, "LCMScheduler", dict(timesteps=[800]), {}, False),
    ("Hyper-SD", "SDXL", 2, "DDIMScheduler", dict(timestep_spacing="trailing"), {}, True),
    ("Hyper-SD", "SD15", 4, "DDIMScheduler", dict(timestep_spacing="trailing"), {}, True),
    ("Hyper-SD", "SDXL", 8, "DDIMScheduler", dict(timestep_spacing="trailing"), {}, True),
    ("Hyper-SD-TCD", "SDXL", 1, "TCDScheduler", {}, dict(eta=1.0), True),
    ("Hyper-SD-TCD", "SD15", 1, "TCDScheduler", {}, dict(eta=1.0), True),
    ("Hyper-SD-TCD", "SDXL", 2, "TCDScheduler", {}, dict(eta=1.0), True),
    ("Hyper-SD-TCD", "SDXL", 3, "TCDScheduler", {}, dict(eta=1.0), True),
    ("Hyper-SD-TCD", "SDXL", 4, "TCDScheduler", {}, dict(eta=1.0), True),
    ("DMD2", "SDXL", 1, "LCMScheduler", dict(timesteps=[399]), {}, False),
    ("DMD2", "SDXL", 4, "LCMScheduler", dict(timesteps=[999, 749, 499, 249]), {}, False),
    ("DMD2", "SD15", 1, "LCMScheduler", dict(timesteps=[999]), {}, False),
    ("LCM", "SD15", 2, "LCMScheduler", {}, {}, False),
    ("LCM", "SDXL", 4, "LCMScheduler", {}, {}, False),
    ("LCM", "SD15", 8, "LCMScheduler", {}, {}, False),
]


@pytest.mark.parametrize("preset,base,steps,scheduler,set_kw,step_kw,vp_t0", CARD_ROWS,
                         ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in CARD_ROWS])
def test_published_row_equals_its_diffusers_scheduler(unet_model, diffusers_unet, preset, base, steps, scheduler,
                                                      set_kw, step_kw, vp_t0):
    from tempo_pack.samplers.onestep import full_strength_timesteps, preset_for

    row = preset_for(preset, base)
    sched = _scheduler(scheduler, **{k: v for k, v in set_kw.items() if k == "timestep_spacing"})
    if "timesteps" in set_kw:
        sched.set_timesteps(timesteps=set_kw["timesteps"])
    else:
        sched.set_timesteps(steps)
    assert [int(t) for t in sched.timesteps] == [int(t) for t in full_strength_timesteps(row, steps)], \
        "the preset's timesteps are the scheduler's"
    theirs = _card_loop(diffusers_unet, sched, _noise() * sched.init_noise_sigma, step_kw)
    ours = _ours(unet_model, row, steps)  # DDIM / TCD end on the table's t = 0, as diffusers' sample there
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("eta,steps", [(0.3, 4), (0.0, 2), (0.5, 8), (0.3, 1), (1.0, 1), (0.7, 3), (1.0, 4)])
def test_tcd_sampler_node_equals_diffusers_tcd_scheduler(unet_model, diffusers_unet, eta, steps):
    """Tempo TCD Sampler in native SamplerCustom, on the TCD preset's SIGMAS, against TCDScheduler.step(eta)."""
    import comfy.sample

    from tempo_pack.nodes.onestep import TCDSampler, apply_preset, onestep_sigmas
    from tempo_pack.samplers.onestep import PRESETS

    sched = _scheduler("TCDScheduler")
    sched.set_timesteps(steps)
    theirs = _card_loop(diffusers_unet, sched, _noise() * sched.init_noise_sigma, dict(eta=eta))
    m = apply_preset(unet_model, PRESETS["Hyper-SD-TCD"])
    sampler = TCDSampler.execute(eta=eta).args[0]
    latent = torch.zeros(LATENT)
    out = comfy.sample.sample_custom(m, comfy.sample.prepare_noise(latent, SEED), 1.0, sampler,
                                     onestep_sigmas(m, steps, 1.0), [[_ctx(), {}]], [[_ctx(), {}]], latent, seed=SEED)
    torch.testing.assert_close(_latent_in(unet_model, out), theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("preset,scheduler,steps,strength", [
    ("SD-Turbo", "EulerDiscreteScheduler", 2, 0.5),   # the SD-Turbo card: one step at t = 499
    ("SDXL-Turbo", "EulerAncestralDiscreteScheduler", 4, 0.5),
    ("LCM", "LCMScheduler", 4, 0.6),                   # the LCM-LoRA card's img2img
])
def test_img2img_with_the_diffusers_rule_equals_the_img2img_pipeline(unet_model, diffusers_unet, preset, scheduler,
                                                                     steps, strength):
    """StableDiffusionImg2ImgPipeline's get_timesteps (the last int(steps * strength) of the schedule) and
    its start (scheduler.add_noise of the image at the first of them)."""
    image = torch.randn(LATENT, generator=torch.Generator().manual_seed(11))
    sched = _scheduler(scheduler, **({} if scheduler == "LCMScheduler" else dict(timestep_spacing="trailing")))
    sched.set_timesteps(steps)
    n = min(int(steps * strength), steps)  # get_timesteps (pipeline_stable_diffusion_img2img.py:724-733)
    begin = steps - n
    timesteps = sched.timesteps[begin:]
    sched.set_begin_index(begin)
    start = sched.add_noise(_latent_in(unet_model, image), _noise(image), timesteps[:1])
    theirs = _card_loop(diffusers_unet, sched, start, timesteps=timesteps)
    ours = _ours(unet_model, preset, steps, strength, image, rule="diffusers")
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    if preset == "SD-Turbo":
        assert [int(t) for t in timesteps] == [499]


def test_an_image_in_a_batch_is_the_same_as_alone(unet_model):
    """Fresh noise between steps is drawn per image by its batch index, as ComfyUI's start noise is: image k
    of a batch equals the latent picked alone at batch_index k (Latent From Batch)."""
    both = _ours(unet_model, "LCM", 4, latent=torch.zeros(2, *LATENT[1:]))
    first = _ours(unet_model, "LCM", 4)
    second = _ours(unet_model, "LCM", 4, latent=torch.zeros(LATENT), batch_index=[1])
    torch.testing.assert_close(both[:1], first, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(both[1:], second, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(both[0], both[1], atol=1e-3), "two images of a batch got the same noise"


def test_unpublished_step_counts_are_refused_with_the_published_ones(unet_model):
    from tempo_pack.errors import TempoError

    with pytest.raises(TempoError, match=r"DMD2 was published for 1, 4 step\(s\), not 2"):
        _ours(unet_model, "DMD2", 2)
    with pytest.raises(TempoError, match=r"SDXL-Lightning was published for 2, 4, 8"):
        _ours(unet_model, "SDXL-Lightning", 1)


def test_custom_preset_start_is_an_input(unet_model):
    """custom with start 'pure' equals the LCM-style pure-noise start, 'scaled' the Euler-style one."""
    from tempo_pack.samplers.onestep import custom_preset

    pure = _ours(unet_model, custom_preset(999, "eps", start="pure"))
    scaled = _ours(unet_model, custom_preset(999, "eps", start="scaled"))
    torch.testing.assert_close(pure, _ours(unet_model, "UFOGen"), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(scaled, _ours(unet_model, "SD-Turbo"), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(pure, scaled, atol=1e-4)


# -- Tempo One-Step Preset: the published rule on any MODEL ---------------------------------------

def test_preset_node_on_a_plain_model_equals_the_loaders_preset(unet_model):
    """A MODEL with no Tempo preset (as ComfyUI's own loaders give it) set to DMD2 samples exactly as the
    Tempo loader's DMD2 row for its base (SD 1.5: t = 999)."""
    from tempo_pack.nodes.onestep import apply_preset, get_preset
    from tempo_pack.nodes.onestep_preset import OneStepPreset
    from tempo_pack.samplers.onestep import preset_for

    assert get_preset(unet_model) is None
    out = OneStepPreset.execute(model=unet_model, preset="DMD2")
    model, info = out.args
    assert info.startswith("DMD2 on SD15: one step at t = 999")
    torch.testing.assert_close(_ours_on(model), _ours_on(apply_preset(unet_model, preset_for("DMD2", "SD15"))),
                               rtol=0, atol=0)


def test_lora_then_preset_node_samples_the_lora_with_the_published_steps(unet_model, tmp_path):
    """Load a base, apply a distillation LoRA with ComfyUI's LoRA loader, then set the LoRA's family: the
    4-step LCM schedule runs on the patched weights (equal to merging the LoRA by hand)."""
    import comfy.sd
    import comfy.utils
    from safetensors.torch import save_file

    from tempo_pack.nodes.onestep_preset import OneStepPreset

    key = "input_blocks.1.1.transformer_blocks.0.attn2.to_k"
    weight = unet_model.model.diffusion_model.state_dict()[key + ".weight"]
    g = torch.Generator().manual_seed(8)
    up, down = torch.randn(weight.shape[0], 4, generator=g) * 0.5, torch.randn(4, weight.shape[1], generator=g) * 0.5
    path = tmp_path / "lcm_lora.safetensors"
    save_file({f"diffusion_model.{key}.lora_up.weight": up, f"diffusion_model.{key}.lora_down.weight": down}, str(path))
    patched = comfy.sd.load_lora_for_models(unet_model, None, comfy.utils.load_torch_file(str(path)), 1.0, 0)[0]
    model = OneStepPreset.execute(model=patched, preset="LCM").args[0]
    merged = unet_model.clone()
    merged.add_object_patch("diffusion_model." + key + ".weight",
                            torch.nn.Parameter(weight + up @ down, requires_grad=False))
    expected = OneStepPreset.execute(model=merged, preset="LCM").args[0]
    ours = _ours_multi(model, 4)
    assert not torch.allclose(ours, _ours_multi(OneStepPreset.execute(model=unet_model, preset="LCM").args[0], 4),
                              atol=1e-4), "the LoRA changed nothing"
    torch.testing.assert_close(ours, _ours_multi(expected, 4), rtol=1e-4, atol=1e-5)


def _ours_multi(model, steps):
    from tempo_pack.nodes.onestep import generate

    out = generate(model, [[_ctx(), {}]], None, {"samples": torch.zeros(LATENT)}, SEED, steps, 1.0, 1.0)
    return model.model.process_latent_in(out["samples"])


@pytest.mark.parametrize("preset,message", [
    ("SDXL-Lightning", "the SDXL-Lightning preset is published for SDXL models, and this model is SD 1.5"),
    ("APT", "the APT preset is for Wan 2.1 video models; this MODEL is SD 1.5"),
    ("SVD", "the SVD preset is for Stable Video Diffusion; this MODEL is SD 1.5"),
    ("nope", "preset 'nope' is not one of"),
])
def test_preset_node_refuses_a_family_not_published_for_the_base(unet_model, preset, message):
    from tempo_pack.nodes.onestep_preset import OneStepPreset

    with pytest.raises(ValueError, match=message):
        OneStepPreset.execute(model=unet_model, preset=preset)


def test_the_preset_node_behind_comfyuis_load_checkpoint_samples_as_tempos_loader(comfy, add_model_folder):
    """Tempo One-Step Preset on a MODEL from ComfyUI's own Load Checkpoint (the demo's SD 1.5 file, which it takes
    as SD 1.5) samples exactly as the same file through Tempo's loader with the same preset."""
    import nodes

    from tempo_pack.demo import run as demo
    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.onestep import generate
    from tempo_pack.nodes.onestep_image import OneStepImageLoader
    from tempo_pack.nodes.onestep_preset import OneStepPreset

    demo.ensure_demo_models(demo.DEMO_MODELS, log=lambda m: None)
    add_model_folder("checkpoints", os.path.join(demo.DEMO_MODELS, "checkpoints"))
    native, clip, _ = nodes.CheckpointLoaderSimple().load_checkpoint(factory.SD15_CKPT)[:3]
    ours = OneStepImageLoader.execute(ckpt_name=factory.SD15_CKPT, preset="Hyper-SD-TCD", weight_dtype="default").args[0]
    preset = OneStepPreset.execute(model=native, preset="Hyper-SD-TCD").args[0]
    cond = clip.encode_from_tokens_scheduled(clip.tokenize("a lighthouse"))
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    for steps in (1, 2):
        a = generate(preset, cond, None, latent, SEED, steps, 1.0, 1.0)["samples"]
        b = generate(ours, cond, None, latent, SEED, steps, 1.0, 1.0)["samples"]
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_the_preset_node_behind_comfyuis_load_diffusion_model_samples_as_tempos_loader(comfy, tmp_path,
                                                                                       add_model_folder):
    """The same with a UNet-only file through ComfyUI's Load Diffusion Model (UNETLoader): DMD2, and LCM at 4 steps."""
    import nodes

    from tempo_pack.factory import checkpoints as factory
    from tempo_pack.nodes.onestep import generate
    from tempo_pack.nodes.onestep_image import OneStepImageLoader
    from tempo_pack.nodes.onestep_preset import OneStepPreset

    sd = factory.unet_state_dict("SD15", factory.SD15_DEMO_UNET, seed=3)  # SD 1.5's width, so ComfyUI detects it
    factory.save_safetensors(sd, str(tmp_path / "dmd2_sd15_unet.safetensors"), {}, torch.float32)
    add_model_folder("diffusion_models", tmp_path)
    add_model_folder("checkpoints", tmp_path)
    native = nodes.UNETLoader().load_unet("dmd2_sd15_unet.safetensors", "default")[0]
    cond = [[_ctx(), {}]]
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    for name, steps in (("DMD2", 1), ("LCM", 4)):
        preset = OneStepPreset.execute(model=native, preset=name).args[0]
        ours = OneStepImageLoader.execute(ckpt_name="dmd2_sd15_unet.safetensors", preset=name,
                                          weight_dtype="default").args[0]
        a = generate(preset, cond, None, latent, SEED, steps, 1.0, 1.0)["samples"]
        b = generate(ours, cond, None, latent, SEED, steps, 1.0, 1.0)["samples"]
        assert a.abs().max() > 0
        torch.testing.assert_close(a, b, rtol=0, atol=0)
