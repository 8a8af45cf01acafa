/*
 * pesto_window: the input window of one 2 x 2 tile of output pixels for one input group, as
 * registers: a 5 x 5 grid of cells (a 4 x 4 corner at stride 1), each one activation word of
 * LANES int16.
 *
 * The fill writes the shadow grid (cell (r, c) always from the same source: bank
 * (r mod 2, c mod 2), port (c div 2) mod 2 of the activation set, so no cell has a
 * multiplexer; fill_zero clears a cell outside the image) while the PEs read the working grid;
 * load copies the shadow into the working grid at a pass boundary. PE (dy, dx) takes its nine
 * taps (ky, kx) from cell (dy + ky, dx + kx) at stride 1 and (2dy + ky, 2dx + kx) at stride 2,
 * each cycle the slice of LANES / GROUP_CYCLES channels the PEs add (slice): the choice of
 * cell and slice is one 4:1 multiplexer per tap bit, shared by the PEs' lanes.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_window #
(
    // channels per activation word
    parameter LANES = 16,
    // cycles per group: the PEs take LANES / GROUP_CYCLES channels of every tap a cycle (1, 2, 4)
    parameter GROUP_CYCLES = 2
)
(
    input  wire                     clk,

    // eight source words: source 2*bank + port, bank = 2*(row mod 2) + (column mod 2)
    input  wire [8*16*LANES-1:0]    fill_data,
    // per cell (5*r + c): write the shadow cell, and write it as zero
    input  wire [24:0]              fill_we,
    input  wire [24:0]              fill_zero,

    input  wire                     load,
    input  wire                     stride2,
    input  wire [1:0]               slice,

    // PE p = 2*dy + dx, tap t = 3*ky + kx: channels SLICE * slice .. of its cell at
    // bits [16*SLICE*(9*p + t) +: 16*SLICE]
    output wire [4*9*16*LANES/GROUP_CYCLES-1:0] pe_taps
);

localparam W = 16 * LANES;
localparam SLICE = LANES / GROUP_CYCLES;
localparam SW = 16 * SLICE;

reg [W-1:0] shadow [0:24];
reg [W-1:0] working [0:24];

genvar i, pe, t;
generate
    for (i = 0; i < 25; i = i + 1) begin : grid
        localparam integer R = i / 5;
        localparam integer C = i % 5;
        localparam integer SRC = 2 * (2 * (R % 2) + (C % 2)) + ((C / 2) % 2);
        // a zero cell is a synchronous reset of its registers (no multiplexer on the data)
        always @(posedge clk) begin
            if (fill_we[i] && fill_zero[i]) begin
                shadow[i] <= {W{1'b0}};
            end else if (fill_we[i]) begin
                shadow[i] <= fill_data[W*SRC +: W];
            end
            if (load) begin
                working[i] <= shadow[i];
            end
        end
    end

    for (pe = 0; pe < 4; pe = pe + 1) begin : pe_wiring
        for (t = 0; t < 9; t = t + 1) begin : tap
            localparam integer DY = pe / 2;
            localparam integer DX = pe % 2;
            localparam integer KY = t / 3;
            localparam integer KX = t % 3;
            localparam integer S1 = 5 * (DY + KY) + (DX + KX);
            localparam integer S2 = 5 * (2 * DY + KY) + (2 * DX + KX);
            // the slice of the cell: as plain 2:1 choices, so that cell and slice are one LUT6
            wire [W-1:0] c1 = working[S1];
            wire [W-1:0] c2 = working[S2];
            wire [SW-1:0] tap_slice;
            if (GROUP_CYCLES == 1) begin : whole
                assign tap_slice = stride2 ? c2 : c1;
            end else if (GROUP_CYCLES == 2) begin : halves
                assign tap_slice = slice[0] ? (stride2 ? c2[SW +: SW] : c1[SW +: SW])
                                            : (stride2 ? c2[0 +: SW] : c1[0 +: SW]);
            end else begin : quarters
                wire [SW-1:0] q1 = slice[1] ? (slice[0] ? c1[3*SW +: SW] : c1[2*SW +: SW])
                                            : (slice[0] ? c1[SW +: SW] : c1[0 +: SW]);
                wire [SW-1:0] q2 = slice[1] ? (slice[0] ? c2[3*SW +: SW] : c2[2*SW +: SW])
                                            : (slice[0] ? c2[SW +: SW] : c2[0 +: SW]);
                assign tap_slice = stride2 ? q2 : q1;
            end
            assign pe_taps[SW*(9*pe+t) +: SW] = tap_slice;
        end
    end
endgenerate

// with two slices or one, the high bits of slice are unused
wire unused_ok = &{1'b0, slice, 1'b0};

endmodule

`resetall
