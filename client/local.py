"""Start a private ComfyUI on loopback with this pack loaded (for the demo and the tests)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from .errors import ClientError

PACK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK_LINK_NAME = "comfyui-tempo"


def find_comfyui() -> str | None:
    """ComfyUI's folder: the first entry of $COMFYUI_PATH (a path, or several joined with ':')
    that holds a main.py; without that variable, the folder above custom_nodes/ when the pack sits
    there, else /opt/ComfyUI. None when none of them holds a main.py (a set COMFYUI_PATH is
    authoritative: no fallback behind it)."""
    if os.environ.get("COMFYUI_PATH"):
        candidates = [c for c in os.environ["COMFYUI_PATH"].split(os.pathsep) if c]
    else:
        candidates = []
        parent = os.path.dirname(PACK_ROOT)
        if os.path.basename(parent) == "custom_nodes":
            candidates.append(os.path.dirname(parent))
        candidates.append("/opt/ComfyUI")
    for c in candidates:
        if os.path.isfile(os.path.join(c, "main.py")):
            return os.path.abspath(c)
    return None


def require_comfyui(path: str | None = None, alternative: str = "") -> str:
    """``path``, else the ComfyUI :func:`find_comfyui` finds; a ClientError that says how to point at one
    when there is none (``alternative``: another way out the caller offers)."""
    found = path or find_comfyui()
    if found is None:
        raise ClientError("ComfyUI not found: set COMFYUI_PATH to a ComfyUI folder (with main.py), or put this "
                          "pack in ComfyUI/custom_nodes/" + (f", or {alternative}" if alternative else ""))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WEB_ROOT = os.path.join(PACK_ROOT, ".comfy_web")


def web_packages(comfyui: str, root: str = WEB_ROOT) -> str | None:
    """The folder holding the web packages ``comfyui`` pins (requirements.txt: comfyui-frontend-package,
    comfyui-workflow-templates, comfyui-embedded-docs, exact versions) where the Python environment holds
    other versions: .comfy_web/<ComfyUI version>/, written by scripts/install_dev.sh for each ComfyUI
    but the newest (``root``: another checkout's .comfy_web, as a Ray worker is given its driver's). None:
    the environment's own serve it."""
    import re
    from importlib import metadata

    try:
        with open(os.path.join(comfyui, "requirements.txt")) as f:
            pinned = re.search(r"^comfyui-frontend-package==([^\s#]+)", f.read(), re.M)
        with open(os.path.join(comfyui, "comfyui_version.py")) as f:
            version = re.search(r'__version__ = "([^"]+)"', f.read())
        installed = metadata.version("comfyui-frontend-package")
    except (OSError, metadata.PackageNotFoundError):
        return None
    if pinned is None or version is None or pinned.group(1) == installed:
        return None
    folder = os.path.join(root, version.group(1))
    return folder if os.path.isfile(os.path.join(folder, "PINS")) else None


MODEL_FOLDERS = ("checkpoints", "diffusion_models", "unet", "vae", "text_encoders", "clip", "clip_vision",
                 "controlnet", "loras", "vae_approx", "tempo_conditioning")


# Runs ComfyUI's main.py in a process that ends when the process that started it is gone (a Ray
# worker killed with SIGKILL leaves no ComfyUI behind): a daemon thread watches the parent's pid.
_WATCHED_MAIN = (
    "import os, runpy, sys, threading, time\n"
    "parent = int(sys.argv.pop(1))\n"
    "def watch():\n"
    "    while True:\n"
    "        time.sleep(1.0)\n"
    "        if os.getppid() != parent:\n"
    "            os._exit(0)\n"
    "threading.Thread(target=watch, daemon=True, name='tempo-parent-watch').start()\n"
    "sys.argv[0] = 'main.py'\n"
    "runpy.run_path('main.py', run_name='__main__')\n"
)


class LocalComfyUI:
    """A ComfyUI subprocess on 127.0.0.1 whose base directory is a temporary folder.

    ``base`` holds models/, input/, output/, user/ and custom_nodes/ (a link to this pack, and to each
    folder of ``extra_nodes``); ``models`` (a folder, or several) adds model roots (written to an
    extra_model_paths.yaml). ``cpu``: run on the CPU (else ComfyUI picks the device it sees: a Ray
    worker's assigned GPU). ``watch_parent``: the ComfyUI process ends when this process does, however
    it ends. Use as a context manager (or stop()), so the process is stopped whatever happens.
    """

    def __init__(self, comfyui: str | None = None, base: str | None = None, models: str | None = None,
                 startup_timeout: float = 300.0, extra_args: list[str] | None = None,
                 extra_nodes: list[str] | None = None, cpu: bool = True, watch_parent: bool = False,
                 web_root: str = WEB_ROOT):
        self.comfyui = require_comfyui(comfyui)
        self._own_base = base is None
        self.base = base or tempfile.mkdtemp(prefix="tempo-comfy-")
        self.models = models
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args or []
        self.extra_nodes = list(extra_nodes or [])
        self.proc = None
        self.cpu, self.watch_parent, self.web_root = cpu, watch_parent, web_root
        self.log_path = os.path.join(self.base, "comfyui.log")

    def _prepare(self):
        for d in ("custom_nodes", "input", "output", "user", "temp"):
            os.makedirs(os.path.join(self.base, d), exist_ok=True)
        for d in MODEL_FOLDERS:
            os.makedirs(os.path.join(self.base, "models", d), exist_ok=True)
        for folder, name in [(PACK_ROOT, PACK_LINK_NAME)] + [(f, os.path.basename(f)) for f in self.extra_nodes]:
            link = os.path.join(self.base, "custom_nodes", name)
            if not os.path.lexists(link):
                os.symlink(folder, link)
        args = []
        if self.models:
            yaml_path = os.path.join(self.base, "extra_model_paths.yaml")
            roots = [self.models] if isinstance(self.models, str) else list(self.models)
            with open(yaml_path, "w") as f:
                for i, root in enumerate(roots):
                    f.write(f"tempo_models_{i}:\n")
                    f.write(f"  base_path: {root}\n")
                    for d in MODEL_FOLDERS:
                        f.write(f"  {d}: {d}/\n")
            args += ["--extra-model-paths-config", yaml_path]
        return args

    def start(self):
        args = self._prepare()
        main = [sys.executable, "-c", _WATCHED_MAIN, str(os.getpid())] if self.watch_parent else \
            [sys.executable, "main.py"]
        cmd = [*main, *(["--cpu"] if self.cpu else []), "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", self.base, "--database-url", "sqlite:///:memory:",
               "--disable-auto-launch", *args, *self.extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        web = web_packages(self.comfyui, self.web_root)
        if web is not None:  # this ComfyUI's own frontend and templates, ahead of the environment's
            env["PYTHONPATH"] = os.pathsep.join(p for p in (web, env.get("PYTHONPATH")) if p)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=self.comfyui, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        import requests

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ClientError(f"ComfyUI exited during start-up (code {self.proc.returncode}):\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/object_info/KSampler", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise ClientError(f"ComfyUI did not answer within {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def log_text(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def cleanup(self):
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
