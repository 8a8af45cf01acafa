/*
 * pesto_loader: takes the input stream of one run apart into the engine's buffers.
 *
 *   weight packet (if load_weights): 2 words per output channel (bias, then mult|shift),
 *     the group indexer, the codes of the non-zero groups
 *   activation packet: LANES/4 words per activation buffer entry, in (g, y, x) order
 *
 * Always ready, so the stream runs at one beat per cycle. It checks the stream against the
 * expected length: TLAST before the last expected beat ends the run (err_short); no TLAST on
 * the last expected beat switches to dropping beats through the next TLAST (err_long); a
 * reserved code 2 in a code word raises bad_code. drop (a configuration error) or abort (an
 * error found elsewhere) also drops through TLAST, so the DMA always completes its transfer.
 * For each channel it also precomputes y0, the output stage of a zero accumulator, saturated.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_loader #
(
    // channels per PE group word
    parameter LANES = 16,
    // activation buffer address width
    parameter ACT_ADDR_WIDTH = 10,
    // weight buffer address width (64-bit words)
    parameter WGT_ADDR_WIDTH = 11,
    // indexer buffer address width (64-bit words)
    parameter IDX_ADDR_WIDTH = 5,
    // output channel index width
    parameter N_WIDTH = 8,
    // beat counter width
    parameter BEAT_WIDTH = 24
)
(
    input  wire                        clk,
    input  wire                        rst,

    input  wire                        start,
    input  wire                        drop,
    input  wire                        abort,
    input  wire [BEAT_WIDTH-1:0]       param_words,
    input  wire [BEAT_WIDTH-1:0]       idx_words,
    input  wire [BEAT_WIDTH-1:0]       code_words,
    input  wire [BEAT_WIDTH-1:0]       act_words,

    input  wire [63:0]                 s_axis_tdata,
    input  wire [7:0]                  s_axis_tkeep,
    input  wire                        s_axis_tvalid,
    output wire                        s_axis_tready,
    input  wire                        s_axis_tlast,

    output wire                        param_wr,
    output wire [N_WIDTH-1:0]          param_addr,
    output wire [69:0]                 param_data,
    output wire                        y0_wr,
    output wire [N_WIDTH-1:0]          y0_addr,
    output wire [15:0]                 y0_data,
    output wire                        idx_wr,
    output wire [IDX_ADDR_WIDTH-1:0]   idx_addr,
    output wire [63:0]                 idx_data,
    output wire                        wgt_wr,
    output wire [WGT_ADDR_WIDTH-1:0]   wgt_addr,
    output wire [63:0]                 wgt_data,
    output wire                        act_wr,
    output wire [ACT_ADDR_WIDTH-1:0]   act_addr,
    output wire [16*LANES-1:0]         act_data,

    output wire                        idx_complete,
    output wire                        bad_code,
    output wire                        err_short,
    output wire                        err_long,
    output wire                        done
);

localparam WORDS_PER_ENTRY = LANES / 4;
localparam WPE_SHIFT = $clog2(WORDS_PER_ENTRY);
localparam WPE_BITS = (WORDS_PER_ENTRY > 1) ? WPE_SHIFT : 1;
localparam integer LAST_WORD_I = WORDS_PER_ENTRY - 1;
localparam [WPE_BITS-1:0] LAST_WORD = LAST_WORD_I[WPE_BITS-1:0];
localparam [1:0] IDLE = 2'd0, RUN = 2'd1, DROP = 2'd2;

reg [1:0] state;
reg [BEAT_WIDTH-1:0] beat;
reg [47:0] bias_reg;
reg [16*LANES-1:0] entry;

reg param_wr_reg, idx_wr_reg, wgt_wr_reg, act_wr_reg;
reg [N_WIDTH-1:0] param_addr_reg;
reg [69:0] param_data_reg;
reg [IDX_ADDR_WIDTH-1:0] idx_addr_reg;
reg [WGT_ADDR_WIDTH-1:0] wgt_addr_reg;
reg [63:0] word_reg;
reg [ACT_ADDR_WIDTH-1:0] act_addr_reg;
reg bad_code_reg, err_short_reg, err_long_reg, done_reg;

// y0 pipeline: round-shift of the bias alone, then saturation
reg y0_v1, y0_v2;
reg [N_WIDTH-1:0] y0_n1, y0_n2;
reg [49:0] y0_sum1;
reg [5:0] y0_shift1;
reg [15:0] y0_data_reg;

// where each section of the stream ends, fixed when the run starts
reg [BEAT_WIDTH-1:0] end_params, end_idx, end_codes, last_beat;

wire accept = s_axis_tvalid && (state == RUN || state == DROP);
wire in_run = accept && state == RUN;
wire is_last = beat == last_beat;
wire [BEAT_WIDTH-1:0] param_i = beat;
wire [BEAT_WIDTH-1:0] idx_i = beat - end_params;
wire [BEAT_WIDTH-1:0] code_i = beat - end_idx;
wire [BEAT_WIDTH-1:0] act_i = beat - end_codes;
// which word of its buffer entry an activation beat is, and the entry's address
wire [WPE_BITS-1:0] act_word = (WORDS_PER_ENTRY == 1) ? {WPE_BITS{1'b0}} : act_i[WPE_BITS-1:0];
wire [BEAT_WIDTH-1:0] act_entry = act_i >> WPE_SHIFT;

// a 2-bit field holding the reserved code 2 (binary 10)
wire [31:0] fields_hi, fields_lo;
genvar f;
generate
    for (f = 0; f < 32; f = f + 1) begin : field
        assign fields_hi[f] = s_axis_tdata[2*f+1];
        assign fields_lo[f] = s_axis_tdata[2*f];
    end
endgenerate
wire has_reserved = |(fields_hi & ~fields_lo);

wire [5:0] in_shift = s_axis_tdata[21:16];
wire [49:0] in_half = (in_shift == 6'd0) ? 50'd0 : (50'd1 << (in_shift - 6'd1));
wire [49:0] y0_shifted = $signed(y0_sum1) >>> y0_shift1;

assign s_axis_tready = state == RUN || state == DROP;
assign param_wr = param_wr_reg;
assign param_addr = param_addr_reg;
assign param_data = param_data_reg;
assign y0_wr = y0_v2;
assign y0_addr = y0_n2;
assign y0_data = y0_data_reg;
assign idx_wr = idx_wr_reg;
assign idx_addr = idx_addr_reg;
assign idx_data = word_reg;
assign wgt_wr = wgt_wr_reg;
assign wgt_addr = wgt_addr_reg;
assign wgt_data = word_reg;
assign act_wr = act_wr_reg;
assign act_addr = act_addr_reg;
assign act_data = entry;
assign idx_complete = beat >= end_idx;
assign bad_code = bad_code_reg;
assign err_short = err_short_reg;
assign err_long = err_long_reg;
assign done = done_reg;

always @(posedge clk) begin
    param_wr_reg <= 1'b0;
    idx_wr_reg <= 1'b0;
    wgt_wr_reg <= 1'b0;
    act_wr_reg <= 1'b0;
    bad_code_reg <= 1'b0;
    err_short_reg <= 1'b0;
    err_long_reg <= 1'b0;
    done_reg <= 1'b0;
    y0_v1 <= 1'b0;
    word_reg <= s_axis_tdata;

    case (state)
        IDLE: begin
            if (start) begin
                beat <= {BEAT_WIDTH{1'b0}};
                end_params <= param_words;
                end_idx <= param_words + idx_words;
                end_codes <= param_words + idx_words + code_words;
                last_beat <= param_words + idx_words + code_words + act_words - 1'b1;
                state <= drop ? DROP : RUN;
            end
        end
        RUN: begin
            if (abort) begin
                state <= DROP;
            end
        end
        DROP: ;
        default: state <= IDLE;
    endcase

    if (in_run) begin
        beat <= beat + 1'b1;
        if (beat < end_params) begin
            if (param_i[0]) begin
                param_wr_reg <= 1'b1;
                param_addr_reg <= param_i[N_WIDTH:1];
                param_data_reg <= {bias_reg, s_axis_tdata[21:0]};
                y0_v1 <= 1'b1;
                y0_n1 <= param_i[N_WIDTH:1];
                y0_sum1 <= {{2{bias_reg[47]}}, bias_reg} + in_half;
                y0_shift1 <= in_shift;
            end else begin
                bias_reg <= s_axis_tdata[47:0];
            end
        end else if (beat < end_idx) begin
            idx_wr_reg <= 1'b1;
            idx_addr_reg <= idx_i[IDX_ADDR_WIDTH-1:0];
        end else if (beat < end_codes) begin
            wgt_wr_reg <= 1'b1;
            wgt_addr_reg <= code_i[WGT_ADDR_WIDTH-1:0];
            bad_code_reg <= has_reserved;
        end else begin
            entry[64*act_word +: 64] <= s_axis_tdata;
            if (WORDS_PER_ENTRY == 1 || act_word == LAST_WORD) begin
                act_wr_reg <= 1'b1;
            end
            act_addr_reg <= act_entry[ACT_ADDR_WIDTH-1:0];
        end
        if (s_axis_tlast && !is_last) begin
            err_short_reg <= 1'b1;
            done_reg <= 1'b1;
            state <= IDLE;
        end else if (s_axis_tlast) begin
            done_reg <= 1'b1;
            state <= IDLE;
        end else if (is_last) begin
            err_long_reg <= 1'b1;
            state <= DROP;
        end
    end else if (accept && s_axis_tlast) begin
        done_reg <= 1'b1;
        state <= IDLE;
    end

    y0_v2 <= y0_v1;
    y0_n2 <= y0_n1;
    if (!y0_shifted[49] && y0_shifted[48:15] != 34'd0) begin
        y0_data_reg <= 16'h7FFF;
    end else if (y0_shifted[49] && y0_shifted[48:15] != {34{1'b1}}) begin
        y0_data_reg <= 16'h8000;
    end else begin
        y0_data_reg <= y0_shifted[15:0];
    end

    if (rst) begin
        state <= IDLE;
        beat <= {BEAT_WIDTH{1'b0}};
        end_params <= {BEAT_WIDTH{1'b0}};
        end_idx <= {BEAT_WIDTH{1'b0}};
        end_codes <= {BEAT_WIDTH{1'b0}};
        last_beat <= {BEAT_WIDTH{1'b0}};
        param_wr_reg <= 1'b0;
        idx_wr_reg <= 1'b0;
        wgt_wr_reg <= 1'b0;
        act_wr_reg <= 1'b0;
        bad_code_reg <= 1'b0;
        err_short_reg <= 1'b0;
        err_long_reg <= 1'b0;
        done_reg <= 1'b0;
        y0_v1 <= 1'b0;
        y0_v2 <= 1'b0;
    end
end

wire unused_ok = &{1'b0, s_axis_tkeep, param_i, idx_i, code_i, act_i, act_entry, 1'b0};

endmodule

`resetall
