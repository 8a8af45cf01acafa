/*
 * pesto_fat_pe: one processing element of accelerator v2. It takes one PE group -- the nine
 * kernel taps x LANES channels of one output channel n -- in GROUP_CYCLES consecutive cycles, a
 * slice of LANES / GROUP_CYCLES channels of every tap each cycle (the window and the issue unit
 * choose it), and adds the ternary products into its partial sum for channel n:
 * 9 * LANES / GROUP_CYCLES add/sub/skip lanes, no multiplier (a 2-bit code selects +a, -a or
 * nothing; -a = ~a + 1, the +1s ride as the adders' carries, below). The slices of one group are entries of the same
 * channel in consecutive cycles; only the first slice may carry in_first.
 *
 * The adder tree is binary and registered at every level (yosys maps each adder onto one carry
 * chain, a LUT per bit, where an unregistered tree of many operands becomes carry-save adders at
 * two LUTs per bit): level 0 are the terms, (a & code[0]) ^ code[1] -- a or ~a or 0, 16 bits --
 * and every adder of a level takes one of the not yet added +1s of the negated terms as its carry
 * in. A tree over T terms has enough adders for T - 1 of them, the accumulate adds the last.
 *
 * Partial sums live in three accumulator RAMs of 2**N_WIDTH words: the tile being accumulated
 * (in_bank), and two tiles the drain reads (rd_bank), so the drain has two tile periods to cover
 * its own latency. The first entry of a channel in a block loads the sum instead of adding
 * (in_first). The accumulation has the RAM's read port while it uses a bank; the engine drains
 * a bank only when no entry of it is in flight.
 *
 * Pipeline (one entry per cycle, no stalls), LEVELS = ceil(log2(9 * LANES / GROUP_CYCLES)):
 *   c0 taps + codes in -> c1 .. cLEVELS the tree's levels (the accumulator read issued in
 *   cLEVELS-1) -> acc[n] = (first ? 0 : acc[n]) + sum written at the end of cLEVELS;
 *   pesto_fat_pe_latency (pesto_fat_pe.vh) = LEVELS + 1. A channel accumulated in two
 *   consecutive cycles takes the value of the first from a forward register.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_fat_pe #
(
    // channels per PE group word
    parameter LANES = 16,
    // cycles per group: the lanes are LANES / GROUP_CYCLES channels of each of the nine taps
    parameter GROUP_CYCLES = 2,
    // output channel index width (accumulators per bank: 2**N_WIDTH)
    parameter N_WIDTH = 9
)
(
    input  wire                     clk,
    input  wire                     rst,

    // c0: this cycle's slice of the nine taps, SLICE = LANES / GROUP_CYCLES channels each (tap
    // t = 3*ky + kx at [16*SLICE*t +: 16*SLICE])
    // and their codes (at [2*SLICE*t +: 2*SLICE])
    input  wire [9*16*LANES/GROUP_CYCLES-1:0] taps,
    input  wire [9*2*LANES/GROUP_CYCLES-1:0]  codes,
    input  wire                     in_valid,
    input  wire                     in_first,
    input  wire [N_WIDTH-1:0]       in_n,
    input  wire [1:0]               in_bank,

    // drain read port: acc[rd_addr] of bank rd_bank, one cycle later
    input  wire [1:0]               rd_bank,
    input  wire [N_WIDTH-1:0]       rd_addr,
    output wire [31:0]              rd_data
);

`include "pesto_fat_pe.vh"

localparam TERMS = pesto_fat_pe_terms(LANES, GROUP_CYCLES);
localparam LEVELS = pesto_adder_levels(TERMS);
localparam SUM_WIDTH = 16 + LEVELS;            // a level-k sum of 2**k terms and their +1s
localparam CTRL_WIDTH = N_WIDTH + 4;

// nodes of tree level lv (level 0: the terms)
function integer level_nodes;
    input integer lv;
    integer k;
    begin
        level_nodes = TERMS;
        for (k = 0; k < lv; k = k + 1) level_nodes = (level_nodes + 1) / 2;
    end
endfunction

// code 1 = +1, 3 = -1, 0 = 0 (2 is reserved and refused when the codes load):
// term = (a & code[0]) ^ code[1], so -1 gives ~a and its +1 is added as a carry in
function [15:0] term;
    input [15:0] a;
    input [1:0] code;
    begin
        term = (a & {16{code[0]}}) ^ {16{code[1]}};
    end
endfunction

// control travels beside the data: {valid, first, bank, n}, one word per level
reg [CTRL_WIDTH-1:0] ctrl [1:LEVELS];

// level lv's sums in one unpacked array each (a machine word per sum in a simulator), the +1s
// not yet added beside them
genvar lv, i;
generate
    for (lv = 0; lv <= LEVELS; lv = lv + 1) begin : level
        localparam NODES = level_nodes(lv);
        localparam W = 16 + lv;
        wire [W-1:0] sum [0:NODES-1];
        wire [TERMS-1:0] ones;
        if (lv == 0) begin : leaves
            for (i = 0; i < TERMS; i = i + 1) begin : leaf
                assign sum[i] = term(taps[16*i +: 16], codes[2*i +: 2]);
                assign ones[i] = codes[2*i + 1];
            end
        end else begin : adders
            localparam PREV = level_nodes(lv - 1);
            reg [TERMS-1:0] ones_q;
            for (i = 0; i < NODES; i = i + 1) begin : node
                wire [W-2:0] a = level[lv-1].sum[2*i];
                wire [W-2:0] b;
                if (2*i + 1 < PREV) begin : pair
                    assign b = level[lv-1].sum[2*i+1];
                end else begin : single
                    assign b = {(W-1){1'b0}};
                end
                reg [W-1:0] q;      // a register of its own (no array element: cheap in a simulator)
                always @(posedge clk) begin
                    q <= {a[W-2], a} + {b[W-2], b} + {{(W-1){1'b0}}, level[lv-1].ones[i]};
                end
                assign sum[i] = q;
            end
            always @(posedge clk) begin
                ones_q <= level[lv-1].ones >> NODES;
            end
            assign ones = ones_q;
        end
    end
endgenerate

wire signed [SUM_WIDTH-1:0] group_sum = level[LEVELS].sum[0];
wire group_one = level[LEVELS].ones[0];
// the tree's adders took all the other +1s
wire unused_ok = &{1'b0, level[LEVELS].ones[TERMS-1:1], 1'b0};

wire valid_l = ctrl[LEVELS][CTRL_WIDTH-1];
wire first_l = ctrl[LEVELS][CTRL_WIDTH-2];
wire [1:0] bank_l = ctrl[LEVELS][N_WIDTH +: 2];
wire [N_WIDTH-1:0] n_l = ctrl[LEVELS][N_WIDTH-1:0];
// the level before (a tree over 9 or more terms has at least four): the accumulator read
wire [CTRL_WIDTH-1:0] ctrl_r = ctrl[LEVELS-1];
wire valid_r = ctrl_r[CTRL_WIDTH-1];
wire [1:0] bank_r = ctrl_r[N_WIDTH +: 2];
wire [N_WIDTH-1:0] n_r = ctrl_r[N_WIDTH-1:0];

// accumulate and write back
reg fwd_valid;
reg [1:0] fwd_bank;
reg [N_WIDTH-1:0] fwd_n;
reg signed [31:0] fwd_acc;
reg [1:0] rd_bank_q;

wire [31:0] ram_rd [0:2];
wire signed [31:0] old = (fwd_valid && fwd_bank == bank_l && fwd_n == n_l) ? fwd_acc : $signed(ram_rd[bank_l]);
wire signed [31:0] acc_new = (first_l ? 32'sd0 : old) + {{(32-SUM_WIDTH){group_sum[SUM_WIDTH-1]}}, group_sum}
                             + {31'd0, group_one};

integer r;
always @(posedge clk) begin
    ctrl[1] <= {in_valid, in_first, in_bank, in_n};
    for (r = 2; r <= LEVELS; r = r + 1) begin
        ctrl[r] <= ctrl[r-1];
    end
    fwd_valid <= valid_l;
    fwd_bank <= bank_l;
    fwd_n <= n_l;
    fwd_acc <= acc_new;
    rd_bank_q <= rd_bank;

    if (rst) begin
        for (r = 1; r <= LEVELS; r = r + 1) begin
            ctrl[r][CTRL_WIDTH-1] <= 1'b0;
        end
        fwd_valid <= 1'b0;
    end
end

genvar b;
generate
    for (b = 0; b < 3; b = b + 1) begin : bank
        pesto_ram_sdp #(.WIDTH(32), .ADDR_WIDTH(N_WIDTH)) acc_inst (
            .clk(clk),
            .wr_en(valid_l && bank_l == b), .wr_addr(n_l), .wr_data(acc_new),
            .rd_addr((valid_r && bank_r == b) ? n_r : rd_addr), .rd_data(ram_rd[b])
        );
    end
endgenerate

assign rd_data = ram_rd[rd_bank_q];

endmodule

`resetall
