/*
 * pesto_engine: PLACEHOLDER while the real engine is written: accepts a run, consumes the
 * input stream through TLAST and finishes with AP_DONE and no output.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_engine #
(
    // channels per PE group word
    parameter LANES = 16,
    // processing elements
    parameter NUM_PE = 16,
    // largest kernel side
    parameter MAX_K = 3,
    // log2 activation buffer depth
    parameter LOG2_ACT_DEPTH = 10,
    // log2 weight buffer depth
    parameter LOG2_WGT_DEPTH = 11,
    // log2 max output channels
    parameter LOG2_MAX_N = 8,
    // log2 max output pixels
    parameter LOG2_MAX_PIX = 12,
    // log2 output FIFO depth
    parameter LOG2_OUT_FIFO = 10
)
(
    input  wire        clk,
    input  wire        rst,
    input  wire [31:0] cfg_mode,
    input  wire [31:0] cfg_n,
    input  wire [31:0] cfg_g,
    input  wire [31:0] cfg_in_h,
    input  wire [31:0] cfg_in_w,
    input  wire [31:0] cfg_kernel,
    input  wire [31:0] cfg_out_h,
    input  wire [31:0] cfg_out_w,
    input  wire [31:0] cfg_nnz,
    input  wire [31:0] cfg_flags,
    input  wire        start,
    output wire        busy,
    output wire        done,
    output wire [7:0]  err_code,
    output wire [31:0] cycles,
    output wire [31:0] compute_cycles,
    output wire [31:0] groups_issued,
    input  wire [63:0] s_axis_tdata,
    input  wire [7:0]  s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,
    output wire [63:0] m_axis_tdata,
    output wire [7:0]  m_axis_tkeep,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);
reg busy_reg = 1'b0, done_reg = 1'b0;
reg [31:0] cyc = 0;
assign busy = busy_reg;
assign done = done_reg;
assign err_code = 8'd0;
assign cycles = cyc;
assign compute_cycles = 32'd0;
assign groups_issued = 32'd0;
assign s_axis_tready = busy_reg;
assign m_axis_tdata = 64'd0;
assign m_axis_tkeep = 8'hFF;
assign m_axis_tvalid = 1'b0;
assign m_axis_tlast = 1'b0;
always @(posedge clk) begin
    done_reg <= 1'b0;
    if (start) begin busy_reg <= 1'b1; cyc <= 0; end
    if (busy_reg) cyc <= cyc + 1;
    if (busy_reg && s_axis_tvalid && s_axis_tlast) begin busy_reg <= 1'b0; done_reg <= 1'b1; end
    if (rst) begin busy_reg <= 1'b0; done_reg <= 1'b0; end
end
endmodule
`resetall
