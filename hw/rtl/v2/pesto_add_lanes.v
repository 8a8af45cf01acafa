/*
 * pesto_add_lanes: the residual add of the numeric contract (numerics.add) on LANES int16
 * lanes at once: each operand is moved to the output format (an exact left shift, or a rounding
 * right shift: round half up), the two are summed exactly, ReLU'd if asked, and saturated to
 * int16. Left shifts up to 15 and right shifts up to 16 (more gives the same result) cover every
 * rescaling the compiler accepts. With add = 0 operand b is ignored (ReLU / copy of a).
 *
 * Two cycles of latency, one word per cycle.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_add_lanes #
(
    // int16 lanes per word
    parameter LANES = 16
)
(
    input  wire                  clk,

    input  wire [3:0]            lsh_a,
    input  wire [4:0]            rsh_a,
    input  wire [3:0]            lsh_b,
    input  wire [4:0]            rsh_b,
    input  wire                  add,
    input  wire                  relu,

    input  wire [16*LANES-1:0]   a,
    input  wire [16*LANES-1:0]   b,
    output wire [16*LANES-1:0]   y
);

// The shift amounts are the same on every lane; per lane, an operand v becomes one arithmetic
// right shift of v * 2**15 by s = 15 - lsh (a left shift) or s = 15 + rsh (a right shift), plus
// the rounding bit, the highest bit shifted out: v[rsh - 1] (round half up; zero for a left
// shift). The exact sum needs 32 bits; a's rounding bit enters the adder as its carry, b's is
// added while b is still 17 bits wide (it can only be set by a right shift).
// (a right shift past 16 gives what 16 gives: 0 for every int16)
wire [4:0] rsh_a16 = rsh_a > 5'd16 ? 5'd16 : rsh_a;
wire [4:0] rsh_b16 = rsh_b > 5'd16 ? 5'd16 : rsh_b;
wire [4:0] s_a = (rsh_a16 != 5'd0) ? 5'd15 + rsh_a16 : 5'd15 - {1'b0, lsh_a};
wire [4:0] s_b = (rsh_b16 != 5'd0) ? 5'd15 + rsh_b16 : 5'd15 - {1'b0, lsh_b};
wire [3:0] rb_a = rsh_a16[3:0] - 1'b1;    // the rounding bit's index (rsh = 16: bit 15)
wire [3:0] rb_b = rsh_b16[3:0] - 1'b1;

reg [31*LANES-1:0] ra, rb;                // the shifted operands (31 bits: v << 15 at most)
reg [LANES-1:0] ca;                       // a's rounding bit
reg [16*LANES-1:0] y_reg;
reg relu_q;

assign y = y_reg;

genvar k;
generate
    for (k = 0; k < LANES; k = k + 1) begin : lane
        wire [15:0] va = a[16*k +: 16];
        wire [15:0] vb = b[16*k +: 16];
        wire signed [30:0] xa = $signed({va, 15'd0}) >>> s_a;
        wire signed [30:0] xb = $signed({vb, 15'd0}) >>> s_b;
        wire signed [16:0] b_round = $signed(xb[16:0]) + $signed({16'd0, vb[rb_b]});
        always @(posedge clk) begin
            ra[31*k +: 31] <= xa;
            ca[k] <= rsh_a16 != 5'd0 && va[rb_a];
            rb[31*k +: 31] <= !add ? 31'd0 : (rsh_b16 != 5'd0) ? {{14{b_round[16]}}, b_round} : xb;
        end
    end
endgenerate

always @(posedge clk) begin
    relu_q <= relu;
end

integer l;
reg signed [31:0] sum;
reg [16*LANES-1:0] y_next;

always @* begin
    for (l = 0; l < LANES; l = l + 1) begin
        sum = $signed({ra[31*l+30], ra[31*l +: 31]}) + $signed({rb[31*l+30], rb[31*l +: 31]}) +
              $signed({31'd0, ca[l]});
        if (relu_q && sum[31]) begin
            y_next[16*l +: 16] = 16'd0;
        end else if (!sum[31] && sum[30:15] != 16'd0) begin
            y_next[16*l +: 16] = 16'h7FFF;
        end else if (sum[31] && sum[30:15] != 16'hFFFF) begin
            y_next[16*l +: 16] = 16'h8000;
        end else begin
            y_next[16*l +: 16] = sum[15:0];
        end
    end
end

always @(posedge clk) begin
    y_reg <= y_next;
end

endmodule

`resetall
