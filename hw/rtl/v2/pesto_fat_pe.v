/*
 * pesto_fat_pe: one processing element of accelerator v2. It takes one PE group -- the nine
 * kernel taps x LANES channels of one output channel n -- in GROUP_CYCLES consecutive cycles, a
 * slice of LANES / GROUP_CYCLES channels of every tap each cycle (the window and the issue unit
 * choose it), and adds the ternary products into its partial sum for channel n:
 * 9 * LANES / GROUP_CYCLES add/sub/skip lanes, no multiplier (a 2-bit code selects +a, -a or
 * nothing; -a = ~a + 1, the +1s are counted). The slices of one group are entries of the same
 * channel in consecutive cycles; only the first slice may carry in_first.
 *
 * Partial sums live in three accumulator RAMs of 2**N_WIDTH words: the tile being accumulated
 * (in_bank), and two tiles the drain reads (rd_bank), so the drain has two tile periods to cover
 * its own latency. The first entry of a channel in
 * a block loads the sum instead of adding (in_first). The accumulation has the RAM's read port
 * while it uses a bank; the engine drains a bank only when no entry of it is in flight.
 *
 * Pipeline (one entry per cycle, no stalls):
 *   c0 taps + codes in -> c1 sums of 4 lanes -> c2 sums of 16 -> c3 group sum (RAM read issued)
 *   -> c4 acc[n] = (first ? 0 : acc[n]) + sum, written back; a channel accumulated in two
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

    // c0: this cycle's slice of the nine taps (tap t = 3*ky + kx at [16*SLICE*t +: 16*SLICE])
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

localparam SLICE = LANES / GROUP_CYCLES;       // channels of a tap per cycle
localparam TERMS = 9 * SLICE;
localparam PARTS1 = (TERMS + 3) / 4;
localparam PARTS2 = (PARTS1 + 3) / 4;
localparam CTRL_WIDTH = N_WIDTH + 4;

// c1: sums of four terms and the count of negated lanes (unpacked: one machine word each in a
// simulator, no shifting of fields out of a wide vector)
reg signed [18:0] part1 [0:PARTS1-1];
reg [8:0] minus1;
// c2: sums of sixteen
reg signed [20:0] part2 [0:PARTS2-1];
reg [8:0] minus2;
// c3: the group sum
reg signed [25:0] sum3;

// control travels beside the data: {valid, first, bank, n}
reg [CTRL_WIDTH-1:0] ctrl1, ctrl2, ctrl3;

// c4: accumulate and write back
reg fwd_valid;
reg [1:0] fwd_bank;
reg [N_WIDTH-1:0] fwd_n;
reg signed [31:0] fwd_acc;
reg [1:0] rd_bank_q;

wire valid3 = ctrl3[CTRL_WIDTH-1];
wire first3 = ctrl3[CTRL_WIDTH-2];
wire [1:0] bank3 = ctrl3[N_WIDTH +: 2];
wire [N_WIDTH-1:0] n3 = ctrl3[N_WIDTH-1:0];
wire valid2 = ctrl2[CTRL_WIDTH-1];
wire [1:0] bank2 = ctrl2[N_WIDTH +: 2];
wire [N_WIDTH-1:0] n2 = ctrl2[N_WIDTH-1:0];

wire [31:0] ram_rd [0:2];
wire signed [31:0] old3 = (fwd_valid && fwd_bank == bank3 && fwd_n == n3) ? fwd_acc : $signed(ram_rd[bank3]);
wire signed [31:0] acc_new = (first3 ? 32'sd0 : old3) + {{6{sum3[25]}}, sum3};

// code 1 = +1, 3 = -1, 0 = 0 (2 is reserved and refused when the codes load):
// term = (a & code[0]) ^ code[1], so -1 gives ~a and its +1 joins the count
function [16:0] term;
    input [15:0] a;
    input [1:0] code;
    begin
        term = ({a[15], a} & {17{code[0]}}) ^ {17{code[1]}};
    end
endfunction

integer p, q, l, r;
reg signed [18:0] part1_next [0:PARTS1-1];
reg [8:0] minus_next;
reg signed [20:0] part2_next [0:PARTS2-1];
reg signed [25:0] sum_next;
reg signed [18:0] s4;
reg signed [20:0] s16;
reg [16:0] tm;

always @* begin
    minus_next = 9'd0;
    for (p = 0; p < PARTS1; p = p + 1) begin
        s4 = 19'sd0;
        for (q = 0; q < 4; q = q + 1) begin
            l = 4 * p + q;
            if (l < TERMS) begin
                tm = term(taps[16*l +: 16], codes[2*l +: 2]);
                s4 = s4 + $signed({{2{tm[16]}}, tm});
                minus_next = minus_next + {8'd0, codes[2*l+1]};
            end
        end
        part1_next[p] = s4;
    end
end

always @* begin
    for (p = 0; p < PARTS2; p = p + 1) begin
        s16 = 21'sd0;
        for (q = 0; q < 4; q = q + 1) begin
            if (4 * p + q < PARTS1) begin
                s16 = s16 + {{2{part1[4*p+q][18]}}, part1[4*p+q]};
            end
        end
        part2_next[p] = s16;
    end
    sum_next = $signed({17'd0, minus2});
    for (p = 0; p < PARTS2; p = p + 1) begin
        sum_next = sum_next + {{5{part2[p][20]}}, part2[p]};
    end
end

always @(posedge clk) begin
    for (r = 0; r < PARTS1; r = r + 1) begin
        part1[r] <= part1_next[r];
    end
    minus1 <= minus_next;
    ctrl1 <= {in_valid, in_first, in_bank, in_n};
    for (r = 0; r < PARTS2; r = r + 1) begin
        part2[r] <= part2_next[r];
    end
    minus2 <= minus1;
    ctrl2 <= ctrl1;
    sum3 <= sum_next;
    ctrl3 <= ctrl2;
    fwd_valid <= valid3;
    fwd_bank <= bank3;
    fwd_n <= n3;
    fwd_acc <= acc_new;
    rd_bank_q <= rd_bank;

    if (rst) begin
        ctrl1[CTRL_WIDTH-1] <= 1'b0;
        ctrl2[CTRL_WIDTH-1] <= 1'b0;
        ctrl3[CTRL_WIDTH-1] <= 1'b0;
        fwd_valid <= 1'b0;
    end
end

genvar b;
generate
    for (b = 0; b < 3; b = b + 1) begin : bank
        pesto_ram_sdp #(.WIDTH(32), .ADDR_WIDTH(N_WIDTH)) acc_inst (
            .clk(clk),
            .wr_en(valid3 && bank3 == b), .wr_addr(n3), .wr_data(acc_new),
            .rd_addr((valid2 && bank2 == b) ? n2 : rd_addr), .rd_data(ram_rd[b])
        );
    end
endgenerate

assign rd_data = ram_rd[rd_bank_q];

endmodule

`resetall
