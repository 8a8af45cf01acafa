/*
 * pesto_accel: the PE-wise structured ternary convolution accelerator (top level).
 *
 * AXI4-Lite control (pesto_axil_regs, register map in sw/pesto/hwspec/regmap.json), one
 * AXI4-Stream input (weight packet + activation packet) and one AXI4-Stream output (output
 * packet), both 64 bits wide with TLAST so a Xilinx AXI DMA can drive them. The engine
 * (pesto_engine) is an array of NUM_PE add/sub processing elements that work on NUM_PE output
 * pixels of one output channel in lockstep; the scheduler broadcasts only the non-zero PE
 * groups. docs/rtl.md describes the architecture, the schedule and the cycle model.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_accel #
(
    // channels per PE group word: 4, 8, 16 or 32
    parameter LANES = 16,
    // processing elements (output pixels computed in parallel), a multiple of 4
    parameter NUM_PE = 8,
    // largest kernel side (1x1 and 3x3 kernels are supported)
    parameter MAX_K = 3,
    // log2 of the activation buffer depth in LANES-wide words (one copy per two PEs)
    parameter LOG2_ACT_DEPTH = 11,
    // log2 of the weight buffer depth in 64-bit words (also bounds N*G)
    parameter LOG2_WGT_DEPTH = 11,
    // log2 of the most output channels
    parameter LOG2_MAX_N = 8,
    // log2 of the most output pixels per channel
    parameter LOG2_MAX_PIX = 11,
    // log2 of the output FIFO depth in 64-bit words (decouples compute from emission)
    parameter LOG2_OUT_FIFO = 10
)
(
    input  wire        aclk,
    input  wire        aresetn,

    input  wire [7:0]  s_axil_awaddr,
    input  wire [2:0]  s_axil_awprot,
    input  wire        s_axil_awvalid,
    output wire        s_axil_awready,
    input  wire [31:0] s_axil_wdata,
    input  wire [3:0]  s_axil_wstrb,
    input  wire        s_axil_wvalid,
    output wire        s_axil_wready,
    output wire [1:0]  s_axil_bresp,
    output wire        s_axil_bvalid,
    input  wire        s_axil_bready,
    input  wire [7:0]  s_axil_araddr,
    input  wire [2:0]  s_axil_arprot,
    input  wire        s_axil_arvalid,
    output wire        s_axil_arready,
    output wire [31:0] s_axil_rdata,
    output wire [1:0]  s_axil_rresp,
    output wire        s_axil_rvalid,
    input  wire        s_axil_rready,

    input  wire [63:0] s_axis_tdata,
    input  wire [7:0]  s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,

    output wire [63:0] m_axis_tdata,
    output wire [7:0]  m_axis_tkeep,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast,

    /* verilator lint_off SYMRSVDWORD */
    output wire        interrupt
    /* verilator lint_on SYMRSVDWORD */
);

wire rst = !aresetn;

wire [31:0] cfg_mode, cfg_n, cfg_g, cfg_in_h, cfg_in_w, cfg_kernel, cfg_out_h, cfg_out_w, cfg_nnz, cfg_flags;
wire start, busy, done;
wire [7:0] err_code;
wire [31:0] cycles, compute_cycles, groups_issued;

pesto_axil_regs #(
    .LANES(LANES),
    .NUM_PE(NUM_PE),
    .MAX_K(MAX_K),
    .LOG2_ACT_DEPTH(LOG2_ACT_DEPTH),
    .LOG2_WGT_DEPTH(LOG2_WGT_DEPTH),
    .LOG2_MAX_N(LOG2_MAX_N),
    .LOG2_MAX_PIX(LOG2_MAX_PIX)
)
regs_inst (
    .clk(aclk),
    .rst(rst),
    .s_axil_awaddr(s_axil_awaddr),
    .s_axil_awprot(s_axil_awprot),
    .s_axil_awvalid(s_axil_awvalid),
    .s_axil_awready(s_axil_awready),
    .s_axil_wdata(s_axil_wdata),
    .s_axil_wstrb(s_axil_wstrb),
    .s_axil_wvalid(s_axil_wvalid),
    .s_axil_wready(s_axil_wready),
    .s_axil_bresp(s_axil_bresp),
    .s_axil_bvalid(s_axil_bvalid),
    .s_axil_bready(s_axil_bready),
    .s_axil_araddr(s_axil_araddr),
    .s_axil_arprot(s_axil_arprot),
    .s_axil_arvalid(s_axil_arvalid),
    .s_axil_arready(s_axil_arready),
    .s_axil_rdata(s_axil_rdata),
    .s_axil_rresp(s_axil_rresp),
    .s_axil_rvalid(s_axil_rvalid),
    .s_axil_rready(s_axil_rready),
    .cfg_mode(cfg_mode),
    .cfg_n(cfg_n),
    .cfg_g(cfg_g),
    .cfg_in_h(cfg_in_h),
    .cfg_in_w(cfg_in_w),
    .cfg_kernel(cfg_kernel),
    .cfg_out_h(cfg_out_h),
    .cfg_out_w(cfg_out_w),
    .cfg_nnz(cfg_nnz),
    .cfg_flags(cfg_flags),
    .start(start),
    .busy(busy),
    .done(done),
    .err_code(err_code),
    .cycles(cycles),
    .compute_cycles(compute_cycles),
    .groups_issued(groups_issued),
    .interrupt(interrupt)
);

pesto_engine #(
    .LANES(LANES),
    .NUM_PE(NUM_PE),
    .MAX_K(MAX_K),
    .LOG2_ACT_DEPTH(LOG2_ACT_DEPTH),
    .LOG2_WGT_DEPTH(LOG2_WGT_DEPTH),
    .LOG2_MAX_N(LOG2_MAX_N),
    .LOG2_MAX_PIX(LOG2_MAX_PIX),
    .LOG2_OUT_FIFO(LOG2_OUT_FIFO)
)
engine_inst (
    .clk(aclk),
    .rst(rst),
    .cfg_mode(cfg_mode),
    .cfg_n(cfg_n),
    .cfg_g(cfg_g),
    .cfg_in_h(cfg_in_h),
    .cfg_in_w(cfg_in_w),
    .cfg_kernel(cfg_kernel),
    .cfg_out_h(cfg_out_h),
    .cfg_out_w(cfg_out_w),
    .cfg_nnz(cfg_nnz),
    .cfg_flags(cfg_flags),
    .start(start),
    .busy(busy),
    .done(done),
    .err_code(err_code),
    .cycles(cycles),
    .compute_cycles(compute_cycles),
    .groups_issued(groups_issued),
    .s_axis_tdata(s_axis_tdata),
    .s_axis_tkeep(s_axis_tkeep),
    .s_axis_tvalid(s_axis_tvalid),
    .s_axis_tready(s_axis_tready),
    .s_axis_tlast(s_axis_tlast),
    .m_axis_tdata(m_axis_tdata),
    .m_axis_tkeep(m_axis_tkeep),
    .m_axis_tvalid(m_axis_tvalid),
    .m_axis_tready(m_axis_tready),
    .m_axis_tlast(m_axis_tlast)
);

endmodule

`resetall
