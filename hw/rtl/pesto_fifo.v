/*
 * pesto_fifo: synchronous FIFO with AXI-Stream-style handshakes on both sides, storage in a
 * block RAM and a registered output (first word falls through after two cycles).
 * Holds up to 2**ADDR_WIDTH + 1 words.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_fifo #
(
    // word width in bits
    parameter WIDTH = 67,
    // log2 of the storage depth in words
    parameter ADDR_WIDTH = 10
)
(
    input  wire             clk,
    input  wire             rst,

    input  wire [WIDTH-1:0] s_data,
    input  wire             s_valid,
    output wire             s_ready,

    output wire [WIDTH-1:0] m_data,
    output wire             m_valid,
    input  wire             m_ready
);

reg [WIDTH-1:0] mem [0:(1 << ADDR_WIDTH)-1];
reg [ADDR_WIDTH:0] wr_ptr;
reg [ADDR_WIDTH:0] rd_ptr;
reg [WIDTH-1:0] m_data_reg;
reg m_valid_reg;

wire empty = wr_ptr == rd_ptr;
wire full = wr_ptr == {~rd_ptr[ADDR_WIDTH], rd_ptr[ADDR_WIDTH-1:0]};
wire pop = !empty && (!m_valid_reg || m_ready);

assign s_ready = !full;
assign m_data = m_data_reg;
assign m_valid = m_valid_reg;

always @(posedge clk) begin
    if (s_valid && !full) begin
        mem[wr_ptr[ADDR_WIDTH-1:0]] <= s_data;
    end
end

always @(posedge clk) begin
    if (pop) begin
        m_data_reg <= mem[rd_ptr[ADDR_WIDTH-1:0]];
    end
end

always @(posedge clk) begin
    if (s_valid && !full) begin
        wr_ptr <= wr_ptr + 1'b1;
    end
    if (pop) begin
        rd_ptr <= rd_ptr + 1'b1;
        m_valid_reg <= 1'b1;
    end else if (m_ready) begin
        m_valid_reg <= 1'b0;
    end
    if (rst) begin
        wr_ptr <= {ADDR_WIDTH+1{1'b0}};
        rd_ptr <= {ADDR_WIDTH+1{1'b0}};
        m_valid_reg <= 1'b0;
    end
end

endmodule

`resetall
