#!/usr/bin/env bash
# The one install path for a development machine and for CI (.ci/run calls it; README shows it).
#
#   bash scripts/install_dev.sh
#
# Installs, into the active Python (use a virtual environment), one torch stack for every ComfyUI
# (constraints.txt: torch, torchvision, torchaudio built for one another), the pack's requirements,
# the test requirements, and the requirements of every ComfyUI listed in COMFYUI_PATH
# (colon-separated; default /opt/ComfyUI:/opt/ComfyUI-0.8:/opt/ComfyUI-0.27).
#
# One environment holds one version of ComfyUI's own web packages: the newest ComfyUI's exact pins
# (frontend, workflow templates, docs) are installed; each other ComfyUI's go beside them in
# .comfy_web/<its version>/, and the pack's local server starts that ComfyUI with them first on its
# path, so every release is tested with the editor and templates it ships.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
pipi() { "$py" -m pip install -q -c constraints.txt "$@"; }
version_of() { sed -nE 's/^__version__ = "([^"]+)".*/\1/p' "$1/comfyui_version.py" 2>/dev/null || echo 0; }
pin_of() { sed -nE "s/^$2==([^[:space:]#]+).*/\1/p" "$1/requirements.txt"; }

comfys=()
IFS=: read -r -a listed <<< "${COMFYUI_PATH:-/opt/ComfyUI:/opt/ComfyUI-0.8:/opt/ComfyUI-0.27}"
for comfy in "${listed[@]}"; do
  if [ -f "$comfy/requirements.txt" ]; then comfys+=("$comfy"); else echo "install_dev: no ComfyUI at $comfy (skipped)"; fi
done
newest=""
for comfy in "${comfys[@]}"; do
  if [ -z "$newest" ] || [ "$(printf '%s\n%s\n' "$(version_of "$newest")" "$(version_of "$comfy")" | sort -V | tail -n1)" != "$(version_of "$newest")" ]; then
    newest=$comfy
  fi
done

# The newest ComfyUI's requirements whole; the others' without their exact pins of ComfyUI's web
# packages (comfyui-frontend-package, -workflow-templates, -embedded-docs: one version per environment).
for comfy in ${newest:+"$newest"} "${comfys[@]}"; do
  reqs=$(mktemp)
  if [ "$comfy" = "$newest" ]; then cp "$comfy/requirements.txt" "$reqs"
  else grep -vE '^comfyui-[a-z-]+==' "$comfy/requirements.txt" > "$reqs"; fi
  echo "install_dev: ComfyUI $(version_of "$comfy") requirements ($comfy)"
  pipi -r "$reqs"
  rm -f "$reqs"
done
pipi -r requirements.txt -r requirements-dev.txt

# Each older ComfyUI's own web packages (its exact pins of frontend, workflow templates, docs), beside
# the environment's: client/local.py puts .comfy_web/<version>/ first on that server's PYTHONPATH.
for comfy in "${comfys[@]}"; do
  [ "$comfy" = "$newest" ] && continue
  dest=".comfy_web/$(version_of "$comfy")"
  pins=$(grep -E '^comfyui-[a-z-]+==' "$comfy/requirements.txt" | sed 's/[[:space:]]*#.*//' | sort)
  [ -f "$dest/PINS" ] && [ "$(cat "$dest/PINS")" = "$pins" ] && continue
  echo "install_dev: ComfyUI $(version_of "$comfy") web packages -> $dest"
  rm -rf "$dest"
  # shellcheck disable=SC2086
  "$py" -m pip install -q --target "$dest" $pins
  printf '%s\n' "$pins" > "$dest/PINS"
done

# The browser tests drive the system Chromium (browser downloads are not possible here).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; elif sudo -n true 2>/dev/null; then apt_get="sudo -n apt-get"; else apt_get=""; fi
  if [ -n "$apt_get" ] && { $apt_get install -y -q chromium >/dev/null 2>&1 ||
       { $apt_get update -q >/dev/null 2>&1 && $apt_get install -y -q chromium >/dev/null 2>&1; }; }; then
    echo "install_dev: installed chromium"
  else echo "install_dev: !!! no chromium (apt-get install -y chromium failed or needs root): the browser tests will skip"; fi
fi
"$py" - <<'PY'
import torch, torchaudio, torchvision
print(f"install_dev: torch {torch.__version__}, torchvision {torchvision.__version__}, torchaudio {torchaudio.__version__}")
PY
