/*
 * pesto_engine_v2: accelerator v2 (docs/accelerator-v2.md), one run from start to done.
 *
 *   MODE.LOAD_PROGRAM  the input stream is a network program: pesto_prog_loader fills the code,
 *                      program and parameter memories
 *   MODE.NETWORK       the loaded program runs NUM_IMAGES times on sub-net SUBNET: for every image,
 *                      every step (input, conv, add, shortcut, relu, output) in order
 *   neither            layer mode (v1's run sequence): pesto_layer_loader turns the weight packet
 *                      into a one-layer schedule, then the steps input, conv, output
 *
 * A step's descriptor (16 step words and the 4 schedule words of the running sub-net) is read from
 * the program memory (network) or built from the layer registers (layer mode) into one register
 * bundle, `desc`, in the program format; every unit takes its fields from there.
 *
 * The datapath of a conv step: pesto_passes (tiles x passes) -> pesto_fill -> pesto_window -> four
 * pesto_fat_pe <- pesto_issue (entries, codes); pesto_outputs (drain, output stage, y0) ->
 * pesto_writer (residual add) -> pesto_act_mem. Glue steps run on pesto_vec, the streams on
 * pesto_stream_in / pesto_stream_out -> pesto_packer.
 *
 * Errors: the first one found is reported in STATUS.ERR_CODE as soon as it is known; the units
 * stop, the input is consumed through TLAST, and a run that streams an output sends one zero word
 * with TLAST instead; then AP_DONE.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_engine_v2 #
(
    // channels per PE group word: 4, 8, 16 or 32
    parameter LANES = 16,
    // log2 of the words per activation bank (four banks)
    parameter LOG2_BANK_DEPTH = 10,
    // code memory depth in groups
    parameter CODE_DEPTH = 6144,
    // log2 of the program memory depth in 32-bit words
    parameter LOG2_PROG_DEPTH = 14,
    // parameter memory depth in output stages
    parameter PARAM_DEPTH = 4096,
    // log2 of the most output channels of a conv step (accumulators per bank)
    parameter LOG2_MAX_N = 9,
    // cycles the PE array spends on one issued group: 1, 2 or 4 (the PEs take LANES / GROUP_CYCLES
    // channels of every tap per cycle)
    parameter GROUP_CYCLES = 2
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
    input  wire [31:0] cfg_subnet,
    input  wire [31:0] cfg_images,
    input  wire [31:0] cfg_step_sel,

    input  wire        start,
    output wire        busy,
    output wire        done,
    output wire [7:0]  err_code,
    output wire [31:0] cycles,
    output wire [31:0] compute_cycles,
    output wire [31:0] groups_issued,
    output wire [31:0] program_info,
    output wire [31:0] program_sum,
    output wire [31:0] step_cycles,
    output wire [31:0] step_issue,

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

/* verilator lint_off UNUSEDPARAM */
`include "pesto_regmap.vh"
`include "pesto_program.vh"
/* verilator lint_on UNUSEDPARAM */

localparam W = 16 * LANES;
localparam LW = $clog2(LANES);
localparam AW = LOG2_BANK_DEPTH;
localparam PA = LOG2_PROG_DEPTH;
localparam NW = LOG2_MAX_N;
localparam CA = $clog2(CODE_DEPTH);
localparam PRA = $clog2(PARAM_DEPTH);
localparam CW = 18 * LANES;                  // a group's codes
localparam DW = PROG_STEP_WORDS + PROG_SCHED_WORDS;
localparam [PA-1:0] LAYER_MASK_BASE = 256;
localparam [PA-1:0] LAYER_ENTRY_BASE = 512;
localparam [AW+1:0] BANK_WORDS = 1 << AW;

localparam [4:0] IDLE = 5'd0, CHECK1 = 5'd1, CHECK2 = 5'd2, CHECK3 = 5'd3, PREP = 5'd4,
                 PROG_LOAD = 5'd5, LAYER_LOAD = 5'd6, FETCH = 5'd7, FETCH_WAIT = 5'd8, BUILD = 5'd9,
                 PREP_STEP = 5'd10, RUN = 5'd11, STEP_END = 5'd12, ABORT = 5'd13, DROP = 5'd14,
                 ERR_WORD = 5'd15, OUT_WAIT = 5'd16, FINISH = 5'd17;

reg [4:0] state;
reg [7:0] err_reg;
reg done_reg;
reg [31:0] cycles_reg, compute_cycles_reg, groups_reg;
reg counting_compute;

// the run
reg skip, load_w, network, load_prog, relu_cfg;
reg [NW:0] n_v;
reg [11:0] g_v, in_h_v, in_w_v, out_h_v, out_w_v;
reg [15:0] nnz_v;
reg [3:0] kh, kw, stride_v, pad_v;
reg [4:0] subnet;
reg [15:0] images, image;
reg [15:0] step, steps_run;
reg [PA-1:0] sched_ptr;
reg ranges_ok, has_output;
// layer mode: products of the configuration
reg [11:0] in_h2, in_w2, out_h2, out_w2;
reg [19:0] in_plane, out_plane;
reg [23:0] in_words, out_words, ng_v;
reg [11:0] exp_h, exp_w;
reg [7:0] g_out;

// the loaded program and the layer weights in the memories
reg prog_valid, prog_dense;
reg [4:0] prog_subnets;
reg [15:0] prog_steps;
reg [31:0] prog_sum;
reg w_valid;
reg [NW:0] w_n;
reg [11:0] w_g;
reg [3:0] w_k;
reg [15:0] w_nnz;

// the step descriptor bundle
reg [31:0] desc [0:DW-1];
reg [4:0] fetch_i;
reg [23:0] blocks;
reg unit_go, passes_go;
reg step_started;
reg [31:0] step_t0, first_pop, last_pop;
reg popped;
reg unit_rst;
reg tlast_sent;
reg passes_started;
reg subnet_ok;
reg fetch_q_valid;
reg [4:0] fetch_q;
wire [15:0] pl_steps;
wire [4:0] pl_subnets;
wire pl_dense;
wire [31:0] pl_sum;
wire wr_res_rd;
wire [4*16*LANES-1:0] act_rd_b;
wire [11:0] blocks_h = (td_h + 1'b1) >> 1;
wire [11:0] blocks_w = (td_w + 1'b1) >> 1;

wire [31:0] dw0 = desc[0];
wire [3:0] d_op = dw0[PROG_STEP_OP_MSB:PROG_STEP_OP_LSB];
wire [3:0] d_stride = dw0[PROG_STEP_STRIDE_MSB:PROG_STEP_STRIDE_LSB];
wire [3:0] d_pad = dw0[PROG_STEP_PAD_MSB:PROG_STEP_PAD_LSB];
wire d_relu = dw0[PROG_STEP_RELU_LSB];
wire d_res = dw0[PROG_STEP_RES_LSB];
wire d_add_relu = dw0[PROG_STEP_ADD_RELU_LSB];
wire [31:0] dw1 = desc[PROG_STEP_N_WORD];
wire [11:0] d_n = dw1[PROG_STEP_N_MSB:PROG_STEP_N_LSB];
wire [31:0] dw2 = desc[PROG_STEP_LSH_A_WORD];
wire [3:0] d_lsh_a = dw2[PROG_STEP_LSH_A_MSB:PROG_STEP_LSH_A_LSB];
wire [4:0] d_rsh_a = dw2[PROG_STEP_RSH_A_MSB:PROG_STEP_RSH_A_LSB];
wire [3:0] d_lsh_b = dw2[PROG_STEP_LSH_B_MSB:PROG_STEP_LSH_B_LSB];
wire [4:0] d_rsh_b = dw2[PROG_STEP_RSH_B_MSB:PROG_STEP_RSH_B_LSB];
wire [31:0] dw3 = desc[PROG_STEP_PAD_BEFORE_WORD];
wire [11:0] d_pad_before = dw3[PROG_STEP_PAD_BEFORE_MSB:PROG_STEP_PAD_BEFORE_LSB];

// tensors a (source), d (destination), b (residual / second operand)
`define TENSOR_FIELDS(P, AT) \
    wire [31:0] P``_w0 = desc[AT + PROG_TENSOR_BASE_WORD]; \
    wire [31:0] P``_w1 = desc[AT + PROG_TENSOR_H_WORD]; \
    wire [31:0] P``_w2w = desc[AT + PROG_TENSOR_W2_WORD]; \
    wire [AW-1:0] P``_base = P``_w0[PROG_TENSOR_BASE_LSB +: AW]; \
    wire P``_phase = P``_w0[PROG_TENSOR_PHASE_LSB]; \
    wire [7:0] P``_g = P``_w0[PROG_TENSOR_G_MSB:PROG_TENSOR_G_LSB]; \
    wire [11:0] P``_h = P``_w1[PROG_TENSOR_H_MSB:PROG_TENSOR_H_LSB]; \
    wire [11:0] P``_w = P``_w1[PROG_TENSOR_W_MSB:PROG_TENSOR_W_LSB]; \
    wire [11:0] P``_w2 = P``_w2w[PROG_TENSOR_W2_MSB:PROG_TENSOR_W2_LSB]; \
    wire [19:0] P``_plane = P``_w2w[PROG_TENSOR_PLANE_MSB:PROG_TENSOR_PLANE_LSB];
`TENSOR_FIELDS(ta, PROG_TENSOR_A)
`TENSOR_FIELDS(td, PROG_TENSOR_D)
`TENSOR_FIELDS(tb, PROG_TENSOR_B)
`undef TENSOR_FIELDS

wire [31:0] s0 = desc[PROG_STEP_WORDS + PROG_SCHED_PASS_BASE_WORD];
wire [31:0] s1 = desc[PROG_STEP_WORDS + PROG_SCHED_DENSE_BASE_WORD];
wire [31:0] s2 = desc[PROG_STEP_WORDS + PROG_SCHED_PARAM_BASE_WORD];
wire [31:0] s3 = desc[PROG_STEP_WORDS + PROG_SCHED_MASK_BASE_WORD];
wire [15:0] d_pass_base = skip ? s0[PROG_SCHED_PASS_BASE_MSB:PROG_SCHED_PASS_BASE_LSB] :
                                 s1[PROG_SCHED_DENSE_BASE_MSB:PROG_SCHED_DENSE_BASE_LSB];
wire [15:0] d_pass_count = skip ? s0[PROG_SCHED_PASS_COUNT_MSB:PROG_SCHED_PASS_COUNT_LSB] :
                                  s1[PROG_SCHED_DENSE_COUNT_MSB:PROG_SCHED_DENSE_COUNT_LSB];
wire [15:0] d_entry_base = skip ? s2[PROG_SCHED_ENTRY_BASE_MSB:PROG_SCHED_ENTRY_BASE_LSB] :
                                  s3[PROG_SCHED_DENSE_ENTRY_BASE_MSB:PROG_SCHED_DENSE_ENTRY_BASE_LSB];
wire [15:0] d_param_base = s2[PROG_SCHED_PARAM_BASE_MSB:PROG_SCHED_PARAM_BASE_LSB];
wire [15:0] d_mask_base = s3[PROG_SCHED_MASK_BASE_MSB:PROG_SCHED_MASK_BASE_LSB];

wire is_conv = d_op == PROG_OP_CONV;
wire is_vec = d_op == PROG_OP_ADD || d_op == PROG_OP_SHORTCUT || d_op == PROG_OP_RELU;
wire is_in = d_op == PROG_OP_INPUT;
wire is_out = d_op == PROG_OP_OUTPUT;
wire stride2 = d_stride == 4'd2;
wire last_image = image == images - 1'b1;
wire last_step = step == steps_run - 1'b1;

// ------------------------------------------------------------------ units
wire rx_valid, rx_err_short, rx_err_long, rx_drop_done, rx_last_seen, rx_beat;
wire [63:0] rx_data;
reg rx_drop;
wire pl_ready, pl_expect, pl_done, pl_bad, pl_bad_code;
wire ll_ready, ll_weights_done, ll_sched_done, ll_mismatch, ll_bad_code;
wire [15:0] ll_pass_count;
wire si_ready, si_expect, si_busy;
wire [PA-1:0] fetch_addr = (fetch_i < PROG_STEP_WORDS[4:0]) ?
                           {step[PA-5:0], 4'd0} + {{PA-5{1'b0}}, fetch_i} :
                           sched_ptr + {{PA-5{1'b0}}, fetch_i - PROG_STEP_WORDS[4:0]};
wire rx_ready = state == PROG_LOAD ? pl_ready : state == LAYER_LOAD ? ll_ready :
                (state == RUN && is_in) ? si_ready : 1'b0;
wire rx_expect = state == PROG_LOAD ? pl_expect : (state == RUN && is_in) ? si_expect : 1'b0;

pesto_rx rx_inst (
    .clk(clk), .rst(rst), .clear(start && state == IDLE),
    .s_axis_tdata(s_axis_tdata), .s_axis_tkeep(s_axis_tkeep), .s_axis_tvalid(s_axis_tvalid),
    .s_axis_tready(s_axis_tready), .s_axis_tlast(s_axis_tlast),
    .b_valid(rx_valid), .b_ready(rx_ready), .b_data(rx_data), .expect_last(rx_expect),
    .err_short(rx_err_short), .err_long(rx_err_long),
    .drop(rx_drop), .drop_done(rx_drop_done), .last_seen(rx_last_seen), .beat(rx_beat)
);

// memories: code, parameters, program
wire pl_code_wr, ll_code_wr, pl_param_wr, ll_param_wr;
wire [CA-1:0] pl_code_addr, ll_code_addr, is_code_addr;
wire [CW-1:0] pl_code_data, ll_code_data, code_rd;
wire [PRA-1:0] pl_param_addr, ll_param_addr, os_param_addr;
wire [69:0] pl_param_data, ll_param_data, param_rd;
wire [1:0] pl_prog_wr, ll_prog_wr;
wire [PA-2:0] pl_prog_row, ll_prog_row;
wire [63:0] pl_prog_data, ll_prog_data;
wire [31:0] prog_a_data, prog_b_data;
wire [PA-1:0] is_prog_addr, ps_prog_addr, os_prog_addr, ll_prog_rd_addr;
wire os_masks_busy;
wire loading_layer = state == LAYER_LOAD || (!network && !load_prog && state != IDLE);

pesto_ram_sdp #(.WIDTH(CW), .ADDR_WIDTH(CA), .DEPTH(CODE_DEPTH)) code_mem_inst (
    .clk(clk),
    .wr_en(load_prog ? pl_code_wr : ll_code_wr), .wr_addr(load_prog ? pl_code_addr : ll_code_addr),
    .wr_data(load_prog ? pl_code_data : ll_code_data),
    .rd_addr(is_code_addr), .rd_data(code_rd)
);

pesto_ram_sdp #(.WIDTH(70), .ADDR_WIDTH(PRA), .DEPTH(PARAM_DEPTH)) param_mem_inst (
    .clk(clk),
    .wr_en(load_prog ? pl_param_wr : ll_param_wr), .wr_addr(load_prog ? pl_param_addr : ll_param_addr),
    .wr_data(load_prog ? pl_param_data : ll_param_data),
    .rd_addr(os_param_addr), .rd_data(param_rd)
);

wire fetching = state == FETCH;

pesto_prog_mem #(.PA(PA)) prog_mem_inst (
    .clk(clk),
    .wr_en(load_prog ? pl_prog_wr : ll_prog_wr), .wr_row(load_prog ? pl_prog_row : ll_prog_row),
    .wr_data(load_prog ? pl_prog_data : ll_prog_data),
    .a_addr(fetching ? fetch_addr : is_prog_addr), .a_data(prog_a_data),
    .b_addr(loading_layer && !ll_sched_done ? ll_prog_rd_addr : os_masks_busy ? os_prog_addr : ps_prog_addr),
    .b_data(prog_b_data)
);

pesto_prog_loader #(.LANES(LANES), .CA(CA), .CODE_DEPTH(CODE_DEPTH), .PA(PA), .PRA(PRA),
                    .PARAM_DEPTH(PARAM_DEPTH)) prog_loader_inst (
    .clk(clk), .rst(rst || unit_rst),
    .start(state == PROG_LOAD && !step_started),
    .b_valid(rx_valid), .b_ready(pl_ready), .b_data(rx_data), .expect_last(pl_expect),
    .code_wr(pl_code_wr), .code_addr(pl_code_addr), .code_data(pl_code_data),
    .prog_wr(pl_prog_wr), .prog_row(pl_prog_row), .prog_data(pl_prog_data),
    .param_wr(pl_param_wr), .param_addr(pl_param_addr), .param_data(pl_param_data),
    .done(pl_done), .bad(pl_bad), .bad_code(pl_bad_code),
    .steps(pl_steps), .subnets(pl_subnets), .dense(pl_dense), .sum_low(pl_sum)
);
pesto_layer_loader #(.LANES(LANES), .N_WIDTH(NW), .CA(CA), .PA(PA), .PRA(PRA)) layer_loader_inst (
    .clk(clk), .rst(rst || unit_rst),
    .start(state == LAYER_LOAD && !step_started),
    .load_weights(load_w), .skip(skip), .kernel3(kh == 4'd3),
    .n(n_v), .groups(g_v), .nnz(nnz_v), .plane(in_plane),
    .b_valid(rx_valid), .b_ready(ll_ready), .b_data(rx_data),
    .code_wr(ll_code_wr), .code_addr(ll_code_addr), .code_data(ll_code_data),
    .prog_wr(ll_prog_wr), .prog_row(ll_prog_row), .prog_data(ll_prog_data),
    .param_wr(ll_param_wr), .param_addr(ll_param_addr), .param_data(ll_param_data),
    .prog_rd_addr(ll_prog_rd_addr), .prog_rd_data(prog_b_data),
    .weights_done(ll_weights_done), .sched_done(ll_sched_done), .pass_count(ll_pass_count),
    .mismatch(ll_mismatch), .bad_code(ll_bad_code)
);

// the activation memory and the units that use it
wire [8*W-1:0] act_rd;
wire [3:0] wr_en;
wire [4*AW-1:0] wr_addr, res_addr;

wire [4*W-1:0] wr_data;
wire wr_ports_busy;
wire vec_rd, vec_wr, vec_busy;
wire [1:0] vec_rd_bank, vec_wr_bank;
wire [AW-1:0] vec_rd_addr, vec_wr_addr;
wire [W-1:0] vec_wr_data;
wire [W-1:0] wr_add_a, wr_add_b, vec_add_a, vec_add_b, add_y;
wire [19:0] vec_add_ctl;
wire si_wr;
wire [1:0] si_bank;
wire [AW-1:0] si_addr;
wire [W-1:0] si_data;
wire fill_rd, so_rd;
wire [8*AW-1:0] fill_addr, so_addr;
wire conv_running = state == RUN && is_conv;

pesto_act_mem #(.LANES(LANES), .AW(AW)) act_mem_inst (
    .clk(clk),
    .wr_en(conv_running ? wr_en : 4'b0000), .wr_addr(wr_addr), .wr_data(wr_data),
    .res_en(conv_running && wr_res_rd), .res_addr(res_addr),
    .vec_rd(vec_rd), .vec_rd_bank(vec_rd_bank), .vec_rd_addr(vec_rd_addr),
    .vec_wr(vec_wr), .vec_wr_bank(vec_wr_bank), .vec_wr_addr(vec_wr_addr), .vec_wr_data(vec_wr_data),
    .in_wr(si_wr), .in_bank(si_bank), .in_addr(si_addr), .in_data(si_data),
    .fill_rd(fill_rd && conv_running), .fill_addr(fill_addr),
    .out_rd(so_rd), .out_addr(so_addr),
    .rd_data(act_rd)
);
pesto_stream_in #(.LANES(LANES), .AW(AW)) stream_in_inst (
    .clk(clk), .rst(rst || unit_rst),
    .start(unit_go && is_in),
    .base(td_base), .plane(td_plane), .w2(td_w2), .phase(td_phase), .groups(td_g), .h(td_h), .w(td_w),
    .last_image(last_image),
    .b_valid(rx_valid && state == RUN && is_in), .b_ready(si_ready), .b_data(rx_data), .expect_last(si_expect),
    .wr(si_wr), .wr_bank(si_bank), .wr_addr(si_addr), .wr_data(si_data),
    .busy(si_busy)
);

// conv: tiles and passes, fill, window, issue, PEs, drain, writer
wire pf_valid, pf_empty, pi_valid, pi_first, pi_last, pi_empty, ps_busy;
wire [15:0] pf_addr;
wire signed [13:0] pf_y0, pf_x0;
wire [11:0] pi_count;
wire pf_ready, pi_ready;
wire full_next, load_soon, win_load;
wire [24:0] fill_we, fill_zero;
localparam SLICE_W = W / GROUP_CYCLES;          // a tap's slice: the lanes the PEs add a cycle
wire [4*9*SLICE_W-1:0] pe_taps;
wire pe_valid, pe_first;
wire [1:0] pe_slice;
wire [1:0] pe_bank;
wire [NW-1:0] pe_n;
wire [CW/GROUP_CYCLES-1:0] pe_codes;
wire blk_valid;
wire [2:0] bank_release;
wire [31:0] issued;
wire [1:0] os_acc_bank;
wire [NW-1:0] os_acc_addr;
wire [4*32-1:0] acc_data;
wire os_busy, wr_done;
wire wg_valid, wg_ready, wg_tile_last;
wire [4*W-1:0] wg_words;
wire [79:0] wg_offsets;
wire [3:0] wg_pixels;
wire is_pop;

pesto_passes #(.AW(AW), .PA(PA)) passes_inst (
    .clk(clk), .rst(rst || unit_rst),
    .start(passes_go), .stride2(stride2), .pad(d_pad[0]),
    .pass_base(d_pass_base), .pass_count(d_pass_count), .blocks_h(blocks_h), .blocks_w(blocks_w),
    .src_base(ta_base), .src_w2(ta_w2),
    .prog_addr(ps_prog_addr), .prog_data(prog_b_data),
    .f_valid(pf_valid), .f_ready(pf_ready), .f_empty(pf_empty), .f_addr(pf_addr), .f_y0(pf_y0), .f_x0(pf_x0),
    .i_valid(pi_valid), .i_ready(pi_ready), .i_count(pi_count), .i_first(pi_first), .i_last(pi_last),
    .i_empty(pi_empty), .busy(ps_busy)
);

pesto_fill #(.AW(AW)) fill_inst (
    .clk(clk), .rst(rst || unit_rst),
    .stride2(stride2), .in_h(ta_h), .in_w(ta_w), .src_w2(ta_w2),
    .d_valid(pf_valid), .d_ready(pf_ready), .d_empty(pf_empty), .d_addr(pf_addr), .d_y0(pf_y0), .d_x0(pf_x0),
    .load_soon(load_soon), .full_next(full_next), .stall(wr_ports_busy), .load(win_load),
    .rd_en(fill_rd), .rd_addr(fill_addr),
    .fill_we(fill_we), .fill_zero(fill_zero)
);

pesto_window #(.LANES(LANES), .GROUP_CYCLES(GROUP_CYCLES)) window_inst (
    .clk(clk),
    .fill_data(act_rd), .fill_we(fill_we), .fill_zero(fill_zero),
    .load(win_load), .stride2(stride2), .slice(pe_slice),
    .pe_taps(pe_taps)
);

pesto_issue #(.LANES(LANES), .GROUP_CYCLES(GROUP_CYCLES), .N_WIDTH(NW), .CA(CA), .PA(PA)) issue_inst (
    .clk(clk), .rst(rst || unit_rst),
    .start(unit_go && is_conv), .entry_base(d_entry_base),
    .d_valid(pi_valid), .d_ready(pi_ready), .d_count(pi_count), .d_first(pi_first), .d_last(pi_last),
    .d_empty(pi_empty),
    .prog_addr(is_prog_addr), .prog_data(prog_a_data),
    .code_addr(is_code_addr), .code_data(code_rd),
    .full_next(full_next), .load_soon(load_soon),
    .pe_valid(pe_valid), .pe_slice(pe_slice), .pe_first(pe_first), .pe_n(pe_n), .pe_bank(pe_bank), .pe_codes(pe_codes),
    .blk_valid(blk_valid), .bank_release(bank_release),
    .issued(issued), .popped(is_pop)
);

genvar pe;
generate
    for (pe = 0; pe < 4; pe = pe + 1) begin : pes
        pesto_fat_pe #(.LANES(LANES), .GROUP_CYCLES(GROUP_CYCLES), .N_WIDTH(NW)) pe_inst (
            .clk(clk), .rst(rst || unit_rst),
            .taps(pe_taps[9*SLICE_W*pe +: 9*SLICE_W]), .codes(pe_codes),
            .in_valid(pe_valid), .in_first(pe_first), .in_n(pe_n), .in_bank(pe_bank),
            .rd_bank(os_acc_bank), .rd_addr(os_acc_addr), .rd_data(acc_data[32*pe +: 32])
        );
    end
endgenerate

pesto_outputs #(.LANES(LANES), .N_WIDTH(NW), .PRA(PRA), .PA(PA)) outputs_inst (
    .clk(clk), .rst(rst || unit_rst),
    .start(unit_go && is_conv), .dense(!skip), .relu(d_relu), .n_out(d_n), .out_h(td_h), .out_w(td_w),
    .blocks_w(blocks_w), .blocks(blocks), .param_base(d_param_base[PRA-1:0]), .mask_base(d_mask_base),
    .dst_plane(td_plane), .dst_w2(td_w2),
    .masks_busy(os_masks_busy), .prog_addr(os_prog_addr), .prog_data(prog_b_data),
    .blk_valid(blk_valid), .bank_release(bank_release),
    .acc_bank(os_acc_bank), .acc_addr(os_acc_addr), .acc_data(acc_data),
    .param_addr(os_param_addr), .param_data(param_rd),
    .wg_valid(wg_valid), .wg_ready(wg_ready), .wg_words(wg_words), .wg_offsets(wg_offsets),
    .wg_pixels(wg_pixels), .wg_tile_last(wg_tile_last),
    .busy(os_busy)
);

pesto_writer #(.LANES(LANES), .AW(AW)) writer_inst (
    .clk(clk), .rst(rst || unit_rst),
    .start(unit_go && is_conv), .blocks(blocks), .res_en(d_res),
    .dst_base(td_base), .res_base(tb_base),
    .wg_valid(wg_valid), .wg_ready(wg_ready), .wg_words(wg_words), .wg_offsets(wg_offsets),
    .wg_pixels(wg_pixels), .wg_tile_last(wg_tile_last),
    .wr_en(wr_en), .wr_addr(wr_addr), .wr_data(wr_data), .rd_addr(res_addr), .rd_data(act_rd_b),
    .ports_busy(wr_ports_busy), .res_rd(wr_res_rd),
    .add_a(wr_add_a), .add_b(wr_add_b), .add_y(add_y),
    .done(wr_done)
);

// the writer reads port B of each bank
genvar bb;
generate
    for (bb = 0; bb < 4; bb = bb + 1) begin : port_b
        assign act_rd_b[W*bb +: W] = act_rd[W*(2*bb+1) +: W];
    end
endgenerate

pesto_vec #(.LANES(LANES), .AW(AW)) vec_inst (
    .clk(clk), .rst(rst || unit_rst),
    .start(unit_go && is_vec), .op(d_op), .relu(d_relu), .add_relu(d_add_relu),
    .lsh_a(d_lsh_a), .rsh_a(d_rsh_a), .lsh_b(d_lsh_b), .rsh_b(d_rsh_b),
    .stride2(stride2), .pad_before(d_pad_before),
    .a_base(ta_base), .a_plane(ta_plane), .a_w2(ta_w2), .a_phase(ta_phase), .a_groups(ta_g),
    .b_base(tb_base), .b_plane(tb_plane), .b_w2(tb_w2), .b_phase(tb_phase),
    .d_base(td_base), .d_plane(td_plane), .d_w2(td_w2), .d_phase(td_phase), .d_groups(td_g),
    .d_h(td_h), .d_w(td_w),
    .rd(vec_rd), .rd_bank(vec_rd_bank), .rd_addr(vec_rd_addr), .rd_data(act_rd),
    .wr(vec_wr), .wr_bank(vec_wr_bank), .wr_addr(vec_wr_addr), .wr_data(vec_wr_data),
    .add_ctl(vec_add_ctl), .add_a(vec_add_a), .add_b(vec_add_b), .add_y(add_y),
    .busy(vec_busy)
);

// one add unit for the fused residual add of a conv step (the writer) and the vector steps
wire [19:0] add_ctl = is_vec ? vec_add_ctl : {1'b1, d_add_relu, d_lsh_a, d_rsh_a, d_lsh_b, d_rsh_b};
pesto_add_lanes #(.LANES(LANES)) add_inst (
    .clk(clk),
    .add(add_ctl[19]), .relu(add_ctl[18]), .lsh_a(add_ctl[17:14]), .rsh_a(add_ctl[13:9]),
    .lsh_b(add_ctl[8:5]), .rsh_b(add_ctl[4:0]),
    .a(is_vec ? vec_add_a : wr_add_a), .b(is_vec ? vec_add_b : wr_add_b), .y(add_y)
);

// the output stream
wire so_valid, so_final, so_tlast, so_busy, pk_ready;
wire [63:0] so_data;
wire [2:0] so_count;
wire err_word = state == ERR_WORD;

pesto_stream_out #(.LANES(LANES), .AW(AW)) stream_out_inst (
    .clk(clk), .rst(rst || unit_rst),
    .start(unit_go && is_out),
    .base(ta_base), .plane(ta_plane), .w2(ta_w2), .phase(ta_phase), .channels(d_n), .h(ta_h), .w(ta_w),
    .last_image(last_image),
    .rd(so_rd), .rd_addr(so_addr), .rd_data(act_rd),
    .p_valid(so_valid), .p_ready(pk_ready && !err_word), .p_data(so_data), .p_count(so_count),
    .p_final(so_final), .p_tlast(so_tlast),
    .busy(so_busy)
);

pesto_packer_v2 packer_inst (
    .clk(clk), .rst(rst),
    .s_data(err_word ? 64'd0 : so_data), .s_count(err_word ? 3'd1 : so_count),
    .s_final(err_word || so_final), .s_tlast(err_word || so_tlast),
    .s_valid(err_word || so_valid), .s_ready(pk_ready),
    .m_axis_tdata(m_axis_tdata), .m_axis_tkeep(m_axis_tkeep), .m_axis_tvalid(m_axis_tvalid),
    .m_axis_tready(m_axis_tready), .m_axis_tlast(m_axis_tlast)
);

// per-step counters of the last image
wire [31:0] sc_rd, si_rd;
pesto_ram_sdp #(.WIDTH(32), .ADDR_WIDTH(8)) step_cycles_inst (
    .clk(clk), .wr_en(state == STEP_END), .wr_addr(step[7:0]), .wr_data(cycles_reg - step_t0),
    .rd_addr(cfg_step_sel[7:0]), .rd_data(sc_rd)
);
pesto_ram_sdp #(.WIDTH(32), .ADDR_WIDTH(8)) step_issue_inst (
    .clk(clk), .wr_en(state == STEP_END), .wr_addr(step[7:0]),
    .wr_data(popped ? last_pop - first_pop + 1'b1 : 32'd0),
    .rd_addr(cfg_step_sel[7:0]), .rd_data(si_rd)
);

// ------------------------------------------------------------------ control
// a reserved code inside a network program is a bad program (the program is the unit the
// driver reloads); in a layer-mode weight packet it stays v1's BAD_CODE
wire unit_busy = is_conv ? (!wr_done || os_busy || !step_started) :
                 is_vec ? vec_busy : is_in ? si_busy : is_out ? so_busy : 1'b0;
wire out_beat_last = m_axis_tvalid && m_axis_tready && m_axis_tlast;
wire [7:0] stream_err = rx_err_short ? PESTO_ERR_STREAM_SHORT : rx_err_long ? PESTO_ERR_STREAM_LONG :
                        ll_bad_code ? PESTO_ERR_BAD_CODE : (pl_bad || pl_bad_code) ? PESTO_ERR_BAD_PROGRAM :
                        (ll_mismatch && state == LAYER_LOAD && step_started) ? PESTO_ERR_NNZ_MISMATCH : 8'd0;
wire k3 = kh == 4'd3;
wire [11:0] n_groups = ({{11-NW{1'b0}}, n_v} + LANES - 1) >> LW;
wire [3:0] win_pad = k3 ? pad_v : 4'd1;              // a 1x1 kernel uses the centre of a padded window
wire in_phase = win_pad[0];

assign busy = state != IDLE;
assign done = done_reg;
assign err_code = err_reg;
assign cycles = cycles_reg;
assign compute_cycles = compute_cycles_reg;
assign groups_issued = groups_reg;
assign program_info = {prog_steps, 7'd0, prog_subnets, 2'd0, prog_dense, prog_valid};
assign program_sum = prog_sum;
assign step_cycles = sc_rd;
assign step_issue = si_rd;

// layer mode: a tensor's bank rows and columns at a phase
function [11:0] half;
    input [11:0] size;
    input phase;
    begin
        half = ((size - 1'b1 + {11'd0, phase}) >> 1) + 1'b1;
    end
endfunction

integer i;
always @(posedge clk) begin
    done_reg <= 1'b0;
    unit_go <= 1'b0;
    passes_go <= 1'b0;
    unit_rst <= 1'b0;

    if (state != IDLE) begin
        cycles_reg <= cycles_reg + 1'b1;
        if (counting_compute) begin
            compute_cycles_reg <= compute_cycles_reg + 1'b1;
        end
    end
    if (rx_last_seen && state != IDLE && !counting_compute) begin
        counting_compute <= 1'b1;
    end
    if (out_beat_last) begin
        tlast_sent <= 1'b1;
    end
    if (is_pop) begin
        if (!popped) begin
            first_pop <= cycles_reg;
        end
        popped <= 1'b1;
        last_pop <= cycles_reg;
    end

    // the first error wins; every later state sees err_reg set and goes to ABORT
    if (state != IDLE && err_reg == PESTO_ERR_NONE && stream_err != 8'd0) begin
        err_reg <= stream_err;
    end

    case (state)
        IDLE: begin
            if (start) begin
                skip <= cfg_mode[PESTO_MODE_SKIP_EN_LSB];
                load_w <= cfg_mode[PESTO_MODE_LOAD_WEIGHTS_LSB];
                network <= cfg_mode[PESTO_MODE_NETWORK_LSB] && !cfg_mode[PESTO_MODE_LOAD_PROGRAM_LSB];
                load_prog <= cfg_mode[PESTO_MODE_LOAD_PROGRAM_LSB];
                relu_cfg <= cfg_flags[PESTO_FLAGS_RELU_LSB];
                n_v <= cfg_n[NW:0];
                g_v <= cfg_g[11:0];
                in_h_v <= cfg_in_h[11:0];
                in_w_v <= cfg_in_w[11:0];
                out_h_v <= cfg_out_h[11:0];
                out_w_v <= cfg_out_w[11:0];
                nnz_v <= cfg_nnz[15:0];
                kh <= cfg_kernel[PESTO_KERNEL_KH_MSB:PESTO_KERNEL_KH_LSB];
                kw <= cfg_kernel[PESTO_KERNEL_KW_MSB:PESTO_KERNEL_KW_LSB];
                stride_v <= cfg_kernel[PESTO_KERNEL_STRIDE_MSB:PESTO_KERNEL_STRIDE_LSB];
                pad_v <= cfg_kernel[PESTO_KERNEL_PAD_MSB:PESTO_KERNEL_PAD_LSB];
                subnet <= cfg_subnet[4:0];
                subnet_ok <= cfg_subnet < 32'd16;
                images <= (cfg_images[15:0] == 16'd0) ? 16'd1 : cfg_images[15:0];
                ranges_ok <= cfg_n != 0 && cfg_n <= (1 << NW) && cfg_g != 0 && cfg_g <= 255 &&
                             cfg_in_h != 0 && cfg_in_h < 4096 && cfg_in_w != 0 && cfg_in_w < 4096 &&
                             cfg_out_h != 0 && cfg_out_h < 4096 && cfg_out_w != 0 && cfg_out_w < 4096 &&
                             cfg_nnz < 65536 && cfg_subnet < 32 && cfg_images < 65536;
                err_reg <= PESTO_ERR_NONE;
                cycles_reg <= 32'd1;
                compute_cycles_reg <= 32'd0;
                counting_compute <= 1'b0;
                groups_reg <= 32'd0;
                step_started <= 1'b0;
                rx_drop <= 1'b0;
                tlast_sent <= 1'b0;
                image <= 16'd0;
                step <= 16'd0;
                state <= CHECK1;
            end
        end
        CHECK1: begin
            in_h2 <= half(in_h_v, in_phase);
            in_w2 <= half(in_w_v, in_phase);
            out_h2 <= half(out_h_v, 1'b1);
            out_w2 <= half(out_w_v, 1'b1);
            ng_v <= {{12-NW-1{1'b0}}, n_v} * g_v;
            g_out <= n_groups[7:0];
            exp_h <= ((in_h_v + {7'd0, pad_v, 1'b0} - {8'd0, kh}) >> (stride_v == 4'd2)) + 1'b1;
            exp_w <= ((in_w_v + {7'd0, pad_v, 1'b0} - {8'd0, kw}) >> (stride_v == 4'd2)) + 1'b1;
            state <= CHECK2;
        end
        CHECK2: begin
            in_plane <= in_h2 * in_w2;
            out_plane <= out_h2 * out_w2;
            state <= CHECK3;
        end
        CHECK3: begin
            in_words <= g_v * in_plane;
            out_words <= {16'd0, g_out} * out_plane;
            state <= PREP;
        end
        PREP: begin
            // checks of the run, now that every product is registered
            has_output <= !load_prog;
            if (load_prog) begin
                prog_valid <= 1'b0;
                w_valid <= 1'b0;
                state <= PROG_LOAD;
            end else if (network) begin
                if (!prog_valid) begin
                    err_reg <= PESTO_ERR_NO_PROGRAM;
                end else if (!subnet_ok || subnet >= prog_subnets) begin
                    err_reg <= PESTO_ERR_BAD_SUBNET;
                end else if (!skip && !prog_dense) begin
                    err_reg <= PESTO_ERR_NO_DENSE;
                end
                steps_run <= prog_steps;
                sched_ptr <= {prog_steps[PA-5:0], 4'd0} + {{PA-7{1'b0}}, subnet, 2'd0};
                state <= FETCH;
                fetch_i <= 5'd0;
            end else begin
                if (ranges_ok && (kh == 4'd1 || kh == 4'd3) && kh == kw &&
                        (stride_v == 4'd1 || stride_v == 4'd2) && pad_v <= (kh >> 1) &&
                        in_h_v + {7'd0, pad_v, 1'b0} >= {8'd0, kh} && in_w_v + {7'd0, pad_v, 1'b0} >= {8'd0, kw} &&
                        exp_h == out_h_v && exp_w == out_w_v && ng_v <= (1 << (PA - 2)) &&
                        {8'd0, nnz_v} <= ng_v && in_words + out_words <= {{22-AW{1'b0}}, BANK_WORDS} &&
                        (load_w || (w_valid && w_n == n_v && w_g == g_v && w_k == kh && w_nnz == nnz_v))) begin
                    if (load_w) begin
                        prog_valid <= 1'b0;
                        w_valid <= 1'b0;
                    end
                end else begin
                    err_reg <= PESTO_ERR_CONFIG;
                end
                steps_run <= 16'd3;
                state <= LAYER_LOAD;
            end
        end
        PROG_LOAD: begin
            step_started <= 1'b1;
            if (err_reg != PESTO_ERR_NONE || stream_err != 8'd0) begin
                state <= ABORT;
            end else if (pl_done) begin
                prog_valid <= 1'b1;
                prog_steps <= pl_steps;
                prog_subnets <= pl_subnets;
                prog_dense <= pl_dense;
                prog_sum <= pl_sum;
                state <= FINISH;
            end
        end
        LAYER_LOAD: begin
            step_started <= 1'b1;
            if (err_reg != PESTO_ERR_NONE || stream_err != 8'd0) begin
                state <= ABORT;
            end else if (step_started && ll_weights_done) begin
                state <= BUILD;
            end
        end
        FETCH: begin
            // network: the step's 16 words, then the sub-net's 4 schedule words
            if (err_reg != PESTO_ERR_NONE) begin
                state <= ABORT;
            end else begin
                fetch_i <= fetch_i + 1'b1;
                if (fetch_i == DW[4:0] - 1'b1) begin
                    state <= FETCH_WAIT;
                end
            end
        end
        FETCH_WAIT: state <= PREP_STEP;   // the last word lands
        BUILD: begin
            // layer mode: the descriptor of step `step` from the layer registers
            for (i = 0; i < DW; i = i + 1) begin
                desc[i] <= 32'd0;
            end
            case (step[1:0])
                2'd0: begin
                    desc[0] <= {28'd0, PROG_OP_INPUT} << PROG_STEP_OP_LSB;
                    desc[PROG_TENSOR_D] <= ({{32-AW{1'b0}}, {AW{1'b0}}} << PROG_TENSOR_BASE_LSB) |
                                           ({31'd0, in_phase} << PROG_TENSOR_PHASE_LSB) |
                                           ({24'd0, g_v[7:0]} << PROG_TENSOR_G_LSB);
                    desc[PROG_TENSOR_D + 1] <= ({20'd0, in_h_v} << PROG_TENSOR_H_LSB) |
                                               ({20'd0, in_w_v} << PROG_TENSOR_W_LSB);
                    desc[PROG_TENSOR_D + 2] <= ({20'd0, in_w2} << PROG_TENSOR_W2_LSB) |
                                               ({12'd0, in_plane} << PROG_TENSOR_PLANE_LSB);
                end
                2'd1: begin
                    desc[0] <= ({28'd0, PROG_OP_CONV} << PROG_STEP_OP_LSB) | (32'd3 << PROG_STEP_KERNEL_LSB) |
                               ({28'd0, stride_v} << PROG_STEP_STRIDE_LSB) | ({28'd0, win_pad} << PROG_STEP_PAD_LSB) |
                               ({31'd0, relu_cfg} << PROG_STEP_RELU_LSB);
                    desc[PROG_STEP_N_WORD] <= {{32-NW-1{1'b0}}, n_v} << PROG_STEP_N_LSB;
                    desc[PROG_TENSOR_A] <= ({31'd0, in_phase} << PROG_TENSOR_PHASE_LSB) |
                                           ({24'd0, g_v[7:0]} << PROG_TENSOR_G_LSB);
                    desc[PROG_TENSOR_A + 1] <= ({20'd0, in_h_v} << PROG_TENSOR_H_LSB) |
                                               ({20'd0, in_w_v} << PROG_TENSOR_W_LSB);
                    desc[PROG_TENSOR_A + 2] <= ({20'd0, in_w2} << PROG_TENSOR_W2_LSB) |
                                               ({12'd0, in_plane} << PROG_TENSOR_PLANE_LSB);
                    desc[PROG_TENSOR_D] <= ({8'd0, in_words} << PROG_TENSOR_BASE_LSB) |
                                           (32'd1 << PROG_TENSOR_PHASE_LSB) |
                                           ({24'd0, g_out} << PROG_TENSOR_G_LSB);
                    desc[PROG_TENSOR_D + 1] <= ({20'd0, out_h_v} << PROG_TENSOR_H_LSB) |
                                               ({20'd0, out_w_v} << PROG_TENSOR_W_LSB);
                    desc[PROG_TENSOR_D + 2] <= ({20'd0, out_w2} << PROG_TENSOR_W2_LSB) |
                                               ({12'd0, out_plane} << PROG_TENSOR_PLANE_LSB);
                    desc[PROG_STEP_WORDS + 0] <= {ll_pass_count, 16'd0};
                    desc[PROG_STEP_WORDS + 1] <= {ll_pass_count, 16'd0};
                    desc[PROG_STEP_WORDS + 2] <= {{16-PA{1'b0}}, LAYER_ENTRY_BASE, 16'd0};
                    desc[PROG_STEP_WORDS + 3] <= {{16-PA{1'b0}}, LAYER_ENTRY_BASE, {16-PA{1'b0}}, LAYER_MASK_BASE};
                end
                default: begin
                    desc[0] <= {28'd0, PROG_OP_OUTPUT} << PROG_STEP_OP_LSB;
                    desc[PROG_STEP_N_WORD] <= {{32-NW-1{1'b0}}, n_v} << PROG_STEP_N_LSB;
                    desc[PROG_TENSOR_A] <= ({8'd0, in_words} << PROG_TENSOR_BASE_LSB) |
                                           (32'd1 << PROG_TENSOR_PHASE_LSB) |
                                           ({24'd0, g_out} << PROG_TENSOR_G_LSB);
                    desc[PROG_TENSOR_A + 1] <= ({20'd0, out_h_v} << PROG_TENSOR_H_LSB) |
                                               ({20'd0, out_w_v} << PROG_TENSOR_W_LSB);
                    desc[PROG_TENSOR_A + 2] <= ({20'd0, out_w2} << PROG_TENSOR_W2_LSB) |
                                               ({12'd0, out_plane} << PROG_TENSOR_PLANE_LSB);
                end
            endcase
            // the conv waits for its schedule (walk 2)
            if (err_reg != PESTO_ERR_NONE) begin
                state <= ABORT;
            end else if (step != 16'd1 || ll_sched_done) begin
                state <= PREP_STEP;
            end
        end
        PREP_STEP: begin
            blocks <= {12'd0, blocks_h} * {12'd0, blocks_w};
            step_t0 <= cycles_reg;
            popped <= 1'b0;
            passes_started <= 1'b0;
            if (is_conv || is_vec || is_in || is_out) begin
                unit_go <= 1'b1;
                step_started <= 1'b0;
                state <= RUN;
            end else begin
                err_reg <= PESTO_ERR_BAD_PROGRAM;
                state <= ABORT;
            end
        end
        RUN: begin
            step_started <= 1'b1;
            if (is_conv && step_started && !passes_started && !os_masks_busy) begin
                passes_go <= 1'b1;
                passes_started <= 1'b1;
            end
            if (err_reg != PESTO_ERR_NONE || stream_err != 8'd0) begin
                state <= ABORT;
            end else if (step_started && !unit_busy && (!is_conv || passes_started)) begin
                state <= STEP_END;
            end
        end
        STEP_END: begin
            if (is_conv) begin
                groups_reg <= groups_reg + issued;
            end
            if (!last_step) begin
                step <= step + 1'b1;
                state <= network ? FETCH : BUILD;
                fetch_i <= 5'd0;
                sched_ptr <= sched_ptr + {{PA-7{1'b0}}, prog_subnets, 2'd0};
            end else if (network && !last_image) begin
                image <= image + 1'b1;
                step <= 16'd0;
                fetch_i <= 5'd0;
                sched_ptr <= {prog_steps[PA-5:0], 4'd0} + {{PA-7{1'b0}}, subnet, 2'd0};
                state <= FETCH;
            end else begin
                state <= OUT_WAIT;
            end
        end
        ABORT: begin
            unit_rst <= 1'b1;
            rx_drop <= 1'b1;
            if (load_prog) begin
                prog_valid <= 1'b0;
            end else if (load_w && !network) begin
                w_valid <= 1'b0;
            end
            state <= DROP;
        end
        DROP: begin
            if (rx_drop_done) begin
                rx_drop <= 1'b0;
                state <= has_output ? ERR_WORD : FINISH;
            end
        end
        ERR_WORD: begin
            if (pk_ready) begin
                state <= OUT_WAIT;
            end
        end
        OUT_WAIT: begin
            if (tlast_sent || out_beat_last) begin
                state <= FINISH;
            end
        end
        FINISH: begin
            done_reg <= 1'b1;
            if (!network && !load_prog && load_w && err_reg == PESTO_ERR_NONE) begin
                w_valid <= 1'b1;
                w_n <= n_v;
                w_g <= g_v;
                w_k <= kh;
                w_nnz <= nnz_v;
            end
            state <= IDLE;
        end
        default: state <= IDLE;
    endcase

    // a fetched descriptor word lands one cycle after its address
    fetch_q_valid <= state == FETCH && err_reg == PESTO_ERR_NONE;
    fetch_q <= fetch_i;
    if (fetch_q_valid) begin
        desc[fetch_q] <= prog_a_data;
    end

    if (rst) begin
        state <= IDLE;
        err_reg <= PESTO_ERR_NONE;
        done_reg <= 1'b0;
        cycles_reg <= 32'd0;
        compute_cycles_reg <= 32'd0;
        counting_compute <= 1'b0;
        groups_reg <= 32'd0;
        // PROGRAM and PROGRAM_SUM read 0 after reset, not only VALID
        prog_valid <= 1'b0;
        prog_dense <= 1'b0;
        prog_subnets <= 5'd0;
        prog_steps <= 16'd0;
        prog_sum <= 32'd0;
        w_valid <= 1'b0;
        rx_drop <= 1'b0;
    end
end

// the kernel register's upper half and the descriptor bits no unit reads are reserved
wire unused_ok = &{1'b0, cfg_kernel[31:16], cfg_step_sel[31:8], d_pad[3:1], dw1, dw2, dw3, ta_w1, td_w1, tb_w1,
                   tb_g, tb_h, tb_w, d_param_base, rx_beat, ps_busy, n_groups, 1'b0};

endmodule

`resetall
