#!/usr/bin/env bash
# The PYNQ-Z1 overlay of pesto: pesto_<variant>.bit + .hwh (what pynq.Overlay loads; the board
# notebook's default is pesto_rtl.bit).
#
#   bitstreams/build.sh rtl                 the Verilog engine hw/rtl, packaged as IP
#   bitstreams/build.sh hls [ARTIFACT]      the HLS engine (Vitis HLS), sized for ARTIFACT if given
#
# Needs Vivado (and Vitis HLS for `hls`) 2022.1 on PATH; docs/bitstreams.md and docs/board.md.
# Environment: PESTO_OUT (where the .bit/.hwh go: bitstreams/ in a checkout, else ./),
# PESTO_BUILD (work folder: build/bitstreams in a checkout, else ./build/bitstreams),
# PESTO_JOBS (default 4). An installed pesto runs this same script from its package
# (docs/board.md), writing into the current folder, never into the package.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
variant="${1:-}"
artifact="${2:-}"
case "$variant" in
    rtl|hls) ;;
    *) echo "usage: bitstreams/build.sh rtl|hls [ARTIFACT]" >&2; exit 2 ;;
esac

need="vivado"
[ "$variant" = hls ] && need="vitis_hls vivado"
missing=""
for tool in $need; do command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"; done
if [ -n "$missing" ]; then
    tools="Vivado"; settings="source /tools/Xilinx/Vivado/2022.1/settings64.sh"
    if [ "$variant" = hls ]; then
        tools="Vitis HLS and Vivado"; settings="$settings; source /tools/Xilinx/Vitis_HLS/2022.1/settings64.sh"
    fi
    cat >&2 <<MSG
bitstreams/build.sh: not on PATH:$missing
  The $variant bitstream needs $tools, written for 2022.1 (the release PYNQ 3.0 images are
  built with). Install AMD Vivado ML Standard 2022.1 (its free licence covers the xc7z020;
  Vitis HLS comes with it), then load its environment:
      $settings
  and the PYNQ-Z1 board files (github.com/Digilent/vivado-boards, new/board_files/pynq-z1)
  into /tools/Xilinx/Vivado/2022.1/data/boards/board_files/. Without Xilinx tools, the HLS engine
  is still C-simulated by \`pesto hls --csim\` and the RTL simulated by the driver's sim backend.
MSG
    exit 3
fi

py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py="$(command -v python3)"
if [ -d "$root/sw/pesto" ]; then        # a source checkout
    out="${PESTO_OUT:-$here}"; build="${PESTO_BUILD:-$root/build/bitstreams}/$variant"
else                                    # inside an installed pesto (pesto/resources/bitstreams)
    out="${PESTO_OUT:-$PWD}"; build="${PESTO_BUILD:-$PWD/build/bitstreams}/$variant"
fi
mkdir -p "$build" "$out"
out="$(cd "$out" && pwd)"

# One configuration for everything: VLNV from regmap.json, build parameters, interface names.
"$py" -m pesto.hls.bitstream "$variant" --build "$build" --out "$out" ${artifact:+--artifact "$artifact"}

if [ "$variant" = hls ]; then
    (cd "$build/hls" && PESTO_HLS_STEPS="csim csynth export" vitis_hls -f run_hls.tcl)
fi
vivado -mode batch -nojournal -log "$build/vivado.log" -source "$here/pynq_z1.tcl" \
    -tclargs "$build/config.tcl"

for ext in bit hwh; do
    if [ ! -s "$out/pesto_$variant.$ext" ]; then
        echo "bitstreams/build.sh: Vivado finished without $out/pesto_$variant.$ext; see $build/vivado.log" >&2
        exit 4
    fi
done
echo "built $out/pesto_$variant.bit and .hwh: pynq.Overlay('pesto_$variant.bit') (docs/board.md)"
