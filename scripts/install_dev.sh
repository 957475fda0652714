#!/usr/bin/env bash
# The one install path for a development machine and for CI (.ci/run calls it; README shows it).
#
#   bash scripts/install_dev.sh
#
# Installs, into the active Python (use a virtual environment), the pack's requirements, the test
# requirements, and the requirements of every ComfyUI listed in COMFYUI_PATH (colon-separated;
# default /opt/ComfyUI:/opt/ComfyUI-0.8), all under constraints.txt so torch and torchvision stay a
# matching pair. ComfyUI's torchaudio line is dropped (see constraints.txt for why).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
pipi() { "$py" -m pip install -q -c constraints.txt "$@"; }

seen_pins=""
IFS=: read -r -a comfys <<< "${COMFYUI_PATH:-/opt/ComfyUI:/opt/ComfyUI-0.8}"
for comfy in "${comfys[@]}"; do
  [ -f "$comfy/requirements.txt" ] || { echo "install_dev: no ComfyUI at $comfy (skipped)"; continue; }
  reqs=$(mktemp)
  # torchaudio: no build matches torch here. Exact pins of ComfyUI's own web packages
  # (frontend, templates, docs) are taken from the first ComfyUI only: two releases pin different
  # versions, one environment holds one, and the server runs with either.
  while IFS= read -r line; do
    name=$(printf '%s' "$line" | sed -E 's/[[:space:]]*#.*//; s/[<>=~!;[ ].*//' | tr 'A-Z_' 'a-z-')
    [ "$name" = torchaudio ] && continue
    if printf '%s' "$line" | grep -q '=='; then
      case " $seen_pins " in *" $name "*) continue ;; esac
      seen_pins="$seen_pins $name"
    fi
    printf '%s\n' "$line"
  done < "$comfy/requirements.txt" > "$reqs"
  echo "install_dev: ComfyUI $comfy requirements (without torchaudio)"
  pipi -r "$reqs"
  rm -f "$reqs"
done
# After ComfyUI's own lines, so its exact pins (workflow templates) are the ones the tests meet.
pipi -r requirements.txt -r requirements-dev.txt
# The live page's browser test drives the system Chromium (browser downloads are not possible here).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; elif sudo -n true 2>/dev/null; then apt_get="sudo -n apt-get"; else apt_get=""; fi
  if [ -n "$apt_get" ] && { $apt_get install -y -q chromium >/dev/null 2>&1 ||
       { $apt_get update -q >/dev/null 2>&1 && $apt_get install -y -q chromium >/dev/null 2>&1; }; }; then
    echo "install_dev: installed chromium"
  else echo "install_dev: !!! no chromium (apt-get install -y chromium failed or needs root): the browser test will skip"; fi
fi
"$py" - <<'PY'
import importlib.util, torch, torchvision
print(f"install_dev: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"torchaudio {'present' if importlib.util.find_spec('torchaudio') else 'not installed (ComfyUI audio nodes off)'}")
PY
