/*
 * pesto_prog_mem: the program memory: 2**PA 32-bit words (step and schedule descriptors, pass
 * tables, issue lists, word-group masks), stored as two halves of 64-bit rows so the program
 * loader writes a whole beat per cycle and the layer-mode converter single words. Two read
 * ports, one cycle latency; port A shares its address with the writes.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_prog_mem #
(
    // word address width (32-bit words)
    parameter PA = 14
)
(
    input  wire          clk,

    // writes: a 64-bit row (both halves) or one word (one half)
    input  wire [1:0]    wr_en,
    input  wire [PA-2:0] wr_row,
    input  wire [63:0]   wr_data,

    input  wire [PA-1:0] a_addr,
    output wire [31:0]   a_data,
    input  wire [PA-1:0] b_addr,
    output wire [31:0]   b_data
);

wire [31:0] a_lo, a_hi, b_lo, b_hi;
reg a_half, b_half;
wire writing = wr_en != 2'b00;

always @(posedge clk) begin
    a_half <= a_addr[0];
    b_half <= b_addr[0];
end

pesto_ram_tdp #(.WIDTH(32), .ADDR_WIDTH(PA-1)) lo_inst (
    .clk(clk),
    .a_wr_en(wr_en[0]), .a_addr(writing ? wr_row : a_addr[PA-1:1]), .a_wr_data(wr_data[31:0]),
    .a_rd_data(a_lo),
    .b_addr(b_addr[PA-1:1]), .b_rd_data(b_lo)
);

pesto_ram_tdp #(.WIDTH(32), .ADDR_WIDTH(PA-1)) hi_inst (
    .clk(clk),
    .a_wr_en(wr_en[1]), .a_addr(writing ? wr_row : a_addr[PA-1:1]), .a_wr_data(wr_data[63:32]),
    .a_rd_data(a_hi),
    .b_addr(b_addr[PA-1:1]), .b_rd_data(b_hi)
);

assign a_data = a_half ? a_hi : a_lo;
assign b_data = b_half ? b_hi : b_lo;

endmodule

`resetall
