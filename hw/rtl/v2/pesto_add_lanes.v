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

reg [32*LANES-1:0] ra, rb;
reg [16*LANES-1:0] y_reg;
reg relu_q;

assign y = y_reg;

// v moved to the output format: v << lsh, or (v + 2**(rsh-1)) >>> rsh
function [31:0] rescale;
    input [15:0] v;
    input [3:0] lsh;
    input [4:0] rsh;
    reg signed [31:0] wide;
    reg signed [31:0] half;
    begin
        wide = $signed({{16{v[15]}}, v});
        if (rsh != 5'd0) begin
            half = $signed(32'd1 << (rsh - 5'd1));
            rescale = (wide + half) >>> rsh;
        end else begin
            rescale = wide <<< lsh;
        end
    end
endfunction

integer l;
reg signed [32:0] sum;
reg [16*LANES-1:0] y_next;

always @* begin
    for (l = 0; l < LANES; l = l + 1) begin
        sum = $signed({ra[32*l+31], ra[32*l +: 32]}) + $signed({rb[32*l+31], rb[32*l +: 32]});
        if (relu_q && sum[32]) begin
            y_next[16*l +: 16] = 16'd0;
        end else if (!sum[32] && sum[31:15] != 17'd0) begin
            y_next[16*l +: 16] = 16'h7FFF;
        end else if (sum[32] && sum[31:15] != 17'h1FFFF) begin
            y_next[16*l +: 16] = 16'h8000;
        end else begin
            y_next[16*l +: 16] = sum[15:0];
        end
    end
end

always @(posedge clk) begin
    relu_q <= relu;
    for (l = 0; l < LANES; l = l + 1) begin
        ra[32*l +: 32] <= rescale(a[16*l +: 16], lsh_a, rsh_a);
        rb[32*l +: 32] <= add ? rescale(b[16*l +: 16], lsh_b, rsh_b) : 32'd0;
    end
end

always @(posedge clk) begin
    y_reg <= y_next;
end

endmodule

`resetall
