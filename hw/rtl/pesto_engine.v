/*
 * pesto_engine: one layer run from start to done.
 *
 *   s_axis -> pesto_loader -> param / y0 / indexer / weight RAMs, activation buffers
 *             pesto_indexer: indexer -> issue list (non-zero groups, or all of them)
 *             pesto_sched -> pesto_pe_array (NUM_PE add/sub PEs, lockstep, weights broadcast)
 *             -> pesto_drain (2 accumulator banks) -> pesto_out_stage -> output FIFO
 *             -> pesto_emitter (synthesises skipped channels) -> pesto_packer -> m_axis
 *
 * Run: CHECK the latched configuration (errors: CONFIG), LOAD the input stream (STREAM_SHORT,
 * STREAM_LONG, BAD_CODE, NNZ_MISMATCH; the issue list and the PEs' pixel origins are built
 * meanwhile), COMPUTE (scheduler, PEs and emitter run concurrently: a channel is emitted while
 * the next ones compute), then done. A run that fails consumes its input through TLAST, sends
 * no output and ends with AP_DONE and STATUS.ERR_CODE.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_engine #
(
    // channels per PE group word: 4, 8, 16 or 32
    parameter LANES = 16,
    // processing elements, a multiple of 4
    parameter NUM_PE = 8,
    // largest kernel side
    parameter MAX_K = 3,
    // log2 of the activation buffer depth (LANES-wide words, per copy)
    parameter LOG2_ACT_DEPTH = 11,
    // log2 of the weight buffer depth (64-bit words; also bounds N*G)
    parameter LOG2_WGT_DEPTH = 11,
    // log2 of the most output channels
    parameter LOG2_MAX_N = 8,
    // log2 of the most output pixels per channel
    parameter LOG2_MAX_PIX = 11,
    // log2 of the output FIFO depth in 64-bit words
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

/* verilator lint_off UNUSEDPARAM */
`include "pesto_regmap.vh"
/* verilator lint_on UNUSEDPARAM */

localparam AW = LOG2_ACT_DEPTH;
localparam WAW = LOG2_WGT_DEPTH;
localparam NW = LOG2_MAX_N;
localparam PIXW = LOG2_MAX_PIX + 1;
localparam LW = LOG2_WGT_DEPTH;
localparam IAW = (WAW > 6) ? WAW - 6 : 1;
localparam CW = AW + 4;
localparam CNTW = $clog2(NUM_PE + 1);
// beat counters: wide enough for every packet length the build allows (indexer words need NW+LW+2
// bits before the divide, code words LW+5, activation words AW+1+LG_WPE); at least 24
localparam BW_IDX = NW + LW + 2;
localparam BW_ACT = AW + 1 + $clog2(LANES / 4);
localparam BW_MAX = (BW_IDX > LW + 5) ? ((BW_IDX > BW_ACT) ? BW_IDX : BW_ACT) : ((LW + 5 > BW_ACT) ? LW + 5 : BW_ACT);
localparam BW = (BW_MAX > 24) ? BW_MAX : 24;
localparam TAPS_PER_WORD = 32 / LANES;
localparam LG_TPW = $clog2(TAPS_PER_WORD);
localparam LG_WPE = $clog2(LANES / 4);
localparam OUT_FIFO_DEPTH = 1 << LOG2_OUT_FIFO;
localparam integer NUM_PE_I = NUM_PE;
localparam [7:0] WALK_END = NUM_PE_I[7:0];

localparam [2:0] IDLE = 3'd0, CHECK1 = 3'd1, CHECK2 = 3'd2, CHECK3 = 3'd3, PREP = 3'd4,
                 LOAD = 3'd5, COMPUTE = 3'd6, FINISH = 3'd7;

reg [2:0] state;
reg [7:0] err_reg;
reg done_reg;
reg [31:0] cycles_reg, compute_cycles_reg;
reg counting_compute;

// latched configuration
reg skip, load_w, relu;
reg [31:0] n_cfg, g_cfg, in_h_cfg, in_w_cfg, out_h_cfg, out_w_cfg, nnz_cfg;
reg [3:0] kh, kw, stride, pad;

// the weights currently in the buffers
reg w_valid;
reg [NW:0] w_n;
reg [LW:0] w_g, w_nnz;
reg [3:0] w_k;

// derived values (CHECK1)
reg [NW:0] n_v;
reg [LW:0] g_v, nnz_v;
reg [AW:0] in_h_v, in_w_v, out_h_v, out_w_v;
reg [2*AW+1:0] hw_v;
reg [2*AW+LW+2:0] ghw_v;
reg [2*AW+1:0] pix_v;
reg [NW+LW+1:0] ng_v;
reg [LW+4:0] code_words_v;
reg [3:0] taps_v, wpg_v;
reg ranges_ok;
reg [AW+2:0] exp_out_h, exp_out_w;
reg config_ok;

// per-run addressing constants for the PEs
reg signed [CW-1:0] wos, wrap_x, wrap_dorg, stride_s;
reg [7:0] walk_p;
reg walk_done;
reg signed [CW-1:0] walk_ix, walk_iy, walk_org, org0;
reg signed [CW-1:0] step_x, step_y, step_org;

reg ld_start, ld_drop, ld_finished;
reg ix_started, sched_start;

// ------------------------------------------------------------------ submodule wiring
wire ld_param_wr, ld_y0_wr, ld_idx_wr, ld_wgt_wr, ld_act_wr;
wire [NW-1:0] ld_param_addr, ld_y0_addr;
wire [69:0] ld_param_data;
wire [15:0] ld_y0_data;
wire [IAW-1:0] ld_idx_addr;
wire [63:0] ld_idx_data, ld_wgt_data;
wire [WAW-1:0] ld_wgt_addr;
wire [AW-1:0] ld_act_addr;
wire [16*LANES-1:0] ld_act_data;
wire ld_idx_complete, ld_bad_code, ld_err_short, ld_err_long, ld_done;

wire [IAW-1:0] ix_idx_addr;
wire [63:0] ix_idx_data;
wire ix_list_wr, ix_chan_wr, ix_zero_wr, ix_zero_data, ix_done, ix_mismatch;
wire [NW-1:0] ix_zero_addr, ix_chan_channel;
wire [NW:0] ix_active;
wire [LW-1:0] ix_list_addr;
wire [AW+WAW:0] ix_list_data;
wire [NW-1:0] ix_chan_addr;
wire [LW-1:0] ix_chan_first;
wire [LW:0] ix_chan_count;

wire [NW-1:0] sc_chan_addr, sc_chan_channel;
wire [LW-1:0] sc_chan_first;
wire [LW:0] sc_chan_count;
wire [LW-1:0] sc_list_addr;
wire [AW+WAW:0] sc_list_data;
wire [WAW-1:0] sc_wgt_addr;
wire [63:0] sc_wgt_data;
wire bc_valid, bc_first, bc_last, bc_blk0;
wire signed [CW-1:0] bc_off;
wire [1:0] bc_ky, bc_kx;
wire [NW-1:0] bc_channel;
wire [CNTW-1:0] bc_count;
wire [2*LANES-1:0] bc_codes;
wire sc_busy;

wire res_valid;
wire [32*NUM_PE-1:0] res;
wire [NW+CNTW-1:0] res_meta;

wire bank_release;
wire os_in_valid;
wire [127:0] os_in_acc;
wire [NW-1:0] os_in_channel;
wire [2:0] os_in_count;
wire [NW-1:0] os_param_addr;
wire [69:0] os_param_data;
wire os_valid;
wire [63:0] os_data;
wire [2:0] os_count;

wire [66:0] fifo_out;
wire fifo_valid, fifo_ready, fifo_s_ready;
wire fifo_pop = fifo_valid && fifo_ready;

wire [NW-1:0] em_ch_addr;
wire em_ch_zero;
wire [15:0] em_ch_y0;
wire [63:0] em_data;
wire [2:0] em_count;
wire em_final, em_valid, em_ready;

wire walk_wr = state != IDLE && !walk_done && walk_p < WALK_END;

assign busy = state != IDLE;
assign done = done_reg;
assign err_code = err_reg;
assign cycles = cycles_reg;
assign compute_cycles = compute_cycles_reg;

// ------------------------------------------------------------------ control
wire [3:0] ksq = (kh == 4'd3) ? 4'd9 : 4'd1;
// code words per group: ceil(taps / taps per word)
localparam integer TPW_I = TAPS_PER_WORD;
wire [4:0] wpg_full = ({1'b0, ksq} + TPW_I[4:0] - 5'd1) >> LG_TPW;
wire out_beat_last = m_axis_tvalid && m_axis_tready && m_axis_tlast;
wire [7:0] stream_err = ld_err_short ? PESTO_ERR_STREAM_SHORT :
                        ld_err_long ? PESTO_ERR_STREAM_LONG :
                        ld_bad_code ? PESTO_ERR_BAD_CODE :
                        (ix_started && ix_done && ix_mismatch) ? PESTO_ERR_NNZ_MISMATCH : 8'd0;

always @(posedge clk) begin
    done_reg <= 1'b0;
    ld_start <= 1'b0;
    sched_start <= 1'b0;

    if (state != IDLE) begin
        cycles_reg <= cycles_reg + 1'b1;
        if (counting_compute) begin
            compute_cycles_reg <= compute_cycles_reg + 1'b1;
        end
    end

    case (state)
        IDLE: begin
            if (start) begin
                skip <= cfg_mode[PESTO_MODE_SKIP_EN_LSB];
                load_w <= cfg_mode[PESTO_MODE_LOAD_WEIGHTS_LSB];
                relu <= cfg_flags[PESTO_FLAGS_RELU_LSB];
                n_cfg <= cfg_n;
                g_cfg <= cfg_g;
                in_h_cfg <= cfg_in_h;
                in_w_cfg <= cfg_in_w;
                out_h_cfg <= cfg_out_h;
                out_w_cfg <= cfg_out_w;
                nnz_cfg <= cfg_nnz;
                kh <= cfg_kernel[PESTO_KERNEL_KH_MSB:PESTO_KERNEL_KH_LSB];
                kw <= cfg_kernel[PESTO_KERNEL_KW_MSB:PESTO_KERNEL_KW_LSB];
                stride <= cfg_kernel[PESTO_KERNEL_STRIDE_MSB:PESTO_KERNEL_STRIDE_LSB];
                pad <= cfg_kernel[PESTO_KERNEL_PAD_MSB:PESTO_KERNEL_PAD_LSB];
                err_reg <= PESTO_ERR_NONE;
                cycles_reg <= 32'd1;
                compute_cycles_reg <= 32'd0;
                counting_compute <= 1'b0;
                state <= CHECK1;
            end
        end
        CHECK1: begin
            ranges_ok <= n_cfg != 0 && n_cfg <= (1 << NW) &&
                         g_cfg != 0 && g_cfg <= (1 << LW) &&
                         in_h_cfg != 0 && in_h_cfg <= (1 << AW) &&
                         in_w_cfg != 0 && in_w_cfg <= (1 << AW) &&
                         out_h_cfg != 0 && out_h_cfg <= (1 << AW) &&
                         out_w_cfg != 0 && out_w_cfg <= (1 << AW) &&
                         nnz_cfg <= (1 << LW) &&
                         (kh == 4'd1 || kh == 4'd3) && kh == kw && kh <= MAX_K &&
                         (stride == 4'd1 || stride == 4'd2) && pad <= (kh >> 1);
            n_v <= n_cfg[NW:0];
            g_v <= g_cfg[LW:0];
            nnz_v <= nnz_cfg[LW:0];
            in_h_v <= in_h_cfg[AW:0];
            in_w_v <= in_w_cfg[AW:0];
            out_h_v <= out_h_cfg[AW:0];
            out_w_v <= out_w_cfg[AW:0];
            hw_v <= in_h_cfg[AW:0] * in_w_cfg[AW:0];
            pix_v <= out_h_cfg[AW:0] * out_w_cfg[AW:0];
            ng_v <= n_cfg[NW:0] * g_cfg[LW:0];
            taps_v <= ksq;
            wpg_v <= wpg_full[3:0];
            exp_out_h <= ({2'b0, in_h_cfg[AW:0]} + {{AW{1'b0}}, pad[1:0], 1'b0} - {{AW-1{1'b0}}, kh}) >> (stride == 4'd2);
            exp_out_w <= ({2'b0, in_w_cfg[AW:0]} + {{AW{1'b0}}, pad[1:0], 1'b0} - {{AW-1{1'b0}}, kw}) >> (stride == 4'd2);
            state <= CHECK2;
        end
        CHECK2: begin
            ghw_v <= g_v * hw_v;
            code_words_v <= nnz_v * wpg_v;
            stride_s <= {{CW-4{1'b0}}, stride};
            wos <= (stride == 4'd2) ? $signed({{CW-AW-2{1'b0}}, out_w_v, 1'b0}) : $signed({{CW-AW-1{1'b0}}, out_w_v});
            state <= CHECK3;
        end
        CHECK3: begin
            // every product is registered by now
            config_ok <= 1'b0;
            if (ranges_ok && {1'b0, in_h_v} + {{AW-1{1'b0}}, pad[1:0], 1'b0} >= {{AW-2{1'b0}}, kh} &&
                    {1'b0, in_w_v} + {{AW-1{1'b0}}, pad[1:0], 1'b0} >= {{AW-2{1'b0}}, kw} &&
                    exp_out_h + 1'b1 == {2'b0, out_h_v} && exp_out_w + 1'b1 == {2'b0, out_w_v} &&
                    ghw_v <= (1 << AW) && pix_v <= (1 << LOG2_MAX_PIX) &&
                    ng_v <= (1 << LW) && {{NW+1{1'b0}}, nnz_v} <= ng_v &&
                    code_words_v <= (1 << WAW) &&
                    (load_w || (w_valid && w_n == n_v && w_g == g_v && w_k == kh && w_nnz == nnz_v))) begin
                config_ok <= 1'b1;
            end
            state <= PREP;
        end
        PREP: begin
            // start loading (or, with a bad configuration, dropping the stream)
            ld_start <= 1'b1;
            ld_drop <= !config_ok;
            ld_finished <= 1'b0;
            ix_started <= 1'b0;
            walk_p <= 8'd0;
            walk_done <= !config_ok;
            if (!config_ok) begin
                err_reg <= PESTO_ERR_CONFIG;
            end
            if (load_w) begin
                w_valid <= 1'b0;
            end
            state <= LOAD;
        end
        LOAD: begin
            if (ld_done) begin
                ld_finished <= 1'b1;
                counting_compute <= 1'b1;
            end
            if (err_reg == PESTO_ERR_NONE && stream_err != 8'd0) begin
                err_reg <= stream_err;
            end
            if (!ix_started && ld_idx_complete && config_ok && !ld_start) begin
                ix_started <= 1'b1;
            end
            if (ld_finished || ld_done) begin
                if (err_reg != PESTO_ERR_NONE || stream_err != 8'd0) begin
                    state <= FINISH;
                end else if (ix_started && ix_done && walk_done && !ix_mismatch) begin
                    sched_start <= 1'b1;
                    state <= COMPUTE;
                end
            end
        end
        COMPUTE: begin
            if (out_beat_last) begin
                state <= FINISH;
            end
        end
        FINISH: begin
            done_reg <= 1'b1;
            if (load_w && err_reg == PESTO_ERR_NONE) begin
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

    // the PEs' pixel origins: walk NUM_PE pixels from the first one while the stream loads
    if (state == PREP) begin
        walk_ix <= -$signed({{CW-4{1'b0}}, pad});
        walk_iy <= -$signed({{CW-4{1'b0}}, pad});
        walk_org <= (pad != 0) ? -$signed({{CW-AW-1{1'b0}}, in_w_v}) - 1 : {CW{1'b0}};
        org0 <= (pad != 0) ? -$signed({{CW-AW-1{1'b0}}, in_w_v}) - 1 : {CW{1'b0}};
        wrap_x <= wos - $signed({{CW-4{1'b0}}, pad});
        wrap_dorg <= ((stride == 4'd2) ? $signed({{CW-AW-2{1'b0}}, in_w_v, 1'b0}) :
                      $signed({{CW-AW-1{1'b0}}, in_w_v})) - wos;
    end else if (state == LOAD && !walk_done) begin
        if (walk_p == WALK_END) begin
            step_x <= walk_ix + $signed({{CW-4{1'b0}}, pad});
            step_y <= walk_iy + $signed({{CW-4{1'b0}}, pad});
            step_org <= walk_org - org0;
            walk_done <= 1'b1;
        end else begin
            walk_p <= walk_p + 1'b1;
            if (walk_ix + stride_s >= wrap_x) begin
                walk_ix <= walk_ix + stride_s - wos;
                walk_iy <= walk_iy + stride_s;
                walk_org <= walk_org + stride_s + wrap_dorg;
            end else begin
                walk_ix <= walk_ix + stride_s;
                walk_org <= walk_org + stride_s;
            end
        end
    end

    if (rst) begin
        state <= IDLE;
        err_reg <= PESTO_ERR_NONE;
        done_reg <= 1'b0;
        cycles_reg <= 32'd0;
        compute_cycles_reg <= 32'd0;
        counting_compute <= 1'b0;
        w_valid <= 1'b0;
        ld_start <= 1'b0;
        ld_drop <= 1'b0;
        sched_start <= 1'b0;
        ix_started <= 1'b0;
        walk_done <= 1'b1;
        walk_p <= 8'd0;
    end
end

wire [BW-1:0] param_words = load_w ? {{BW-NW-2{1'b0}}, n_v, 1'b0} : {BW{1'b0}};
wire [BW-1:0] idx_words = load_w ? (({{BW-NW-LW-2{1'b0}}, ng_v} + {{BW-6{1'b0}}, 6'd63}) >> 6) : {BW{1'b0}};
wire [BW-1:0] code_words = load_w ? {{BW-LW-5{1'b0}}, code_words_v} : {BW{1'b0}};
wire [BW-1:0] act_words = {{BW-AW-1{1'b0}}, ghw_v[AW:0]} << LG_WPE;

// ------------------------------------------------------------------ datapath
pesto_loader #(
    .LANES(LANES),
    .ACT_ADDR_WIDTH(AW),
    .WGT_ADDR_WIDTH(WAW),
    .IDX_ADDR_WIDTH(IAW),
    .N_WIDTH(NW),
    .BEAT_WIDTH(BW)
)
loader_inst (
    .clk(clk),
    .rst(rst),
    .start(ld_start),
    .drop(ld_drop),
    .abort(state == LOAD && (err_reg != PESTO_ERR_NONE || stream_err != 8'd0)),
    .param_words(param_words),
    .idx_words(idx_words),
    .code_words(code_words),
    .act_words(act_words),
    .s_axis_tdata(s_axis_tdata),
    .s_axis_tkeep(s_axis_tkeep),
    .s_axis_tvalid(s_axis_tvalid),
    .s_axis_tready(s_axis_tready),
    .s_axis_tlast(s_axis_tlast),
    .param_wr(ld_param_wr),
    .param_addr(ld_param_addr),
    .param_data(ld_param_data),
    .y0_wr(ld_y0_wr),
    .y0_addr(ld_y0_addr),
    .y0_data(ld_y0_data),
    .idx_wr(ld_idx_wr),
    .idx_addr(ld_idx_addr),
    .idx_data(ld_idx_data),
    .wgt_wr(ld_wgt_wr),
    .wgt_addr(ld_wgt_addr),
    .wgt_data(ld_wgt_data),
    .act_wr(ld_act_wr),
    .act_addr(ld_act_addr),
    .act_data(ld_act_data),
    .idx_complete(ld_idx_complete),
    .bad_code(ld_bad_code),
    .err_short(ld_err_short),
    .err_long(ld_err_long),
    .done(ld_done)
);

pesto_ram_sdp #(.WIDTH(70), .ADDR_WIDTH(NW)) param_ram_inst (
    .clk(clk),
    .wr_en(ld_param_wr), .wr_addr(ld_param_addr), .wr_data(ld_param_data),
    .rd_addr(os_param_addr), .rd_data(os_param_data)
);

pesto_ram_sdp #(.WIDTH(16), .ADDR_WIDTH(NW)) y0_ram_inst (
    .clk(clk),
    .wr_en(ld_y0_wr), .wr_addr(ld_y0_addr), .wr_data(ld_y0_data),
    .rd_addr(em_ch_addr), .rd_data(em_ch_y0)
);

pesto_ram_sdp #(.WIDTH(64), .ADDR_WIDTH(IAW)) idx_ram_inst (
    .clk(clk),
    .wr_en(ld_idx_wr), .wr_addr(ld_idx_addr), .wr_data(ld_idx_data),
    .rd_addr(ix_idx_addr), .rd_data(ix_idx_data)
);

pesto_ram_sdp #(.WIDTH(64), .ADDR_WIDTH(WAW)) wgt_ram_inst (
    .clk(clk),
    .wr_en(ld_wgt_wr), .wr_addr(ld_wgt_addr), .wr_data(ld_wgt_data),
    .rd_addr(sc_wgt_addr), .rd_data(sc_wgt_data)
);

pesto_indexer #(
    .N_WIDTH(NW),
    .LIST_WIDTH(LW),
    .ACT_ADDR_WIDTH(AW),
    .WGT_ADDR_WIDTH(WAW),
    .IDX_ADDR_WIDTH(IAW)
)
indexer_inst (
    .clk(clk),
    .rst(rst),
    .start(state == LOAD && !ix_started && ld_idx_complete && config_ok && !ld_start),
    .skip(skip),
    .num_channels(n_v),
    .groups(g_v),
    .group_stride(hw_v[AW:0]),
    .words_per_group(wpg_v),
    .nnz(nnz_v),
    .idx_addr(ix_idx_addr),
    .idx_data(ix_idx_data),
    .list_wr(ix_list_wr),
    .list_addr(ix_list_addr),
    .list_data(ix_list_data),
    .zero_wr(ix_zero_wr),
    .zero_addr(ix_zero_addr),
    .zero_data(ix_zero_data),
    .chan_wr(ix_chan_wr),
    .chan_addr(ix_chan_addr),
    .chan_channel(ix_chan_channel),
    .active_channels(ix_active),
    .chan_first(ix_chan_first),
    .chan_count(ix_chan_count),
    .done(ix_done),
    .mismatch(ix_mismatch)
);

pesto_ram_sdp #(.WIDTH(AW+WAW+1), .ADDR_WIDTH(LW)) list_ram_inst (
    .clk(clk),
    .wr_en(ix_list_wr), .wr_addr(ix_list_addr), .wr_data(ix_list_data),
    .rd_addr(sc_list_addr), .rd_data(sc_list_data)
);

pesto_ram_sdp #(.WIDTH(NW+2*LW+1), .ADDR_WIDTH(NW)) chan_ram_inst (
    .clk(clk),
    .wr_en(ix_chan_wr), .wr_addr(ix_chan_addr), .wr_data({ix_chan_channel, ix_chan_first, ix_chan_count}),
    .rd_addr(sc_chan_addr), .rd_data({sc_chan_channel, sc_chan_first, sc_chan_count})
);

pesto_ram_sdp #(.WIDTH(1), .ADDR_WIDTH(NW)) zero_ram_inst (
    .clk(clk),
    .wr_en(ix_zero_wr), .wr_addr(ix_zero_addr), .wr_data(ix_zero_data),
    .rd_addr(em_ch_addr), .rd_data(em_ch_zero)
);

pesto_sched #(
    .LANES(LANES),
    .NUM_PE(NUM_PE),
    .N_WIDTH(NW),
    .LIST_WIDTH(LW),
    .ACT_ADDR_WIDTH(AW),
    .WGT_ADDR_WIDTH(WAW),
    .COORD_WIDTH(CW),
    .PIX_WIDTH(PIXW),
    .COUNT_WIDTH(CNTW)
)
sched_inst (
    .clk(clk),
    .rst(rst),
    .start(sched_start),
    .active_channels(ix_active),
    .kernel(kh[1:0]),
    .taps(taps_v),
    .pixels(pix_v[PIXW-1:0]),
    .in_w(in_w_v),
    .chan_addr(sc_chan_addr),
    .chan_channel(sc_chan_channel),
    .chan_first(sc_chan_first),
    .chan_count(sc_chan_count),
    .list_addr(sc_list_addr),
    .list_data(sc_list_data),
    .wgt_addr(sc_wgt_addr),
    .wgt_data(sc_wgt_data),
    .bank_release(bank_release),
    .bc_valid(bc_valid),
    .bc_first(bc_first),
    .bc_last(bc_last),
    .bc_blk0(bc_blk0),
    .bc_off(bc_off),
    .bc_ky(bc_ky),
    .bc_kx(bc_kx),
    .bc_channel(bc_channel),
    .bc_count(bc_count),
    .bc_codes(bc_codes),
    .busy(sc_busy),
    .groups_issued(groups_issued)
);

pesto_pe_array #(
    .LANES(LANES),
    .NUM_PE(NUM_PE),
    .ADDR_WIDTH(AW),
    .COORD_WIDTH(CW),
    .META_WIDTH(NW+CNTW)
)
pe_array_inst (
    .clk(clk),
    .rst(rst),
    .init_wr(walk_wr),
    .init_sel(walk_p),
    .init_ix0(walk_ix),
    .init_iy0(walk_iy),
    .init_org(walk_org),
    .step_x(step_x),
    .step_y(step_y),
    .step_org(step_org),
    .wrap_x(wrap_x),
    .wrap_dx(-wos),
    .wrap_dy(stride_s),
    .wrap_dorg(wrap_dorg),
    .in_h({{CW-AW-1{1'b0}}, in_h_v}),
    .in_w({{CW-AW-1{1'b0}}, in_w_v}),
    .act_wr(ld_act_wr),
    .act_wr_addr(ld_act_addr),
    .act_wr_data(ld_act_data),
    .bc_valid(bc_valid),
    .bc_first(bc_first),
    .bc_last(bc_last),
    .bc_blk0(bc_blk0),
    .bc_off(bc_off),
    .bc_ky(bc_ky),
    .bc_kx(bc_kx),
    .bc_meta({bc_channel, bc_count}),
    .bc_codes(bc_codes),
    .res_valid(res_valid),
    .res(res),
    .res_meta(res_meta)
);

pesto_drain #(
    .NUM_PE(NUM_PE),
    .OUT_LANES(4),
    .N_WIDTH(NW),
    .COUNT_WIDTH(CNTW),
    .FIFO_DEPTH(OUT_FIFO_DEPTH)
)
drain_inst (
    .clk(clk),
    .rst(rst),
    .res_valid(res_valid),
    .res(res),
    .res_channel(res_meta[NW+CNTW-1:CNTW]),
    .res_count(res_meta[CNTW-1:0]),
    .bank_release(bank_release),
    .os_valid(os_in_valid),
    .os_acc(os_in_acc),
    .os_channel(os_in_channel),
    .os_count(os_in_count),
    .fifo_pop(fifo_pop)
);

pesto_out_stage #(
    .OUT_LANES(4),
    .N_WIDTH(NW),
    .USER_WIDTH(3)
)
out_stage_inst (
    .clk(clk),
    .rst(rst),
    .relu(relu),
    .s_valid(os_in_valid),
    .s_acc(os_in_acc),
    .s_channel(os_in_channel),
    .s_user(os_in_count),
    .param_addr(os_param_addr),
    .param_data(os_param_data),
    .m_valid(os_valid),
    .m_data(os_data),
    .m_user(os_count)
);

pesto_fifo #(
    .WIDTH(67),
    .ADDR_WIDTH(LOG2_OUT_FIFO)
)
out_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data({os_count, os_data}),
    .s_valid(os_valid),
    .s_ready(fifo_s_ready),
    .m_data(fifo_out),
    .m_valid(fifo_valid),
    .m_ready(fifo_ready)
);

pesto_emitter #(
    .N_WIDTH(NW),
    .PIX_WIDTH(PIXW)
)
emitter_inst (
    .clk(clk),
    .rst(rst),
    .start(sched_start),
    .num_channels(n_v),
    .pixels(pix_v[PIXW-1:0]),
    .relu(relu),
    .ch_addr(em_ch_addr),
    .ch_zero(em_ch_zero),
    .ch_y0(em_ch_y0),
    .fifo_data(fifo_out[63:0]),
    .fifo_count(fifo_out[66:64]),
    .fifo_valid(fifo_valid),
    .fifo_ready(fifo_ready),
    .m_data(em_data),
    .m_count(em_count),
    .m_final(em_final),
    .m_valid(em_valid),
    .m_ready(em_ready)
);

pesto_packer packer_inst (
    .clk(clk),
    .rst(rst),
    .s_data(em_data),
    .s_count(em_count),
    .s_final(em_final),
    .s_valid(em_valid),
    .s_ready(em_ready),
    .m_axis_tdata(m_axis_tdata),
    .m_axis_tkeep(m_axis_tkeep),
    .m_axis_tvalid(m_axis_tvalid),
    .m_axis_tready(m_axis_tready),
    .m_axis_tlast(m_axis_tlast)
);

// the drain's credits keep the output FIFO from overflowing; the kernel register's upper half
// is reserved
wire unused_ok = &{1'b0, fifo_s_ready, sc_busy, cfg_kernel[31:16], wpg_full[4], 1'b0};

endmodule

`resetall
