/*
 * pesto_add_lanes: the residual add of the numeric contract (numerics.add) on LANES int16
 * lanes at once: each operand is moved to the output format (an exact left shift, or a rounding
 * right shift: round half up), the two are summed exactly, ReLU'd if asked, and saturated to
 * int16. Left shifts up to 15 and right shifts up to 16 (more gives the same result) cover every
 * rescaling the compiler accepts. With add = 0 operand b is ignored (ReLU / copy of a).
 *
 * Two cycles of latency, one word per cycle. 2 * LANES DSP48s (the rescaling), none in the
 * PE array.
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

// The shift amounts are the same on every lane, so the rescaling is a multiplication by one
// power of two per operand, on a DSP48 per lane and operand: a left shift is v * 2**lsh; a
// right shift by r (1..16; more gives what 16 gives: 0 for every int16) rounds half up as
// (v * 2**(16 - r) + 2**15) >> 16, the product's upper half. The exact sum needs 32 bits.
wire [4:0] rsh_a16 = rsh_a > 5'd16 ? 5'd16 : rsh_a;
wire [4:0] rsh_b16 = rsh_b > 5'd16 ? 5'd16 : rsh_b;
wire right_a = rsh_a16 != 5'd0;
wire right_b = rsh_b16 != 5'd0;
// the multipliers 2**lsh or 2**(16 - r) as 17-bit signed numbers
wire [4:0] e_a = right_a ? 5'd16 - rsh_a16 : {1'b0, lsh_a};
wire [4:0] e_b = right_b ? 5'd16 - rsh_b16 : {1'b0, lsh_b};
wire signed [16:0] m_a = 17'sd1 << e_a;
wire signed [16:0] m_b = 17'sd1 << e_b;
wire signed [31:0] off_a = right_a ? 32'sd32768 : 32'sd0;
wire signed [31:0] off_b = right_b ? 32'sd32768 : 32'sd0;

reg [32*LANES-1:0] pa, pb;                // the products (and rounding offsets)
reg right_a_q, right_b_q, relu_q;
reg [16*LANES-1:0] y_reg;

assign y = y_reg;

genvar k;
generate
    for (k = 0; k < LANES; k = k + 1) begin : lane
        always @(posedge clk) begin
            pa[32*k +: 32] <= $signed(a[16*k +: 16]) * m_a + off_a;
            // without add, b's product is cleared (the DSP's synchronous reset of its P register),
            // whatever b holds
            if (!add) begin
                pb[32*k +: 32] <= 32'd0;
            end else begin
                pb[32*k +: 32] <= $signed(b[16*k +: 16]) * m_b + off_b;
            end
        end
    end
endgenerate

always @(posedge clk) begin
    right_a_q <= right_a;
    right_b_q <= right_b;
    relu_q <= relu;
end

integer l;
reg signed [31:0] xa, xb, sum;
reg [16*LANES-1:0] y_next;

always @* begin
    for (l = 0; l < LANES; l = l + 1) begin
        xa = right_a_q ? {{16{pa[32*l+31]}}, pa[32*l+16 +: 16]} : pa[32*l +: 32];
        xb = right_b_q ? {{16{pb[32*l+31]}}, pb[32*l+16 +: 16]} : pb[32*l +: 32];
        sum = xa + xb;
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
