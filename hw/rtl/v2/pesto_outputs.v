/*
 * pesto_outputs: the drain of a conv step. For every completed tile (2 x 2 pixels) it walks the
 * output word groups (LANES channels each); the active channels of a group go one per cycle from
 * the four PEs' accumulators through pesto_out_stage (four lanes: the tile's four pixels), the
 * inactive ones take y0, their output for a zero accumulator. A finished group (four pixel
 * words, their offsets in the destination tensor, which pixels lie inside it) goes to the writer
 * through a small queue. A group without active channels costs one cycle, so a tile costs
 * sum over groups of max(1, active channels).
 *
 * At the start of a step it reads the step's word-group masks (the channels the sub-net issues;
 * a dense schedule issues every channel) and computes y0 of every inactive channel once (the
 * output stage with acc = 0), so tiles never spend a cycle on an inactive channel.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_outputs #
(
    // channels per word group
    parameter LANES = 16,
    // output channel index width
    parameter N_WIDTH = 9,
    // parameter memory address width
    parameter PRA = 12,
    // program memory word address width
    parameter PA = 14
)
(
    input  wire                     clk,
    input  wire                     rst,

    // the step (stable while it runs)
    input  wire                     start,
    input  wire                     dense,
    input  wire                     relu,
    input  wire [11:0]              n_out,
    input  wire [11:0]              out_h,
    input  wire [11:0]              out_w,
    input  wire [11:0]              blocks_w,
    input  wire [23:0]              blocks,
    input  wire [PRA-1:0]           param_base,
    input  wire [15:0]              mask_base,
    input  wire [19:0]              dst_plane,
    input  wire [11:0]              dst_w2,

    // program memory (the masks), read while masks_busy
    output wire                     masks_busy,
    output wire [PA-1:0]            prog_addr,
    input  wire [31:0]              prog_data,

    // completed tiles (pesto_issue) and the banks given back
    input  wire                     blk_valid,
    output wire [2:0]               bank_release,

    // the PEs' accumulators (one cycle latency)
    output wire [1:0]               acc_bank,
    output wire [N_WIDTH-1:0]       acc_addr,
    input  wire [4*32-1:0]          acc_data,

    // the parameter memory (one cycle latency)
    output wire [PRA-1:0]           param_addr,
    input  wire [69:0]              param_data,

    // finished word groups: pixel words (PE p = 2*dy + dx at [W*p +: W]), their offsets in the
    // destination (bank words from its base), which pixels exist, last group of its tile
    output wire                     wg_valid,
    input  wire                     wg_ready,
    output wire [4*16*LANES-1:0]    wg_words,
    output wire [4*20-1:0]          wg_offsets,
    output wire [3:0]               wg_pixels,
    output wire                     wg_tile_last,

    output wire                     busy
);

localparam W = 16 * LANES;
localparam LW = $clog2(LANES);
localparam GW = N_WIDTH - LW;                // word-group index width
localparam GROUPS = 1 << GW;
// out-stage tag: {kind, lane, last of group, last of tile, group}
localparam TW = 2 + LW + 2 + GW;
localparam [1:0] KIND_DATA = 2'd0, KIND_EMPTY = 2'd1, KIND_Y0 = 2'd2;
localparam QW = 4 * W + 4 * 20 + 4 + 1;      // a finished group in the queue

localparam [2:0] IDLE = 3'd0, MASK_READ = 3'd1, MASK_WRITE = 3'd2, Y0_CLEAR = 3'd3, Y0_LOAD = 3'd4,
                 Y0_ISSUE = 3'd5, Y0_WAIT = 3'd6, TILES = 3'd7;

reg [2:0] state;
reg [GW:0] w, groups_out;
reg [LANES-1:0] left;            // lanes of the current group still to issue
reg [LANES-1:0] mask_rf [0:GROUPS-1];
reg [3:0] wait_cnt;
reg [23:0] tiles_started;
reg [1:0] tile_bank;
reg in_tile;
reg [1:0] tiles_waiting;         // completed tiles not yet drained (three banks: at most three)
reg [1:0] credits;               // finished groups the queue can still take
reg [2:0] release_reg;

wire [GW-1:0] w_idx = w[GW-1:0];
wire [GW-1:0] w_next = w_idx + 1'b1;
wire last_group = w + 1'b1 == groups_out;

// the lanes of a group below n_out, and its active ones
function [LANES-1:0] below;
    input [11:0] count;
    begin
        below = (count >= LANES) ? {LANES{1'b1}} : ~({LANES{1'b1}} << count[LW:0]);
    end
endfunction
wire [11:0] n_here = n_out - {{12-GW-1-LW{1'b0}}, w, {LW{1'b0}}};
wire [11:0] n_after = n_here - LANES;
wire [LANES-1:0] exist_now = below(n_here);
wire [LANES-1:0] exist_next = below(n_after);
wire [LANES-1:0] exist_first = below(n_out);
wire [LANES-1:0] active_now = dense ? exist_now : mask_rf[w_idx] & exist_now;
wire [LANES-1:0] active_next = dense ? exist_next : mask_rf[w_next] & exist_next;
wire [LANES-1:0] active_first = dense ? exist_first : mask_rf[{GW{1'b0}}] & exist_first;

// lowest set lane of `left`
reg [LW-1:0] lane;
integer i;
always @* begin
    lane = {LW{1'b0}};
    for (i = LANES - 1; i >= 0; i = i - 1) begin
        if (left[i]) begin
            lane = i[LW-1:0];
        end
    end
end
wire [LANES-1:0] left_next = left & ~({{LANES-1{1'b0}}, 1'b1} << lane);
wire none_left = left == {LANES{1'b0}};
wire group_end = none_left || left_next == {LANES{1'b0}};
wire tile_go = state == TILES && in_tile && (!group_end || credits != 2'd0);
wire tile_end = tile_go && group_end && last_group;
wire next_tile = tiles_waiting != 2'd0 && (!in_tile || tile_end) && tiles_started != blocks;

// issue -> out stage (one cycle later, beside the accumulators)
reg is_valid;
reg [TW-1:0] is_tag;
reg [PRA-1:0] is_param;

wire [11:0] n_groups = (n_out + LANES - 1) >> LW;
wire q_pop = wg_valid && wg_ready;
wire q_s_ready;
wire consume = tile_go && group_end;

assign masks_busy = state == MASK_READ || state == MASK_WRITE;
assign prog_addr = mask_base[PA-1:0] + {{PA-GW-1{1'b0}}, w};
assign bank_release = release_reg;
assign acc_bank = tile_bank;
assign acc_addr = {w_idx, lane};
assign busy = state != IDLE;

always @(posedge clk) begin
    is_valid <= 1'b0;
    release_reg <= 3'b000;
    credits <= credits - {1'b0, consume} + {1'b0, q_pop};
    tiles_waiting <= tiles_waiting + {1'b0, blk_valid} - {1'b0, next_tile && state == TILES};
    case (state)
        IDLE: begin
            if (start) begin
                w <= {GW+1{1'b0}};
                groups_out <= n_groups[GW:0];
                state <= dense ? Y0_CLEAR : MASK_READ;
            end
        end
        MASK_READ: state <= MASK_WRITE;             // the mask word answers next cycle
        MASK_WRITE: begin
            mask_rf[w_idx] <= prog_data[LANES-1:0];
            w <= last_group ? {GW+1{1'b0}} : w + 1'b1;
            state <= last_group ? Y0_CLEAR : MASK_READ;
        end
        Y0_CLEAR: begin                             // one cycle per group: its y0 row = 0
            w <= last_group ? {GW+1{1'b0}} : w + 1'b1;
            state <= last_group ? Y0_LOAD : Y0_CLEAR;
        end
        Y0_LOAD: begin
            left <= exist_now & ~active_now;        // the inactive channels below n_out
            state <= Y0_ISSUE;
        end
        Y0_ISSUE: begin                             // one cycle per inactive channel
            if (!none_left) begin
                is_valid <= 1'b1;
                is_tag <= {KIND_Y0, lane, 2'b00, w_idx};
                is_param <= param_base + {{PRA-N_WIDTH{1'b0}}, w_idx, lane};
                left <= left_next;
            end
            if (group_end) begin
                w <= w + 1'b1;
                wait_cnt <= 4'd9;
                state <= last_group ? Y0_WAIT : Y0_LOAD;
            end
        end
        Y0_WAIT: begin                              // the last y0 leaves the output stage
            wait_cnt <= wait_cnt - 1'b1;
            if (wait_cnt == 4'd0) begin
                state <= TILES;
            end
        end
        TILES: begin
            if (tile_go) begin
                is_valid <= 1'b1;
                is_param <= param_base + {{PRA-N_WIDTH{1'b0}}, w_idx, lane};
                is_tag <= {none_left ? KIND_EMPTY : KIND_DATA, lane, group_end, group_end && last_group, w_idx};
                left <= left_next;
                if (group_end && !last_group) begin
                    w <= w + 1'b1;
                    left <= active_next;
                end
            end
            if (tile_end) begin
                in_tile <= 1'b0;
                release_reg <= 3'b001 << tile_bank;
                tile_bank <= (tile_bank == 2'd2) ? 2'd0 : tile_bank + 1'b1;
            end
            if (next_tile) begin
                in_tile <= 1'b1;
                tiles_started <= tiles_started + 1'b1;
                w <= {GW+1{1'b0}};
                left <= active_first;
            end
            if (!in_tile && tiles_started == blocks) begin
                state <= IDLE;
            end
        end
        default: state <= IDLE;
    endcase
    if (rst || start) begin
        tile_bank <= 2'd0;
        in_tile <= 1'b0;
        tiles_started <= 24'd0;
        credits <= 2'd2;
        tiles_waiting <= 2'd0;
    end
    if (rst) begin
        state <= IDLE;
        is_valid <= 1'b0;
    end
end

// ------------------------------------------------------------------ output stage
wire os_valid;
wire [63:0] os_data;
wire [TW-1:0] os_tag;

pesto_out_stage #(
    .OUT_LANES(4),
    .N_WIDTH(PRA),
    .USER_WIDTH(TW)
)
out_stage_inst (
    .clk(clk),
    .rst(rst),
    .relu(relu),
    .s_valid(is_valid),
    .s_acc(is_tag[TW-1 -: 2] == KIND_DATA ? acc_data : 128'd0),
    .s_channel(is_param),
    .s_user(is_tag),
    .param_addr(param_addr),
    .param_data(param_data),
    .m_valid(os_valid),
    .m_data(os_data),
    .m_user(os_tag)
);

// ------------------------------------------------------------------ assembly
wire [1:0] o_kind = os_tag[TW-1 -: 2];
wire [LW-1:0] o_lane = os_tag[GW+2 +: LW];
wire o_last_g = os_tag[GW+1];
wire o_last_t = os_tag[GW];
wire [GW-1:0] o_w = os_tag[GW-1:0];

reg [4*W-1:0] asm;
reg fresh;
reg [19:0] a_woff, a_row;
reg [11:0] a_bx, a_by;
wire [W-1:0] y0_row;

genvar l, p;
generate
    for (l = 0; l < LANES; l = l + 1) begin : y0_lane
        reg [15:0] y0_mem [0:GROUPS-1];
        always @(posedge clk) begin
            if (state == Y0_CLEAR) begin
                y0_mem[w_idx] <= 16'd0;
            end else if (os_valid && o_kind == KIND_Y0 && o_lane == l) begin
                y0_mem[o_w] <= os_data[15:0];
            end
        end
        assign y0_row[16*l +: 16] = y0_mem[o_w];
    end
endgenerate

// each lane of each pixel word: the output stage's result where it is that lane's turn, else
// what the word held (y0 at the start of a group); a compare per lane, not a shifter over 4 x W
wire [4*W-1:0] words;
genvar q;
generate
    for (q = 0; q < 4; q = q + 1) begin : pixel_word
        for (l = 0; l < LANES; l = l + 1) begin : lane_slot
            wire here = o_kind == KIND_DATA && o_lane == l;
            assign words[W*q + 16*l +: 16] = here ? os_data[16*q +: 16] :
                                             fresh ? y0_row[16*l +: 16] : asm[W*q + 16*l +: 16];
        end
    end
endgenerate

wire [4*20-1:0] offsets;
wire [3:0] pixels;
generate
    for (p = 0; p < 4; p = p + 1) begin : pixel
        assign offsets[20*p +: 20] = a_woff + a_row + ((p >= 2) ? {8'd0, dst_w2} : 20'd0) + {8'd0, a_bx} +
                                     ((p % 2 == 1) ? 20'd1 : 20'd0);
        assign pixels[p] = {a_by, 1'b0} + ((p >= 2) ? 13'd1 : 13'd0) < {1'b0, out_h} &&
                           {a_bx, 1'b0} + ((p % 2 == 1) ? 13'd1 : 13'd0) < {1'b0, out_w};
    end
endgenerate

wire push = os_valid && o_kind != KIND_Y0 && o_last_g;

always @(posedge clk) begin
    if (os_valid && o_kind != KIND_Y0) begin
        asm <= words;
        fresh <= o_last_g;
        if (o_last_g) begin
            a_woff <= a_woff + dst_plane;
        end
        if (o_last_t) begin
            a_woff <= 20'd0;
            if (a_bx == blocks_w - 1'b1) begin
                a_bx <= 12'd0;
                a_by <= a_by + 1'b1;
                a_row <= a_row + {8'd0, dst_w2};
            end else begin
                a_bx <= a_bx + 1'b1;
            end
        end
    end
    if (rst || start) begin
        fresh <= 1'b1;
        a_woff <= 20'd0;
        a_row <= 20'd0;
        a_bx <= 12'd0;
        a_by <= 12'd0;
    end
end

pesto_fifo #(.WIDTH(QW), .ADDR_WIDTH(1)) queue_inst (
    .clk(clk), .rst(rst || start),
    .s_data({words, offsets, pixels, o_last_t}), .s_valid(push), .s_ready(q_s_ready),
    .m_data({wg_words, wg_offsets, wg_pixels, wg_tile_last}), .m_valid(wg_valid), .m_ready(wg_ready)
);

// the credits keep the queue from overflowing; masks are LANES wide, program words 32
wire unused_ok = &{1'b0, q_s_ready, mask_base, prog_data, n_groups, 1'b0};

endmodule

`resetall
