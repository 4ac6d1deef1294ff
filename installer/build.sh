#!/usr/bin/env bash
# Build the frozen one-folder app: installer/build.sh [--no-torch] [--smoke]
#
#   --no-torch  leave torch out (GUI and provenance only; small and quick: the CI check)
#   --smoke     run the frozen app's self test afterwards (offscreen)
#
# The build freezes the torch that is installed. For the CPU build (the default for
# desktops; a few hundred MB instead of several GB of CUDA libraries), install torch from
# the CPU index first:
#   pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu
# For the CUDA build, install the CUDA wheels instead; nothing else changes. The result is
# $WORKBENCH_BUILD_DIR/dist/workbench/ (default build/; run .../workbench/workbench); its
# size and build time are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${WORKBENCH_BUILD_DIR:-build}"
torch=1 smoke=0
for arg in "$@"; do
  case "$arg" in
    --no-torch) torch=0 ;;
    --smoke) smoke=1 ;;
    *) echo "usage: installer/build.sh [--no-torch] [--smoke]" >&2; exit 2 ;;
  esac
done
python3 -m pip install --quiet 'pyinstaller>=6.0'
start=$(date +%s)
WORKBENCH_FREEZE_TORCH=$torch python3 -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$out/dist" --workpath "$out/pyinstaller" installer/workbench.spec
echo "built $out/dist/workbench in $(( $(date +%s) - start )) s, size $(du -sh "$out/dist/workbench" | cut -f1)"
if [ "$smoke" = 1 ]; then
  flags=""
  [ "$torch" = 0 ] && flags="--no-torch"
  QT_QPA_PLATFORM=offscreen "$out/dist/workbench/workbench" --smoke $flags
fi
