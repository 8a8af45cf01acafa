/*
 * pesto_accel_v2: the PE-wise structured ternary convolution accelerator (top level).
 *
 * AXI4-Lite control (pesto_axil_regs, register map in sw/pesto/hwspec/regmap.json), one
 * AXI4-Stream input (weight packet + activation packet) and one AXI4-Stream output (output
 * packet, or a network program, or images), both 64 bits wide with TLAST so a Xilinx AXI DMA
 * can drive them. The engine (pesto_engine, accelerator v2) runs one layer (v1's layer mode) or a
 * loaded network program on four fat PEs (a 2 x 2 tile of output pixels, nine taps x LANES
 * channels each per cycle) that only spend cycles on the PE groups the running sub-net issues.
 * docs/accelerator-v2.md describes the design, docs/rtl.md the modules.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_accel_v2 #
(
    // channels per PE group word: 4, 8, 16 or 32
    parameter LANES = 16,
    // log2 of the words of each of the four activation banks
    parameter LOG2_BANK_DEPTH = 10,
    // code memory depth in PE groups (the stored groups of every layer, once)
    parameter CODE_DEPTH = 6144,
    // log2 of the program memory depth in 32-bit words
    parameter LOG2_PROG_DEPTH = 14,
    // parameter memory depth in output stages (channels x sub-nets of every layer)
    parameter PARAM_DEPTH = 4096,
    // log2 of the most output channels of a layer
    parameter LOG2_MAX_N = 9,
    // cycles the four PEs spend on one issued group (HWCFG0.GROUP_CYCLES): 1 (144 lanes a PE),
    // 2 (72: the default, what fits the xc7z020) or 4
    parameter GROUP_CYCLES = 2
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
wire [31:0] cfg_subnet, cfg_images, cfg_step_sel;
wire start, busy, done;
wire [7:0] err_code;
wire [31:0] cycles, compute_cycles, groups_issued, program_info, program_sum, step_cycles, step_issue;

// what HWCFG reports: layer mode keeps v1's fields (an input of up to half the activation
// memory, N*G entries of the schedule), network mode adds the memories (HWCFG2/3)
localparam LOG2_ACT_DEPTH = LOG2_BANK_DEPTH + 1;
localparam LOG2_WGT_DEPTH = LOG2_PROG_DEPTH - 2;
localparam LOG2_MAX_PIX = LOG2_BANK_DEPTH + 2;

pesto_axil_regs_v2 #(
    .LANES(LANES),
    .NUM_PE(4),
    .MAX_K(3),
    .LOG2_ACT_DEPTH(LOG2_ACT_DEPTH),
    .LOG2_WGT_DEPTH(LOG2_WGT_DEPTH),
    .LOG2_MAX_N(LOG2_MAX_N),
    .LOG2_MAX_PIX(LOG2_MAX_PIX),
    .CAPS(3),
    .GROUP_CYCLES(GROUP_CYCLES),
    .CODE_DEPTH(CODE_DEPTH),
    .PARAM_DEPTH(PARAM_DEPTH),
    .PROG_DEPTH(1 << LOG2_PROG_DEPTH),
    .BANK_DEPTH(1 << LOG2_BANK_DEPTH)
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
    .cfg_subnet(cfg_subnet),
    .cfg_images(cfg_images),
    .cfg_step_sel(cfg_step_sel),
    .start(start),
    .busy(busy),
    .done(done),
    .err_code(err_code),
    .cycles(cycles),
    .compute_cycles(compute_cycles),
    .groups_issued(groups_issued),
    .program_info(program_info),
    .program_sum(program_sum),
    .step_cycles(step_cycles),
    .step_issue(step_issue),
    .interrupt(interrupt)
);

pesto_engine_v2 #(
    .LANES(LANES),
    .LOG2_BANK_DEPTH(LOG2_BANK_DEPTH),
    .CODE_DEPTH(CODE_DEPTH),
    .LOG2_PROG_DEPTH(LOG2_PROG_DEPTH),
    .PARAM_DEPTH(PARAM_DEPTH),
    .LOG2_MAX_N(LOG2_MAX_N),
    .GROUP_CYCLES(GROUP_CYCLES)
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
    .cfg_subnet(cfg_subnet),
    .cfg_images(cfg_images),
    .cfg_step_sel(cfg_step_sel),
    .start(start),
    .busy(busy),
    .done(done),
    .err_code(err_code),
    .cycles(cycles),
    .compute_cycles(compute_cycles),
    .groups_issued(groups_issued),
    .program_info(program_info),
    .program_sum(program_sum),
    .step_cycles(step_cycles),
    .step_issue(step_issue),
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
