"""The few-step Wan presets against the authors' own scheduler classes, run on the CPU with ComfyUI's
Wan model as the network and the same noise: Wan 2.2 Lightning's EulerScheduler
(ModelTC/Wan2.2-Lightning@92efeb4 wan/utils/fm_solvers_euler.py, driven as wan/text2video.py:320-385
drives it, the expert chosen by t >= boundary) and lightx2v's WanStepDistillScheduler /
Wan22StepDistillScheduler (ModelTC/LightX2V@f8aee98 lightx2v/models/schedulers/wan/step_distill/
scheduler.py, the expert by step_index < boundary_step_index as runners/wan/wan_distill_runner.py:179).

LIGHTNING_PATH / LIGHTX2V_PATH name checkouts of those repositories; without them these tests skip (the
suite cannot fetch them) and the loops written out from the same code are tested in
test_wan_fewstep_comfy."""

import importlib.util
import os
import sys
import types

import pytest
import torch

from test_wan_fewstep_comfy import LATENT, SEED, _ctx, preset, wan  # noqa: F401  (the fixture)

pytestmark = pytest.mark.comfy

LIGHTNING = os.environ.get("LIGHTNING_PATH", "")
LIGHTX2V = os.environ.get("LIGHTX2V_PATH", "")
EULER = os.path.join(LIGHTNING, "wan", "utils", "fm_solvers_euler.py")
STEP_DISTILL = os.path.join(LIGHTX2V, "lightx2v", "models", "schedulers", "wan", "step_distill", "scheduler.py")


def _module(path, name, stubs=None):
    saved = {k: sys.modules.get(k) for k in (stubs or {})}
    sys.modules.update(stubs or {})
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _stub(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    return m


def _noise():
    import comfy.sample

    return comfy.sample.prepare_noise(torch.zeros(LATENT), SEED)  # sigma 1: the start is the noise itself


def _v(model, x, t):
    with torch.no_grad():
        return model.model.diffusion_model(x, torch.as_tensor(t, dtype=torch.float32).reshape(1), _ctx())


def _two_experts(high, low, steps):
    from tempo_pack.nodes.onestep import TwoExpertGenerate

    out = TwoExpertGenerate.execute(model_high=high, model_low=low, positive=[[_ctx(), {}]],
                                    latent={"samples": torch.zeros(LATENT)}, seed=SEED, steps=steps, cfg=1.0).args[0]
    return high.model.process_latent_in(out["samples"])


@pytest.mark.skipif(not os.path.isfile(EULER), reason="LIGHTNING_PATH does not name a Wan2.2-Lightning checkout "
                                                      "(wan/utils/fm_solvers_euler.py): the cross-check against its "
                                                      "EulerScheduler is skipped; the loop written out is tested in "
                                                      "test_wan_fewstep_comfy")
@pytest.mark.parametrize("name,boundary", [("Wan2.2-Lightning T2V", 0.875), ("Wan2.2-Lightning I2V", 0.900)])
def test_lightning_equals_its_euler_scheduler_and_switch(wan, name, boundary):
    solver = _module(EULER, "lightning_fm_solvers_euler")
    high, low = preset(wan["high"], name), preset(wan["low"], name)
    scheduler = solver.EulerScheduler(num_train_timesteps=1000, shift=5.0, device="cpu")
    scheduler.set_timesteps(4, device="cpu")
    latents = _noise()
    for t in scheduler.timesteps[:-1].clone():
        model = high if t.item() >= boundary * 1000 else low
        latents = scheduler.step(_v(model, latents, t), t, latents, return_dict=False)
    torch.testing.assert_close(_two_experts(high, low, 4), latents, rtol=1e-4, atol=1e-5)


def _lightx2v():
    class WanScheduler:  # the base class: only what the step-distill schedulers use
        def __init__(self, config):
            self.config = config

    return _module(STEP_DISTILL, "lightx2v_step_distill", {
        "lightx2v": _stub("lightx2v"), "lightx2v.models": _stub("lightx2v.models"),
        "lightx2v.models.schedulers": _stub("lightx2v.models.schedulers"),
        "lightx2v.models.schedulers.wan": _stub("lightx2v.models.schedulers.wan"),
        "lightx2v.models.schedulers.wan.scheduler": _stub("lightx2v.models.schedulers.wan.scheduler",
                                                          WanScheduler=WanScheduler),
        "lightx2v_platform": _stub("lightx2v_platform"), "lightx2v_platform.base": _stub("lightx2v_platform.base"),
        "lightx2v_platform.base.global_var": _stub("lightx2v_platform.base.global_var", AI_DEVICE="cpu")})


def _run_lightx2v(scheduler, models, boundary_step_index=None):
    scheduler.set_denoising_timesteps(device="cpu")
    latents = _noise()
    for i in range(scheduler.infer_steps):
        model = models[0] if boundary_step_index is None or i < boundary_step_index else models[1]
        scheduler.step_index, scheduler.latents = i, latents
        scheduler.noise_pred = _v(model, latents, scheduler.timesteps[i])
        scheduler.step_post()
        latents = scheduler.latents
    return latents


@pytest.mark.skipif(not os.path.isfile(STEP_DISTILL), reason="LIGHTX2V_PATH does not name a LightX2V checkout "
                                                             "(lightx2v/models/schedulers/wan/step_distill/scheduler.py): "
                                                             "the cross-check against its schedulers is skipped; the "
                                                             "loop written out is tested in test_wan_fewstep_comfy")
def test_lightx2v_wan22_equals_its_scheduler_and_step_index_switch(wan):
    module = _lightx2v()
    high, low = preset(wan["high"], "lightx2v Wan 2.2"), preset(wan["low"], "lightx2v Wan 2.2")
    config = {"denoising_step_list": [1000, 750, 500, 250], "sample_shift": 5.0, "boundary_step_index": 2}
    expected = _run_lightx2v(module.Wan22StepDistillScheduler(config), [high, low], 2)
    torch.testing.assert_close(_two_experts(high, low, 4), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not os.path.isfile(STEP_DISTILL), reason="LIGHTX2V_PATH does not name a LightX2V checkout: the "
                                                             "cross-check against its schedulers is skipped")
def test_lightx2v_wan21_schedule_equals_its_scheduler(wan):
    """Its current code steps by Euler (the models were released with fresh noise, the preset's default):
    with renoise deterministic the pack equals WanStepDistillScheduler."""
    from tempo_pack.nodes.onestep import generate

    module = _lightx2v()
    model = preset(wan["high"], "lightx2v Wan 2.1")
    expected = _run_lightx2v(module.WanStepDistillScheduler({"denoising_step_list": [1000, 750, 500, 250],
                                                             "sample_shift": 5.0}), [model])
    out = generate(model, [[_ctx(), {}]], None, {"samples": torch.zeros(LATENT)}, SEED, 4, 1.0, 1.0, "deterministic")
    torch.testing.assert_close(model.model.process_latent_in(out["samples"]), expected, rtol=1e-4, atol=1e-5)
