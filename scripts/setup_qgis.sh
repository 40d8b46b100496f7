#!/usr/bin/env bash
# Installs QGIS (Debian's qgis and python3-qgis) and Xvfb when they are missing; the plugin's tests need them.
set -euo pipefail
SYS_PY=${SPARSE_AL_SYSTEM_PYTHON:-/usr/bin/python3}
if "$SYS_PY" -c 'import qgis.core' 2>/dev/null && command -v xvfb-run >/dev/null; then
  exit 0
fi
echo "setup: installing QGIS and Xvfb from Debian's packages (the first time takes minutes)"
apt_get=(apt-get); [ "$(id -u)" -eq 0 ] || apt_get=(sudo apt-get)
"${apt_get[@]}" update -qq
DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq qgis python3-qgis xvfb xauth
