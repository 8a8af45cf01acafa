/*
 * pesto_ram_sdp: simple dual-port RAM, one write port and one read port with a registered
 * output (one cycle read latency), written so yosys and Vivado infer block or distributed RAM.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_ram_sdp #
(
    // word width in bits
    parameter WIDTH = 64,
    // address width
    parameter ADDR_WIDTH = 10,
    // words held (at most 2**ADDR_WIDTH)
    parameter DEPTH = 1 << ADDR_WIDTH
)
(
    input  wire                  clk,

    input  wire                  wr_en,
    input  wire [ADDR_WIDTH-1:0] wr_addr,
    input  wire [WIDTH-1:0]      wr_data,

    input  wire [ADDR_WIDTH-1:0] rd_addr,
    output wire [WIDTH-1:0]      rd_data
);

reg [WIDTH-1:0] mem [0:DEPTH-1];
reg [WIDTH-1:0] rd_data_reg;

assign rd_data = rd_data_reg;

always @(posedge clk) begin
    if (wr_en) begin
        mem[wr_addr] <= wr_data;
    end
    rd_data_reg <= mem[rd_addr];
end

endmodule

`resetall
