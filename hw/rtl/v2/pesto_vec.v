/*
 * pesto_vec: the vector unit, the network's glue between convs, one output word (one pixel, one
 * word group) at a time, in (y, x, g) order:
 *
 *   ADD       d = numerics.add(a, b) (both rescaled, summed, ReLU, saturated): two reads a word
 *   SHORTCUT  option A: d[c, y, x] = a[c - pad_before, s*y, s*x] (zero outside a): one read a
 *             word; a channel offset that is not a multiple of LANES joins two source words
 *   RELU      d = max(a, 0), or a copy (relu = 0): one read a word
 *
 * Reads use port B of the activation memory, writes port A; a word is written four cycles
 * after its first read. Lanes past a tensor's channels hold zeros (every writer keeps them so),
 * which the shortcut relies on. The add unit (pesto_add_lanes) is the engine's, shared with
 * pesto_writer: this unit drives its operands and controls and takes the result two cycles later.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_vec #
(
    // channels per word
    parameter LANES = 16,
    // bank address width
    parameter AW = 10
)
(
    input  wire                   clk,
    input  wire                   rst,

    input  wire                   start,
    input  wire [3:0]             op,
    input  wire                   relu,
    input  wire                   add_relu,
    input  wire [3:0]             lsh_a,
    input  wire [4:0]             rsh_a,
    input  wire [3:0]             lsh_b,
    input  wire [4:0]             rsh_b,
    input  wire                   stride2,
    input  wire [11:0]            pad_before,

    // tensors: a (source), b (the add's second operand), d (destination)
    input  wire [AW-1:0]          a_base,
    input  wire [19:0]            a_plane,
    input  wire [11:0]            a_w2,
    input  wire                   a_phase,
    input  wire [7:0]             a_groups,
    input  wire [AW-1:0]          b_base,
    input  wire [19:0]            b_plane,
    input  wire [11:0]            b_w2,
    input  wire                   b_phase,
    input  wire [AW-1:0]          d_base,
    input  wire [19:0]            d_plane,
    input  wire [11:0]            d_w2,
    input  wire                   d_phase,
    input  wire [7:0]             d_groups,
    input  wire [11:0]            d_h,
    input  wire [11:0]            d_w,

    output wire                   rd,
    output wire [1:0]             rd_bank,
    output wire [AW-1:0]          rd_addr,
    input  wire [8*16*LANES-1:0]  rd_data,

    output wire                   wr,
    output wire [1:0]             wr_bank,
    output wire [AW-1:0]          wr_addr,
    output wire [16*LANES-1:0]    wr_data,

    // the shared add unit: {add, relu, lsh_a, rsh_a, lsh_b, rsh_b} (pesto_add_lanes' inputs)
    output wire [19:0]            add_ctl,
    output wire [16*LANES-1:0]    add_a,
    output wire [16*LANES-1:0]    add_b,
    input  wire [16*LANES-1:0]    add_y,

    output wire                   busy
);

/* verilator lint_off UNUSEDPARAM */
`include "pesto_program.vh"
/* verilator lint_on UNUSEDPARAM */

localparam W = 16 * LANES;
localparam LW = $clog2(LANES);

reg running;
reg second;                         // ADD: the cycle that reads b
reg [11:0] y, x;
reg [7:0] g;
reg [19:0] a_row, b_row, d_row, a_goff, b_goff, d_goff;
reg [12:0] sy;                      // the source row (shortcut: s*y)
reg [12:0] sx;

wire is_add = op == PROG_OP_ADD;
wire is_short = op == PROG_OP_SHORTCUT;
wire [7:0] q = pad_before[LW +: 8];
wire [LW-1:0] r = pad_before[LW-1:0];
wire signed [8:0] hg = $signed({1'b0, g}) - $signed({1'b0, q});
wire a_valid = !is_short || (hg >= 0 && hg < $signed({1'b0, a_groups}));

// (row, column) parts of the three addresses
wire [12:0] ay = is_short ? sy : {1'b0, y};
wire [12:0] ax = is_short ? sx : {1'b0, x};
wire [12:0] ayp = ay + a_phase;
wire [12:0] axp = ax + a_phase;
wire [12:0] bxp = {1'b0, x} + b_phase;
wire [12:0] yp = {1'b0, y} + d_phase;
wire [12:0] dxp = {1'b0, x} + d_phase;
wire [19:0] a_addr = {{20-AW{1'b0}}, a_base} + a_goff + a_row + {8'd0, axp[12:1]};
wire [19:0] b_addr = {{20-AW{1'b0}}, b_base} + b_goff + b_row + {8'd0, bxp[12:1]};
wire [19:0] d_addr = {{20-AW{1'b0}}, d_base} + d_goff + d_row + {8'd0, dxp[12:1]};
wire [1:0] a_bank = {ayp[0], axp[0]};
wire [1:0] b_bank = {yp[0], bxp[0]};   // b has d's rows (same shape)
wire [1:0] d_bank = {yp[0], dxp[0]};

wire last_g = g == d_groups - 1'b1;
wire last_x = x == d_w - 1'b1;
wire last_y = y == d_h - 1'b1;

assign rd = running && (second ? 1'b1 : a_valid);
assign rd_bank = second ? b_bank : a_bank;
assign rd_addr = second ? b_addr[AW-1:0] : a_addr[AW-1:0];
assign busy = running || s1 || s2 || s3 || s4;

// next source row: does (row + phase) >> 1 advance?
wire [12:0] sy_next = sy + (stride2 ? 13'd2 : 13'd1);
wire [12:0] ya_next_p = (is_short ? sy_next : {1'b0, y} + 13'd1) + a_phase;
wire [12:0] y_next_p = {1'b0, y} + 13'd1 + d_phase;
wire [12:0] yb_next_p = {1'b0, y} + 13'd1 + b_phase;
wire [12:0] yb_p = {1'b0, y} + b_phase;

always @(posedge clk) begin
    if (start) begin
        running <= 1'b1;
        second <= 1'b0;
        y <= 12'd0;
        x <= 12'd0;
        g <= 8'd0;
        sy <= 13'd0;
        sx <= 13'd0;
        a_row <= 20'd0;
        b_row <= 20'd0;
        d_row <= 20'd0;
        a_goff <= 20'd0;
        b_goff <= 20'd0;
        d_goff <= 20'd0;
    end else if (running) begin
        if (is_add && !second) begin
            second <= 1'b1;
        end else begin
            second <= 1'b0;
            if (!last_g) begin
                g <= g + 1'b1;
                d_goff <= d_goff + d_plane;
                b_goff <= b_goff + b_plane;
                if (hg >= 0) begin
                    a_goff <= a_goff + a_plane;
                end
            end else begin
                g <= 8'd0;
                d_goff <= 20'd0;
                b_goff <= 20'd0;
                a_goff <= 20'd0;
                if (!last_x) begin
                    x <= x + 1'b1;
                    sx <= sx + (stride2 ? 13'd2 : 13'd1);
                end else begin
                    x <= 12'd0;
                    sx <= 13'd0;
                    y <= y + 1'b1;
                    sy <= sy_next;
                    if (y_next_p[12:1] != yp[12:1]) begin
                        d_row <= d_row + {8'd0, d_w2};
                    end
                    if (yb_next_p[12:1] != yb_p[12:1]) begin
                        b_row <= b_row + {8'd0, b_w2};
                    end
                    if (ya_next_p[12:1] != ayp[12:1]) begin
                        a_row <= a_row + {8'd0, a_w2};
                    end
                    if (last_y) begin
                        running <= 1'b0;
                    end
                end
            end
        end
    end
    if (rst) begin
        running <= 1'b0;
    end
end

// ------------------------------------------------------------------ data path
// s1: a's word arrives (read last cycle); s2: operands into the add unit; s4: result out
reg s1, s2, s3, s4;
reg s1_read, s1_first;
reg [1:0] s1_bank, s1_wbank, s2_wbank, s3_wbank, s4_wbank;
reg [AW-1:0] s1_waddr, s2_waddr, s3_waddr, s4_waddr;
reg [W-1:0] rot_prev, a2;
reg [1:0] b_bank_q;

// the shortcut's channel offset r (0 elsewhere): output lane j is lane j - r of this source word
// for j >= r, else lane j - r + LANES of the previous one (zero for the first group): both are
// lane j of the word rotated by r lanes, this one's or the previous one's, so one rotation
// serves both
wire [LW-1:0] r_eff = is_short ? r : {LW{1'b0}};
wire [W-1:0] a_raw = s1_read ? rd_data[W*(2*s1_bank+1) +: W] : {W{1'b0}};
// the rotation in stages of 4:1 choices (one LUT6 a bit each): stage k rotates by
// r_eff[2k +: 2] * 4**k lanes
localparam STAGES = (LW + 1) / 2;
wire [2*STAGES-1:0] r_digits = r_eff;
// the lane that lane j of stage k takes for digit d
function integer rot_from;
    input integer j, d, k;
    begin
        rot_from = (j + 4 * LANES - (d << (2 * k))) % LANES;
    end
endfunction
reg [W-1:0] rot_stage [0:STAGES];
reg [1:0] digit;
integer k, lane_j;
always @* begin
    rot_stage[0] = a_raw;
    for (k = 0; k < STAGES; k = k + 1) begin
        // one case over constant lane indices (a variable index would be a wide shifter, an if
        // per digit a priority chain)
        digit = r_digits[2*k +: 2];
        for (lane_j = 0; lane_j < LANES; lane_j = lane_j + 1) begin
            case (digit)
                2'd0: rot_stage[k+1][16*lane_j +: 16] = rot_stage[k][16*lane_j +: 16];
                2'd1: rot_stage[k+1][16*lane_j +: 16] = rot_stage[k][16*rot_from(lane_j, 1, k) +: 16];
                2'd2: rot_stage[k+1][16*lane_j +: 16] = rot_stage[k][16*rot_from(lane_j, 2, k) +: 16];
                default: rot_stage[k+1][16*lane_j +: 16] = rot_stage[k][16*rot_from(lane_j, 3, k) +: 16];
            endcase
        end
    end
end
wire [W-1:0] rot = rot_stage[STAGES];
wire [W-1:0] prev = s1_first ? {W{1'b0}} : rot_prev;
reg [W-1:0] a_joined;
integer j;
always @* begin
    for (j = 0; j < LANES; j = j + 1) begin
        a_joined[16*j +: 16] = (j >= r_eff) ? rot[16*j +: 16] : prev[16*j +: 16];
    end
end
wire [W-1:0] b_word = rd_data[W*(2*b_bank_q+1) +: W];
wire [W-1:0] y_word = add_y;

always @(posedge clk) begin
    s1 <= running && !second;
    s1_read <= rd && !second;
    s1_first <= g == 8'd0;
    s1_bank <= a_bank;
    s1_wbank <= d_bank;
    s1_waddr <= d_addr[AW-1:0];
    b_bank_q <= b_bank;
    if (s1) begin
        rot_prev <= rot;
    end
    s2 <= s1;
    a2 <= a_joined;
    s2_wbank <= s1_wbank;
    s2_waddr <= s1_waddr;
    s3 <= s2;
    s3_wbank <= s2_wbank;
    s3_waddr <= s2_waddr;
    s4 <= s3;
    s4_wbank <= s3_wbank;
    s4_waddr <= s3_waddr;
    if (rst || start) begin
        s1 <= 1'b0;
        s2 <= 1'b0;
        s3 <= 1'b0;
        s4 <= 1'b0;
    end
end

assign add_ctl = {is_add, is_add ? add_relu : (op == PROG_OP_RELU && relu),
                  is_add ? lsh_a : 4'd0, is_add ? rsh_a : 5'd0, lsh_b, rsh_b};
assign add_a = a2;
assign add_b = b_word;

assign wr = s4;
assign wr_bank = s4_wbank;
assign wr_addr = s4_waddr;
assign wr_data = y_word;

wire unused_ok = &{1'b0, a_addr[19:AW], b_addr[19:AW], d_addr[19:AW], pad_before,
                   ya_next_p[0], y_next_p[0], yb_next_p[0], yb_p[0], 1'b0};

endmodule

`resetall
