/*
 * pesto_axil_regs_v2: the AXI4-Lite register file of the accelerator (sw/pesto/hwspec/regmap.json).
 *
 * CTRL follows the Xilinx HLS ap_ctrl_hs layout so one driver serves the RTL and the HLS engine:
 * writing AP_START while idle starts a run (the engine accepts it the next cycle, AP_START reads
 * 1 until then); writing it while busy is ignored and sets STATUS.START_IGNORED. AP_DONE and
 * AP_READY are sticky and cleared by a read of CTRL (as in HLS); AP_IDLE is live. ISR bits are
 * set by done/ready events and toggled by writing 1. The layer configuration registers read
 * back what was written; the engine latches them when a run starts.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_axil_regs_v2 #
(
    // channels per PE group word (HWCFG0.LANES)
    parameter LANES = 16,
    // processing elements (HWCFG0.NUM_PE)
    parameter NUM_PE = 8,
    // largest kernel side (HWCFG0.MAX_K)
    parameter MAX_K = 3,
    // log2 of the activation buffer depth in LANES-wide words, per copy (HWCFG1)
    parameter LOG2_ACT_DEPTH = 11,
    // log2 of the weight buffer depth in 64-bit words (HWCFG1)
    parameter LOG2_WGT_DEPTH = 11,
    // log2 of the most output channels (HWCFG1)
    parameter LOG2_MAX_N = 8,
    // log2 of the most output pixels per channel (HWCFG1)
    parameter LOG2_MAX_PIX = 11,
    // capabilities (HWCFG0.CAPS): bit 0 network mode, bit 1 error packets
    parameter CAPS = 3,
    // cycles the PE array spends on one issued group (HWCFG0.GROUP_CYCLES)
    parameter GROUP_CYCLES = 2,
    // network-mode memories (HWCFG2, HWCFG3): code groups, output stages, program words,
    // activation words per bank
    parameter CODE_DEPTH = 6144,
    parameter PARAM_DEPTH = 4096,
    parameter PROG_DEPTH = 16384,
    parameter BANK_DEPTH = 1024
)
(
    input  wire        clk,
    input  wire        rst,

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

    // layer configuration as written by the host
    output wire [31:0] cfg_mode,
    output wire [31:0] cfg_n,
    output wire [31:0] cfg_g,
    output wire [31:0] cfg_in_h,
    output wire [31:0] cfg_in_w,
    output wire [31:0] cfg_kernel,
    output wire [31:0] cfg_out_h,
    output wire [31:0] cfg_out_w,
    output wire [31:0] cfg_nnz,
    output wire [31:0] cfg_flags,
    output wire [31:0] cfg_subnet,
    output wire [31:0] cfg_images,
    output wire [31:0] cfg_step_sel,

    // engine handshake: start pulses for one cycle when a run is accepted
    output wire        start,
    input  wire        busy,
    input  wire        done,
    input  wire [7:0]  err_code,
    input  wire [31:0] cycles,
    input  wire [31:0] compute_cycles,
    input  wire [31:0] groups_issued,
    input  wire [31:0] program_info,
    input  wire [31:0] program_sum,
    input  wire [31:0] step_cycles,
    input  wire [31:0] step_issue,

    output wire        interrupt
);

// the generated register map: not every constant is used in every module
/* verilator lint_off UNUSEDPARAM */
`include "pesto_regmap.vh"
/* verilator lint_on UNUSEDPARAM */

reg s_axil_awready_reg;
reg s_axil_wready_reg;
reg s_axil_bvalid_reg;
reg s_axil_arready_reg;
reg [31:0] s_axil_rdata_reg;
reg s_axil_rvalid_reg;

reg ap_start_reg;
reg ap_done_reg;
reg ap_ready_reg;
reg gie_reg;
reg [1:0] ier_reg;
reg [1:0] isr_reg;
reg start_ignored_reg;

reg [31:0] mode_reg;
reg [31:0] n_reg;
reg [31:0] g_reg;
reg [31:0] in_h_reg;
reg [31:0] in_w_reg;
reg [31:0] kernel_reg;
reg [31:0] out_h_reg;
reg [31:0] out_w_reg;
reg [31:0] nnz_reg;
reg [31:0] flags_reg;
reg [31:0] subnet_reg;
reg [31:0] images_reg;
reg [31:0] step_sel_reg;

// the cycle a run is accepted: AP_START pending and the engine idle
wire accept = ap_start_reg && !busy;

wire do_write = s_axil_awvalid && s_axil_wvalid && !s_axil_awready_reg && (!s_axil_bvalid_reg || s_axil_bready);
wire do_read = s_axil_arvalid && !s_axil_arready_reg && (!s_axil_rvalid_reg || s_axil_rready);
wire [7:0] waddr = {s_axil_awaddr[7:2], 2'b00};
wire [7:0] raddr = {s_axil_araddr[7:2], 2'b00};

assign s_axil_awready = s_axil_awready_reg;
assign s_axil_wready = s_axil_wready_reg;
assign s_axil_bresp = 2'b00;
assign s_axil_bvalid = s_axil_bvalid_reg;
assign s_axil_arready = s_axil_arready_reg;
assign s_axil_rdata = s_axil_rdata_reg;
assign s_axil_rresp = 2'b00;
assign s_axil_rvalid = s_axil_rvalid_reg;

assign cfg_mode = mode_reg;
assign cfg_n = n_reg;
assign cfg_g = g_reg;
assign cfg_in_h = in_h_reg;
assign cfg_in_w = in_w_reg;
assign cfg_kernel = kernel_reg;
assign cfg_out_h = out_h_reg;
assign cfg_out_w = out_w_reg;
assign cfg_nnz = nnz_reg;
assign cfg_flags = flags_reg;
assign cfg_subnet = subnet_reg;
assign cfg_images = images_reg;
assign cfg_step_sel = step_sel_reg;
assign start = accept;
assign interrupt = gie_reg && |(ier_reg & isr_reg);

// byte-strobed update of a read/write register
function [31:0] strobed(input [31:0] old, input [31:0] data, input [3:0] strb);
    integer i;
    begin
        for (i = 0; i < 4; i = i + 1) begin
            strobed[8*i +: 8] = strb[i] ? data[8*i +: 8] : old[8*i +: 8];
        end
    end
endfunction

localparam integer HW_LANES = LANES;
localparam integer HW_NUM_PE = NUM_PE;
localparam integer HW_MAX_K = MAX_K;
localparam integer HW_ACT = LOG2_ACT_DEPTH;
localparam integer HW_WGT = LOG2_WGT_DEPTH;
localparam integer HW_N = LOG2_MAX_N;
localparam integer HW_PIX = LOG2_MAX_PIX;
localparam integer HW_CAPS = CAPS;
localparam integer HW_GROUP_CYCLES = GROUP_CYCLES;
localparam integer HW_CODE = CODE_DEPTH;
localparam integer HW_PARAM = PARAM_DEPTH;
localparam integer HW_PROG = PROG_DEPTH / 4;
localparam integer HW_BANK = BANK_DEPTH;
wire [31:0] hwcfg0 = {HW_CAPS[7:0], HW_GROUP_CYCLES[3:0], HW_MAX_K[3:0], HW_NUM_PE[7:0], HW_LANES[7:0]};
wire [31:0] hwcfg2 = {HW_PARAM[15:0], HW_CODE[15:0]};
wire [31:0] hwcfg3 = {HW_BANK[15:0], HW_PROG[15:0]};
wire [31:0] hwcfg1 = {HW_PIX[7:0], HW_N[7:0], HW_WGT[7:0], HW_ACT[7:0]};
wire [31:0] ctrl_value = {28'd0, ap_ready_reg, !busy && !ap_start_reg, ap_done_reg, ap_start_reg};

always @(posedge clk) begin
    s_axil_awready_reg <= 1'b0;
    s_axil_wready_reg <= 1'b0;
    s_axil_arready_reg <= 1'b0;
    if (s_axil_bvalid_reg && s_axil_bready) begin
        s_axil_bvalid_reg <= 1'b0;
    end
    if (s_axil_rvalid_reg && s_axil_rready) begin
        s_axil_rvalid_reg <= 1'b0;
    end

    // engine events
    if (accept) begin
        ap_start_reg <= 1'b0;
        ap_ready_reg <= 1'b1;
        isr_reg[PESTO_ISR_READY_LSB] <= 1'b1;
        start_ignored_reg <= 1'b0;
    end
    if (done) begin
        ap_done_reg <= 1'b1;
        isr_reg[PESTO_ISR_DONE_LSB] <= 1'b1;
    end

    if (do_write) begin
        s_axil_awready_reg <= 1'b1;
        s_axil_wready_reg <= 1'b1;
        s_axil_bvalid_reg <= 1'b1;
        case (waddr)
            PESTO_REG_CTRL: begin
                if (s_axil_wstrb[0] && s_axil_wdata[PESTO_CTRL_AP_START_LSB]) begin
                    if (busy || ap_start_reg) begin
                        start_ignored_reg <= 1'b1;
                    end else begin
                        ap_start_reg <= 1'b1;
                    end
                end
            end
            PESTO_REG_GIE: if (s_axil_wstrb[0]) gie_reg <= s_axil_wdata[0];
            PESTO_REG_IER: if (s_axil_wstrb[0]) ier_reg <= s_axil_wdata[1:0];
            PESTO_REG_ISR: begin
                if (s_axil_wstrb[0]) begin
                    // toggle on write; an event in the same cycle still sets its bit
                    isr_reg <= (isr_reg ^ s_axil_wdata[1:0]) |
                               {accept, done};
                end
            end
            PESTO_REG_MODE: mode_reg <= strobed(mode_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_N: n_reg <= strobed(n_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_G: g_reg <= strobed(g_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_IN_H: in_h_reg <= strobed(in_h_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_IN_W: in_w_reg <= strobed(in_w_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_KERNEL: kernel_reg <= strobed(kernel_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_OUT_H: out_h_reg <= strobed(out_h_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_OUT_W: out_w_reg <= strobed(out_w_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_NNZ: nnz_reg <= strobed(nnz_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_FLAGS: flags_reg <= strobed(flags_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_SUBNET: subnet_reg <= strobed(subnet_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_NUM_IMAGES: images_reg <= strobed(images_reg, s_axil_wdata, s_axil_wstrb);
            PESTO_REG_STEP_SEL: step_sel_reg <= strobed(step_sel_reg, s_axil_wdata, s_axil_wstrb);
            default: ;
        endcase
    end

    if (do_read) begin
        s_axil_arready_reg <= 1'b1;
        s_axil_rvalid_reg <= 1'b1;
        case (raddr)
            PESTO_REG_CTRL: begin
                s_axil_rdata_reg <= ctrl_value;
                // clear on read, unless the event lands in this very cycle
                if (!done) ap_done_reg <= 1'b0;
                if (!accept) ap_ready_reg <= 1'b0;
            end
            PESTO_REG_GIE: s_axil_rdata_reg <= {31'd0, gie_reg};
            PESTO_REG_IER: s_axil_rdata_reg <= {30'd0, ier_reg};
            PESTO_REG_ISR: s_axil_rdata_reg <= {30'd0, isr_reg};
            PESTO_REG_ID: s_axil_rdata_reg <= PESTO_ID;
            PESTO_REG_VERSION: s_axil_rdata_reg <= PESTO_VERSION;
            PESTO_REG_HWCFG0: s_axil_rdata_reg <= hwcfg0;
            PESTO_REG_HWCFG1: s_axil_rdata_reg <= hwcfg1;
            PESTO_REG_STATUS: s_axil_rdata_reg <= {23'd0, start_ignored_reg, err_code};
            PESTO_REG_CYCLES: s_axil_rdata_reg <= cycles;
            PESTO_REG_COMPUTE_CYCLES: s_axil_rdata_reg <= compute_cycles;
            PESTO_REG_GROUPS_ISSUED: s_axil_rdata_reg <= groups_issued;
            PESTO_REG_MODE: s_axil_rdata_reg <= mode_reg;
            PESTO_REG_N: s_axil_rdata_reg <= n_reg;
            PESTO_REG_G: s_axil_rdata_reg <= g_reg;
            PESTO_REG_IN_H: s_axil_rdata_reg <= in_h_reg;
            PESTO_REG_IN_W: s_axil_rdata_reg <= in_w_reg;
            PESTO_REG_KERNEL: s_axil_rdata_reg <= kernel_reg;
            PESTO_REG_OUT_H: s_axil_rdata_reg <= out_h_reg;
            PESTO_REG_OUT_W: s_axil_rdata_reg <= out_w_reg;
            PESTO_REG_NNZ: s_axil_rdata_reg <= nnz_reg;
            PESTO_REG_FLAGS: s_axil_rdata_reg <= flags_reg;
            PESTO_REG_HWCFG2: s_axil_rdata_reg <= hwcfg2;
            PESTO_REG_HWCFG3: s_axil_rdata_reg <= hwcfg3;
            PESTO_REG_SUBNET: s_axil_rdata_reg <= subnet_reg;
            PESTO_REG_NUM_IMAGES: s_axil_rdata_reg <= images_reg;
            PESTO_REG_PROGRAM: s_axil_rdata_reg <= program_info;
            PESTO_REG_PROGRAM_SUM: s_axil_rdata_reg <= program_sum;
            PESTO_REG_STEP_SEL: s_axil_rdata_reg <= step_sel_reg;
            PESTO_REG_STEP_CYCLES: s_axil_rdata_reg <= step_cycles;
            PESTO_REG_STEP_ISSUE: s_axil_rdata_reg <= step_issue;
            default: s_axil_rdata_reg <= 32'd0;
        endcase
    end

    if (rst) begin
        s_axil_awready_reg <= 1'b0;
        s_axil_wready_reg <= 1'b0;
        s_axil_bvalid_reg <= 1'b0;
        s_axil_arready_reg <= 1'b0;
        s_axil_rvalid_reg <= 1'b0;
        s_axil_rdata_reg <= 32'd0;
        ap_start_reg <= 1'b0;
        ap_done_reg <= 1'b0;
        ap_ready_reg <= 1'b0;
        gie_reg <= 1'b0;
        ier_reg <= 2'd0;
        isr_reg <= 2'd0;
        start_ignored_reg <= 1'b0;
        mode_reg <= 32'd0;
        n_reg <= 32'd0;
        g_reg <= 32'd0;
        in_h_reg <= 32'd0;
        in_w_reg <= 32'd0;
        kernel_reg <= 32'd0;
        out_h_reg <= 32'd0;
        out_w_reg <= 32'd0;
        nnz_reg <= 32'd0;
        flags_reg <= 32'd0;
        subnet_reg <= 32'd0;
        images_reg <= 32'd0;
        step_sel_reg <= 32'd0;
    end
end

// unused AXI4-Lite protection bits
wire unused_ok = &{1'b0, s_axil_awprot, s_axil_arprot, s_axil_awaddr[1:0], s_axil_araddr[1:0],
                   s_axil_wstrb[3:1], 1'b0};

endmodule

`resetall
