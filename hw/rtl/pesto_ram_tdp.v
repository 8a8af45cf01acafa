/*
 * pesto_ram_tdp: dual-port RAM with a read/write port A and a read port B, both with one
 * cycle read latency: one block RAM serves two PEs (port A also takes the writes while the
 * activation packet loads).
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_ram_tdp #
(
    // word width in bits
    parameter WIDTH = 256,
    // address width: the RAM holds 2**ADDR_WIDTH words
    parameter ADDR_WIDTH = 10
)
(
    input  wire                  clk,

    input  wire                  a_wr_en,
    input  wire [ADDR_WIDTH-1:0] a_addr,
    input  wire [WIDTH-1:0]      a_wr_data,
    output wire [WIDTH-1:0]      a_rd_data,

    input  wire [ADDR_WIDTH-1:0] b_addr,
    output wire [WIDTH-1:0]      b_rd_data
);

reg [WIDTH-1:0] mem [0:(1 << ADDR_WIDTH)-1];
reg [WIDTH-1:0] a_rd_data_reg;
reg [WIDTH-1:0] b_rd_data_reg;

assign a_rd_data = a_rd_data_reg;
assign b_rd_data = b_rd_data_reg;

always @(posedge clk) begin
    if (a_wr_en) begin
        mem[a_addr] <= a_wr_data;
    end
    a_rd_data_reg <= mem[a_addr];
end

always @(posedge clk) begin
    b_rd_data_reg <= mem[b_addr];
end

endmodule

`resetall
