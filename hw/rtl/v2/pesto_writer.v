/*
 * pesto_writer: writes the drain's finished word groups into the destination tensor (phase 1:
 * the tile's pixel (dy, dx) lives in bank (1 - dy, 1 - dx)). Without a residual the four pixel
 * words go to the four banks in one cycle. With a fused residual add, each pixel in turn reads
 * its residual word (port B of the same bank, at the same offset from the residual's base),
 * goes through pesto_add_lanes and is written back (port A): four cycles per word group, and in
 * place when the residual is the destination. The writer shares the banks' ports with the
 * fill and goes first (ports_busy holds the fill for that cycle). The add unit is the engine's,
 * shared with pesto_vec (they never run at once): the writer drives its operands and takes the
 * sum two cycles later.
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

reg [1:0] p;                       // pixel in turn (fused add)
reg [23:0] tiles;
reg [3:0] wr_en_reg;
reg [4*AW-1:0] wr_addr_reg;
reg [4*W-1:0] wr_data_reg;
// fused add pipeline: read (t) -> operands (t+1) -> add unit (t+2, t+3) -> write
reg v1, v2, v3;
reg [1:0] b1, b2, b3;
reg [AW-1:0] o1, o2, o3;
reg last1, last2, last3;
reg [W-1:0] a1;

wire direct = !res_en;
wire take = wg_valid && (direct || p == 2'd3);
wire [1:0] bank_p = 2'd3 - p;
wire [W-1:0] word_p = wg_words[W*p +: W];
wire [19:0] off_p = wg_offsets[20*p +: 20];
wire [W-1:0] res_word = rd_data[W*b1 +: W];
wire [W-1:0] sum_word = add_y;

assign wg_ready = take;
assign wr_en = wr_en_reg;
assign wr_addr = wr_addr_reg;
assign wr_data = wr_data_reg;
assign done = tiles == blocks && !v1 && !v2 && !v3;
assign ports_busy = wr_en_reg != 4'b0000 || (res_en && wg_valid);
assign res_rd = res_en && wg_valid;

genvar b;
generate
    for (b = 0; b < 4; b = b + 1) begin : bank
        assign rd_addr[AW*b +: AW] = res_base + off_p[AW-1:0];
    end
endgenerate

assign add_a = a1;
assign add_b = res_word;

integer q;
always @(posedge clk) begin
    wr_en_reg <= 4'b0000;
    if (direct && wg_valid) begin
        for (q = 0; q < 4; q = q + 1) begin
            wr_en_reg[3-q] <= wg_pixels[q];
            wr_addr_reg[AW*(3-q) +: AW] <= dst_base + wg_offsets[20*q +: AW];
            wr_data_reg[W*(3-q) +: W] <= wg_words[W*q +: W];
        end
        if (wg_tile_last) begin
            tiles <= tiles + 1'b1;
        end
    end

    // fused add: one pixel per cycle
    v1 <= res_en && wg_valid && wg_pixels[p];
    b1 <= bank_p;
    o1 <= dst_base + off_p[AW-1:0];
    a1 <= word_p;
    last1 <= res_en && wg_valid && p == 2'd3 && wg_tile_last;
    v2 <= v1;
    b2 <= b1;
    o2 <= o1;
    last2 <= last1;
    v3 <= v2;
    b3 <= b2;
    o3 <= o2;
    last3 <= last2;
    if (res_en && wg_valid) begin
        p <= p + 1'b1;
    end
    for (q = 0; q < 4; q = q + 1) begin
        if (v3 && b3 == q[1:0]) begin
            wr_en_reg[q] <= 1'b1;
            wr_addr_reg[AW*q +: AW] <= o3;
            wr_data_reg[W*q +: W] <= sum_word;
        end
    end
    if (last3) begin
        tiles <= tiles + 1'b1;
    end

    if (rst || start) begin
        p <= 2'd0;
        tiles <= 24'd0;
        v1 <= 1'b0;
        v2 <= 1'b0;
        v3 <= 1'b0;
        last1 <= 1'b0;
        last2 <= 1'b0;
        last3 <= 1'b0;
        wr_en_reg <= 4'b0000;
    end
end

wire unused_ok = &{1'b0, off_p[19:AW], wg_offsets, 1'b0};

endmodule

`resetall
