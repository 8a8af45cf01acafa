// C-simulation shim of Xilinx's ap_axi_sdata.h for g++ builds ONLY.
//
// hls4ml's PyPI package ships ap_int.h and hls_stream.h but not ap_axi_sdata.h, so
// tests/hls and `pesto hls --csim` put this folder on g++'s include path. It is never
// rendered into an HLS project: Vitis HLS uses its own header, which declares the same
// members (data, keep, strb, user, last, id, dest) with the same template parameters.
#ifndef PESTO_CSIM_AP_AXI_SDATA_H
#define PESTO_CSIM_AP_AXI_SDATA_H

#include <ap_int.h>

// Zero-width side channels (ap_axiu<D, 0, 0, 0>) are legal in Vitis HLS; ap_uint<0> is not
// in the hls4ml headers, so the shim keeps one bit for them (never read by pesto).
template <int W> struct pesto_csim_width { static const int value = W > 0 ? W : 1; };

template <int D, int U, int TI, int TD>
struct ap_axiu {
    ap_uint<D> data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<(D + 7) / 8> strb;
    ap_uint<pesto_csim_width<U>::value> user;
    ap_uint<1> last;
    ap_uint<pesto_csim_width<TI>::value> id;
    ap_uint<pesto_csim_width<TD>::value> dest;
};

template <int D, int U, int TI, int TD>
struct ap_axis {
    ap_int<D> data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<(D + 7) / 8> strb;
    ap_uint<pesto_csim_width<U>::value> user;
    ap_uint<1> last;
    ap_uint<pesto_csim_width<TI>::value> id;
    ap_uint<pesto_csim_width<TD>::value> dest;
};

#endif
