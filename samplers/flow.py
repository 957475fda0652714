"""Rectified-flow timesteps, shared by the one-step and causal samplers. Plain Python."""


def shift_sigma(sigma: float, shift: float) -> float:
    """A flow level after the schedule's shift: sigma' = s * sigma / (1 + (s - 1) * sigma) (ComfyUI's
    ModelSamplingDiscreteFlow, every Wan pipeline's shift, Self Forcing's warped denoising list)."""
    return shift * sigma / (1 + (shift - 1) * sigma)
