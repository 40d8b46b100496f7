#!/usr/bin/env bash
# Builds the engine's Python environment idempotently.
# The environment lives in ~/.cache/sparse-al/venvs/<hash of the requirements>, and .venv links to it: a second
# run, or a fresh clone on the same machine, starts in seconds; a change of requirements builds a new one.
set -euo pipefail
cd "$(dirname "$0")/.."

SYS_PY=${SPARSE_AL_SYSTEM_PYTHON:-/usr/bin/python3}   # Debian's python3: the one QGIS's bindings belong to
hash=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
home=${SPARSE_AL_VENV_HOME:-$HOME/.cache/sparse-al/venvs}
venv=$home/$hash

if [ -f "$venv/.complete" ]; then
  ln -sfn "$venv" .venv
  exit 0
fi

if ! "$SYS_PY" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "setup: installing python3-venv (Debian package)"
  apt_get=(apt-get); [ "$(id -u)" -eq 0 ] || apt_get=(sudo apt-get)
  "${apt_get[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq python3-venv
fi

echo "setup: building the Python environment in $venv (the first time downloads torch: minutes)"
mkdir -p "$home"
rm -rf "$venv"
"$SYS_PY" -m venv --system-site-packages "$venv"
# The standard torch and torchvision from the registry: a local CPU-only torch wheel that some machines prefer
# through pip's find-links breaks torchvision's operators, so pip's local configuration is set aside here.
env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 \
  "$venv/bin/python" -m pip install --quiet -r requirements.txt -r requirements-dev.txt
"$venv/bin/python" -c 'import torch, torchvision.ops, segmentation_models_pytorch, rasterio, geopandas'
touch "$venv/.complete"
ln -sfn "$venv" .venv
echo "setup: done ($venv)"
