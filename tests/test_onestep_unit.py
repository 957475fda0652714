"""The one-step rules, in plain torch."""

import pytest
import torch

import onestep_reference as ref

from tempo_pack.samplers import onestep as os1


def test_sd_sigma_table_matches_published_value():
    assert ref.ddpm_sigma(999) == pytest.approx(14.6146, abs=1e-3)


@pytest.mark.parametrize("name,steps,strength,expected", [
    ("UFOGen", 1, 1.0, [999]),
    ("UFOGen", 4, 1.0, [999, 749, 499, 249]),
    ("SD-Turbo", 1, 0.5, [499]),
    ("DMD2", 1, 1.0, [399]),
    ("DMD2", 1, 0.5, [199]),
    ("Hyper-SD-1step", 1, 1.0, [800]),
    ("InstaFlow", 1, 1.0, [1000]),
    ("InstaFlow", 4, 1.0, [1000, 750, 500, 250]),
    ("InstaFlow", 2, 0.5, [500, 250]),
])
def test_preset_timesteps(name, steps, strength, expected):
    assert os1.preset_timesteps(os1.PRESETS[name], steps, strength) == pytest.approx(expected)


@pytest.mark.parametrize("strength", [0.0, -0.1, 1.01])
def test_strength_out_of_range(strength):
    with pytest.raises(ValueError, match=r"outside \(0, 1\]"):
        os1.preset_timesteps(os1.PRESETS["DMD2"], 1, strength)


def test_too_many_steps_for_a_low_start():
    with pytest.raises(ValueError, match="do not fit"):
        os1.preset_timesteps(os1.PRESETS["UFOGen"], 16, 0.01)


def test_custom_preset_validation():
    assert os1.custom_preset(500, "v").timestep == 500
    with pytest.raises(ValueError, match="prediction"):
        os1.custom_preset(500, "score")
    with pytest.raises(ValueError, match="outside"):
        os1.custom_preset(0, "eps")


def _ve_renoise(sigma, noise, x0):
    return x0 + sigma * noise


def _flow_renoise(sigma, noise, x0):
    return (1 - sigma) * x0 + sigma * noise


def test_one_step_returns_the_prediction():
    x = torch.randn(2, 4, 8, 8)
    target = torch.randn(2, 4, 8, 8)
    out = os1.sample_onestep(lambda x_, s: target, x, torch.tensor([14.6, 0.0]), _ve_renoise)
    assert torch.equal(out, target)


@pytest.mark.parametrize("renoise", [_ve_renoise, _flow_renoise])
def test_deterministic_mode_is_the_euler_rule(renoise):
    torch.manual_seed(0)
    w = torch.randn(4, 4)

    def denoise(x, sigma):  # any smooth x0 predictor
        return torch.tanh(torch.einsum("ij,bjhw->bihw", w, x)) * (1 + sigma)

    sigmas = torch.tensor([0.9, 0.6, 0.3, 0.0]) if renoise is _flow_renoise else torch.tensor([14.6, 5.0, 1.0, 0.0])
    x = torch.randn(1, 4, 3, 3)
    ours = os1.sample_onestep(denoise, x, sigmas, renoise, mode="deterministic")
    euler = x.clone()
    for i in range(len(sigmas) - 1):
        d = (euler - denoise(euler, sigmas[i])) / sigmas[i]
        euler = euler + d * (sigmas[i + 1] - sigmas[i])
    torch.testing.assert_close(ours, euler, rtol=1e-5, atol=1e-5)


def test_fresh_mode_renoises_with_new_noise_from_the_generator():
    x0 = torch.zeros(1, 4, 2, 2)
    seen = []

    def denoise(x, sigma):
        seen.append(x.clone())
        return x0

    sigmas = torch.tensor([14.6, 3.0, 0.0])
    os1.sample_onestep(denoise, torch.ones(1, 4, 2, 2), sigmas, _ve_renoise, "fresh", torch.Generator().manual_seed(5))
    expected = 3.0 * torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(seen[1], expected)


def test_x0_formulas():
    x0, eps = torch.randn(3), torch.randn(3)
    ab = 0.3
    xt = ab ** 0.5 * x0 + (1 - ab) ** 0.5 * eps
    torch.testing.assert_close(ref.x0_from_prediction("eps", eps, xt, alpha_bar=ab), x0)
    v = ab ** 0.5 * eps - (1 - ab) ** 0.5 * x0
    torch.testing.assert_close(ref.x0_from_prediction("v", v, xt, alpha_bar=ab), x0)
    s = 0.7
    xs = (1 - s) * x0 + s * eps
    torch.testing.assert_close(ref.x0_from_prediction("flow", eps - x0, xs, sigma=s), x0)
    torch.testing.assert_close(ref.x0_from_prediction("flow_instaflow", x0 - eps, xs, sigma=s), x0)


@pytest.mark.parametrize("steps,expected", [(1, [999]), (2, [999, 499]), (4, [999, 759, 499, 259]),
                                            (8, [999, 879, 759, 639, 499, 379, 259, 139])])
def test_lcm_schedule_is_diffusers_set_timesteps(steps, expected):
    """LCMScheduler / TCDScheduler.set_timesteps with 50 original steps (diffusers scheduling_lcm.py:455-541)."""
    assert os1.lcm_timesteps(steps) == expected
    diffusers = pytest.importorskip("diffusers", reason="diffusers (dev dependency) is needed for this cross-check")
    s = diffusers.LCMScheduler()
    s.set_timesteps(steps)
    assert s.timesteps.tolist() == expected


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 8])
def test_trailing_schedule_is_diffusers_trailing_spacing(steps):
    diffusers = pytest.importorskip("diffusers", reason="diffusers (dev dependency) is needed for this cross-check")
    s = diffusers.EulerDiscreteScheduler(timestep_spacing="trailing")
    s.set_timesteps(steps)
    assert os1.trailing_timesteps(steps) == [int(t) for t in s.timesteps]


def test_diffusers_img2img_rule():
    turbo = os1.PRESETS["SD-Turbo"]
    assert os1.preset_timesteps(turbo, 2, 0.5, "diffusers") == [499]
    assert os1.preset_timesteps(turbo, 2, 0.5, "run steps") == [499, 249]
    assert os1.preset_timesteps(os1.preset_for("DMD2", "SDXL"), 4, 0.5, "diffusers") == [499, 249]
    with pytest.raises(ValueError, match=r"int\(2 x 0.4\) = 0 steps"):
        os1.preset_timesteps(turbo, 2, 0.4, "diffusers")


def test_dmd2_rows_differ_by_base():
    assert os1.preset_for("DMD2", "SDXL").published == ((1, (399,)), (4, (999, 749, 499, 249)))
    assert os1.preset_for("DMD2", "SD15").published == ((1, (999,)),)


def test_every_preset_belongs_to_exactly_one_family_list():
    lists = [os1.IMAGE_PRESET_NAMES, os1.WAN_PRESET_NAMES, os1.SVD_PRESET_NAMES, os1.VIDEO_PRESET_NAMES]
    named = [n for names in lists for n in names]
    assert len(named) == len(set(named)) and set(named) == set(os1.PRESET_NAMES)
    assert all(os1.PRESETS[n].schedule == "flow" for n in os1.WAN_PRESET_NAMES + os1.VIDEO_PRESET_NAMES)
