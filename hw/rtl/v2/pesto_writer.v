/*
 * pesto_writer: writes the drain's finished word groups into the destination tensor (phase 1:
 * the tile's pixel (dy, dx) lives in bank (1 - dy, 1 - dx)). Without a residual the four pixel
 * words go to the four banks in one cycle. With a fused residual add, the four residual words
 * are read in one cycle (port B of the four banks, each at its pixel's offset from the
 * residual's base), go through the add unit one pixel a cycle with the pixel words, and the
 * four sums are written in one cycle (port A), in place when the residual is the destination:
 * a word group every four cycles, the banks' ports busy for two of them. The writer shares the
 * ports with the fill and goes first (ports_busy holds the fill for that cycle). The add unit
 * is the engine's, shared with pesto_vec (they never run at once): the writer drives its
 * operands and takes the sum two cycles later.
 *
 * Fused add, a group taken at cycle t: t residual reads; t+1..t+4 pixel p = t+1+p into the add
 * unit (its residual straight from the banks at t+1, then from res_q); t+3..t+6 the sums;
 * t+7 the write. The next group may be taken at t+4.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_writer #
(
    // channels per word group
    parameter LANES = 16,
    // activation bank address width
    parameter AW = 9
)
(
    input  wire                     clk,
    input  wire                     rst,

    input  wire                     start,
    input  wire [23:0]              blocks,
    input  wire                     res_en,
    input  wire [AW-1:0]            dst_base,
    input  wire [AW-1:0]            res_base,

    input  wire                     wg_valid,
    output wire                     wg_ready,
    input  wire [4*16*LANES-1:0]    wg_words,
    input  wire [4*20-1:0]          wg_offsets,
    input  wire [3:0]               wg_pixels,
    input  wire                     wg_tile_last,

    // the destination set: port A writes, port B reads (bank b at [AW*b +: AW])
    output wire [3:0]               wr_en,
    output wire [4*AW-1:0]          wr_addr,
    output wire [4*16*LANES-1:0]    wr_data,
    output wire [4*AW-1:0]          rd_addr,
    input  wire [4*16*LANES-1:0]    rd_data,
    // the writer drives the banks this cycle (the fill waits)
    output wire                     ports_busy,
    output wire                     res_rd,

    // the shared add unit (pesto_add_lanes, two cycles): operands out, sum back
    output wire [16*LANES-1:0]      add_a,
    output wire [16*LANES-1:0]      add_b,
    input  wire [16*LANES-1:0]      add_y,

    output wire                     done
);

localparam W = 16 * LANES;

reg [23:0] tiles;
reg [3:0] wr_en_reg;
reg [4*AW-1:0] wr_addr_reg;
reg [4*W-1:0] wr_data_reg;

// fused add
reg feeding;                       // pixels of a group are entering the add unit
reg [1:0] p;                       // the pixel entering it
reg [4*W-1:0] a_q;                 // the group's pixel words, its residuals of pixels 1..3
reg [3*W-1:0] res_q;
reg [4*AW-1:0] addr_q, addr_w;     // bank addresses, pixels and tile end: taken, then writing
reg [3:0] pix_q, pix_w;
reg last_q, last_w;
reg [3*W-1:0] sum_q;               // sums of pixels 0..2
reg f1, f2;                        // a pixel went into the add unit one, two cycles ago
reg [1:0] f1_p, f2_p;              // which: at f2 its sum is on add_y

wire direct = !res_en;
wire take = wg_valid && (direct || !feeding || p == 2'd3);
wire fused_take = res_en && take;

assign wg_ready = take;
assign wr_en = wr_en_reg;
assign wr_addr = wr_addr_reg;
assign wr_data = wr_data_reg;
assign done = tiles == blocks && !feeding && !f1 && !f2;
assign ports_busy = wr_en_reg != 4'b0000 || fused_take;
assign res_rd = fused_take;

// pixel p of the group lives in bank 3 - p: its destination address and its residual's
wire [4*AW-1:0] dst_addr;
genvar b;
generate
    for (b = 0; b < 4; b = b + 1) begin : bank
        assign dst_addr[AW*b +: AW] = dst_base + wg_offsets[20*(3-b) +: AW];
        assign rd_addr[AW*b +: AW] = res_base + wg_offsets[20*(3-b) +: AW];
    end
endgenerate

// the residual words in pixel order (pixel p from bank 3 - p), and the add unit's operands:
// pixel p's word and residual (at p = 0 straight from the banks)
wire [4*W-1:0] res_by_pixel = {rd_data[W*0 +: W], rd_data[W*1 +: W], rd_data[W*2 +: W], rd_data[W*3 +: W]};
wire [W-1:0] res_now = (p == 2'd0) ? res_by_pixel[W*0 +: W] :
                       (p == 2'd1) ? res_q[W*0 +: W] :
                       (p == 2'd2) ? res_q[W*1 +: W] : res_q[W*2 +: W];
assign add_a = a_q[W*p +: W];
assign add_b = res_now;

integer q;
always @(posedge clk) begin
    wr_en_reg <= 4'b0000;
    if (direct && wg_valid) begin
        wr_addr_reg <= dst_addr;
        for (q = 0; q < 4; q = q + 1) begin
            wr_en_reg[3-q] <= wg_pixels[q];
            wr_data_reg[W*(3-q) +: W] <= wg_words[W*q +: W];
        end
        if (wg_tile_last) begin
            tiles <= tiles + 1'b1;
        end
    end

    // fused add: take, feed four pixels, collect four sums, write
    if (fused_take) begin
        a_q <= wg_words;
        addr_q <= dst_addr;
        pix_q <= wg_pixels;
        last_q <= wg_tile_last;
    end
    if (feeding && p == 2'd0) begin
        res_q <= res_by_pixel[4*W-1:W];
    end
    if (feeding) begin
        p <= p + 1'b1;
    end
    if (fused_take) begin
        feeding <= 1'b1;
    end else if (feeding && p == 2'd3) begin
        feeding <= 1'b0;
    end
    if (feeding && p == 2'd3) begin
        pix_w <= pix_q;
        last_w <= last_q;
        addr_w <= addr_q;
    end
    f1 <= feeding;
    f1_p <= p;
    f2 <= f1;
    f2_p <= f1_p;
    // the sum of a pixel arrives two cycles after it went in: pixels 0..2 wait in sum_q
    for (q = 0; q < 3; q = q + 1) begin
        if (f2 && f2_p == q[1:0]) begin
            sum_q[W*q +: W] <= add_y;
        end
    end
    if (f2 && f2_p == 2'd3) begin
        for (q = 0; q < 3; q = q + 1) begin
            wr_data_reg[W*(3-q) +: W] <= sum_q[W*q +: W];
        end
        wr_data_reg[W*0 +: W] <= add_y;
        wr_en_reg <= {pix_w[0], pix_w[1], pix_w[2], pix_w[3]};
        wr_addr_reg <= addr_w;
        if (last_w) begin
            tiles <= tiles + 1'b1;
        end
    end

    if (rst || start) begin
        p <= 2'd0;
        tiles <= 24'd0;
        feeding <= 1'b0;
        f1 <= 1'b0;
        f2 <= 1'b0;
        wr_en_reg <= 4'b0000;
    end
end

wire unused_ok = &{1'b0, wg_offsets, 1'b0};   // offsets past the bank address

endmodule

`resetall
