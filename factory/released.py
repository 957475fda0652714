"""The released model files the shipped workflows name: one table, read by the workflow builder (the
widgets, each workflow's ``models`` list for the editor's missing-models dialog, the note on the
canvas), by the demo (its stand-ins take these names) and by ``python tempo.py docs`` (the README's
table of files). Plain data.

Where each name comes from: the Wan files are Comfy-Org's repackages, as ComfyUI's own templates name
them (comfyui-workflow-templates 0.11.2: text_to_video_wan.json, video_wan2_2_14B_t2v.json,
image_to_video_wan.json); the SD 1.5 base as ComfyUI's default graph names it (default.json); the
others as their authors publish them (the repository and path are the URL).
"""

from __future__ import annotations

from dataclasses import dataclass

HF = "https://huggingface.co/"
WAN21 = HF + "Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/"
WAN22 = HF + "Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/"
# What the editor's missing-models dialog downloads by itself (frontend 1.27 and 1.35:
# MissingModelsWarning.vue; 1.45: platform/missingModel/missingModelDownload.ts): a URL on one of
# these hosts, a name with one of these endings (1.45 adds .ckpt .pth .pt).
DIALOG_HOSTS = (HF, "https://civitai.com/")
DIALOG_ENDINGS = (".safetensors", ".sft")


@dataclass(frozen=True)
class Released:
    name: str     # the file's own name, as its publisher released it
    folder: str   # where ComfyUI looks for it (models/<folder>/)
    url: str      # where to download it
    what: str     # what it is, in a line

    @property
    def dialog_downloads(self) -> bool:
        """Whether every supported editor's missing-models dialog offers to download it; otherwise the
        workflow's note links it."""
        return self.url.startswith(DIALOG_HOSTS) and self.name.endswith(DIALOG_ENDINGS)

    def model_entry(self) -> dict:
        """The editor's model metadata entry (workflow ``models``)."""
        return {"name": self.name, "url": self.url, "directory": self.folder}


FILES = {f.name: f for f in [
    Released("v1-5-pruned-emaonly-fp16.safetensors", "checkpoints",
             HF + "Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/v1-5-pruned-emaonly-fp16.safetensors",
             "Stable Diffusion 1.5 (ComfyUI's default model)"),
    Released("Hyper-SD15-1step-lora.safetensors", "loras",
             HF + "ByteDance/Hyper-SD/resolve/main/Hyper-SD15-1step-lora.safetensors",
             "ByteDance's Hyper-SD LoRA: SD 1.5 in one step"),
    Released("control_v11p_sd15_canny_fp16.safetensors", "controlnet",
             HF + "comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/control_v11p_sd15_canny_fp16.safetensors",
             "ControlNet 1.1 Canny edges for SD 1.5"),
    Released("self_forcing_dmd.pt", "diffusion_models",
             HF + "gdhe17/Self-Forcing/resolve/main/checkpoints/self_forcing_dmd.pt",
             "Self Forcing: real-time causal video on Wan 2.1 1.3B"),
    Released("umt5_xxl_fp8_e4m3fn_scaled.safetensors", "text_encoders",
             WAN21 + "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", "the Wan text encoder (umT5-XXL)"),
    Released("wan_2.1_vae.safetensors", "vae", WAN21 + "vae/wan_2.1_vae.safetensors", "the Wan 2.1 VAE"),
    Released("taew2_1.pth", "vae_approx", "https://github.com/madebyollin/taehv/raw/main/taew2_1.pth",
             "TAEHV, the tiny Wan 2.1 decoder that keeps up with real time"),
    Released("rCM_Wan2.1_T2V_1.3B_480p.pt", "diffusion_models",
             HF + "worstcoder/rcm-Wan/resolve/main/rCM_Wan2.1_T2V_1.3B_480p.pt",
             "rCM: Wan 2.1 1.3B text-to-video in 1 to 4 steps"),
    Released("svd_xt.safetensors", "checkpoints",
             HF + "stabilityai/stable-video-diffusion-img2vid-xt/resolve/main/svd_xt.safetensors",
             "Stable Video Diffusion XT (25 frames)"),
    Released("wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors", "diffusion_models",
             WAN22 + "diffusion_models/wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
             "Wan 2.2 A14B text-to-video, high-noise expert"),
    Released("wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors", "diffusion_models",
             WAN22 + "diffusion_models/wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
             "Wan 2.2 A14B text-to-video, low-noise expert"),
    Released("wan2.2_t2v_lightx2v_4steps_lora_v1.1_high_noise.safetensors", "loras",
             WAN22 + "loras/wan2.2_t2v_lightx2v_4steps_lora_v1.1_high_noise.safetensors",
             "Wan 2.2 Lightning 4-step LoRA (lightx2v, V1.1), high-noise expert"),
    Released("wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise.safetensors", "loras",
             WAN22 + "loras/wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise.safetensors",
             "Wan 2.2 Lightning 4-step LoRA (lightx2v, V1.1), low-noise expert"),
    Released("wan2.1_i2v_480p_14B_fp8_scaled.safetensors", "diffusion_models",
             WAN21 + "diffusion_models/wan2.1_i2v_480p_14B_fp8_scaled.safetensors",
             "Wan 2.1 image-to-video 14B (480p)"),
    Released("clip_vision_h.safetensors", "clip_vision", WAN21 + "clip_vision/clip_vision_h.safetensors",
             "the image encoder Wan 2.1 image-to-video reads the start image with"),
    Released("wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors", "loras",
             HF + "lightx2v/Wan2.1-Distill-Loras/resolve/main/wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors",
             "lightx2v's 4-step LoRA for Wan 2.1 image-to-video 14B"),
]}

# The names the workflows use, by role.
SD15 = FILES["v1-5-pruned-emaonly-fp16.safetensors"].name
HYPER_SD15_1STEP = FILES["Hyper-SD15-1step-lora.safetensors"].name
SD15_CANNY = FILES["control_v11p_sd15_canny_fp16.safetensors"].name
SELF_FORCING = FILES["self_forcing_dmd.pt"].name
WAN_TEXT_ENCODER = FILES["umt5_xxl_fp8_e4m3fn_scaled.safetensors"].name
WAN_VAE = FILES["wan_2.1_vae.safetensors"].name
TAEW2_1 = FILES["taew2_1.pth"].name
RCM_1_3B = FILES["rCM_Wan2.1_T2V_1.3B_480p.pt"].name
SVD_XT = FILES["svd_xt.safetensors"].name
WAN22_T2V_HIGH = FILES["wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"].name
WAN22_T2V_LOW = FILES["wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors"].name
LIGHTNING_HIGH = FILES["wan2.2_t2v_lightx2v_4steps_lora_v1.1_high_noise.safetensors"].name
LIGHTNING_LOW = FILES["wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise.safetensors"].name
WAN21_I2V_14B = FILES["wan2.1_i2v_480p_14B_fp8_scaled.safetensors"].name
CLIP_VISION_H = FILES["clip_vision_h.safetensors"].name
LIGHTX2V_I2V_LORA = FILES["wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors"].name
