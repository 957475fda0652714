"""Test scaffolding: the published one-step rules written out from the papers, independently of
the pack's samplers and of ComfyUI (the references the presets are checked against)."""

from __future__ import annotations

import torch


def ddpm_alphas_cumprod(timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    """Stable Diffusion's scaled-linear DDPM schedule (float64)."""
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def ddpm_sigma(t: float, alphas_cumprod: torch.Tensor | None = None) -> float:
    """sigma(t) = sqrt((1 - abar_t) / abar_t), log-interpolated between integer steps."""
    ac = ddpm_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod
    log_sigmas = (((1 - ac) / ac) ** 0.5).log()
    lo, hi = int(t // 1), min(int(-(-t // 1)), len(ac) - 1)
    w = t - lo
    return float(((1 - w) * log_sigmas[lo] + w * log_sigmas[hi]).exp())


def x0_from_prediction(prediction: str, model_out, x_t, alpha_bar: float | None = None, sigma: float | None = None):
    """x0 from a network output, in each family's own parameterisation (the papers' formulas).

    Discrete models take ``x_t = sqrt(abar) x0 + sqrt(1 - abar) eps`` and ``alpha_bar``;
    flow models take ``sigma`` (InstaFlow: x0 = x + sigma * v; Wan / APT: x0 = x - sigma * v).
    """
    if prediction == "eps":
        return (x_t - (1 - alpha_bar) ** 0.5 * model_out) / alpha_bar ** 0.5
    if prediction == "x0":
        return model_out
    if prediction == "v":
        return alpha_bar ** 0.5 * x_t - (1 - alpha_bar) ** 0.5 * model_out
    if prediction == "flow":
        return x_t - sigma * model_out
    if prediction == "flow_instaflow":
        return x_t + sigma * model_out
    raise ValueError(f"unknown prediction '{prediction}'")
