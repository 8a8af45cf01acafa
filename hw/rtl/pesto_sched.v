/*
 * pesto_sched: the group scheduler. It issues one kernel tap of one PE group per cycle to all
 * PEs at once (they compute NUM_PE pixels of the same output channel), in the order
 *
 *   for each output channel n with a non-empty issue list (a compacted list of them):
 *     for each block of NUM_PE output pixels:
 *       for each entry of n's issue list (its non-zero groups with skipping, else all groups):
 *         for each tap (ky, kx): broadcast {group base + ky*W + kx, codes of (group, tap)}
 *
 * so every issued group costs Kh*Kw cycles, the same on every PE, and skipped groups and
 * skipped channels cost nothing. No stalls except one: a block's last tap waits for a free
 * accumulator bank (credits returned by the drain).
 *
 * Pipeline: a (counters) -> b (issue list read) -> c (addresses; broadcast to the PEs, code
 * word read) -> codes two cycles after the broadcast, when the PEs have the activations.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_sched #
(
    // channels per PE group word
    parameter LANES = 16,
    // processing elements
    parameter NUM_PE = 8,
    // output channel index width
    parameter N_WIDTH = 8,
    // issue list address width
    parameter LIST_WIDTH = 11,
    // activation buffer address width
    parameter ACT_ADDR_WIDTH = 10,
    // weight buffer address width
    parameter WGT_ADDR_WIDTH = 11,
    // signed width of coordinates and buffer offsets
    parameter COORD_WIDTH = 13,
    // pixel count width
    parameter PIX_WIDTH = 13,
    // block value count width
    parameter COUNT_WIDTH = 5
)
(
    input  wire                          clk,
    input  wire                          rst,

    input  wire                          start,
    input  wire [N_WIDTH:0]              active_channels,
    input  wire [1:0]                    kernel,
    input  wire [3:0]                    taps,
    input  wire [PIX_WIDTH-1:0]          pixels,
    input  wire [ACT_ADDR_WIDTH:0]       in_w,

    output wire [N_WIDTH-1:0]            chan_addr,
    input  wire [N_WIDTH-1:0]            chan_channel,
    input  wire [LIST_WIDTH-1:0]         chan_first,
    input  wire [LIST_WIDTH:0]           chan_count,

    output wire [LIST_WIDTH-1:0]         list_addr,
    input  wire [ACT_ADDR_WIDTH+WGT_ADDR_WIDTH:0] list_data,

    output wire [WGT_ADDR_WIDTH-1:0]     wgt_addr,
    input  wire [63:0]                   wgt_data,

    input  wire                          bank_release,

    output wire                          bc_valid,
    output wire                          bc_first,
    output wire                          bc_last,
    output wire                          bc_blk0,
    output wire signed [COORD_WIDTH-1:0] bc_off,
    output wire [1:0]                    bc_ky,
    output wire [1:0]                    bc_kx,
    output wire [N_WIDTH-1:0]            bc_channel,
    output wire [COUNT_WIDTH-1:0]        bc_count,
    output wire [2*LANES-1:0]            bc_codes,

    output wire                          busy,
    output wire [31:0]                   groups_issued
);

localparam TAPS_PER_WORD = 32 / LANES;
localparam LG_TPW = $clog2(TAPS_PER_WORD);
localparam integer NUM_PE_I = NUM_PE;
localparam [PIX_WIDTH-1:0] BLOCK = NUM_PE_I[PIX_WIDTH-1:0];
localparam [1:0] IDLE = 2'd0, LOOKUP = 2'd1, RUN = 2'd2;

// stage a: loop counters
reg [1:0] state;
reg [N_WIDTH-1:0] ch;
reg [N_WIDTH:0] ch_rd;
reg rd_fresh;
reg [LIST_WIDTH-1:0] first;
reg [LIST_WIDTH:0] count;
reg [LIST_WIDTH:0] j;
reg [3:0] t;
reg [1:0] ky, kx;
reg [PIX_WIDTH-1:0] pix;
reg [1:0] credits;
reg [31:0] groups_reg;

reg a_valid, a_first, a_last, a_blk0;
reg [LIST_WIDTH-1:0] a_entry;
reg [3:0] a_t;
reg [1:0] a_ky, a_kx;
reg [N_WIDTH-1:0] a_ch;
reg [COUNT_WIDTH-1:0] a_count;

// stage b: the issue list answers
reg b_valid, b_first, b_last, b_blk0;
reg [3:0] b_t;
reg [1:0] b_ky, b_kx;
reg [N_WIDTH-1:0] b_ch;
reg [COUNT_WIDTH-1:0] b_count;

// stage c: broadcast
reg c_valid, c_first, c_last, c_blk0;
reg signed [COORD_WIDTH-1:0] c_off;
reg [1:0] c_ky, c_kx;
reg [N_WIDTH-1:0] c_ch;
reg [COUNT_WIDTH-1:0] c_count;
reg [WGT_ADDR_WIDTH-1:0] c_wgt_addr;
reg [LG_TPW:0] c_slice;
reg c_nz;
reg [LG_TPW:0] d_slice;
reg d_nz;
reg [2*LANES-1:0] codes_reg;

wire last_tap = t == taps - 1'b1;
wire last_entry = j == count - 1'b1;
wire block_last = last_tap && last_entry;
wire issue = state == RUN && (!block_last || credits != 2'd0);
wire [PIX_WIDTH:0] next_pix = {1'b0, pix} + {1'b0, BLOCK};
wire last_block = next_pix >= {1'b0, pixels};
wire [PIX_WIDTH-1:0] pix_left = pixels - pix;
wire next_ready = rd_fresh && ch_rd != active_channels;

wire [ACT_ADDR_WIDTH-1:0] b_act_off = list_data[ACT_ADDR_WIDTH+WGT_ADDR_WIDTH:WGT_ADDR_WIDTH+1];
wire [WGT_ADDR_WIDTH-1:0] b_code_base = list_data[WGT_ADDR_WIDTH:1];
wire b_nz = list_data[0];
wire [ACT_ADDR_WIDTH+2:0] b_row_off = (b_ky == 2'd2) ? {1'b0, in_w, 1'b0} :
                                       (b_ky == 2'd1) ? {2'b0, in_w} : {ACT_ADDR_WIDTH+3{1'b0}};

assign chan_addr = ch_rd[N_WIDTH-1:0];
assign list_addr = a_entry;
assign wgt_addr = c_wgt_addr;
assign bc_valid = c_valid;
assign bc_first = c_first;
assign bc_last = c_last;
assign bc_blk0 = c_blk0;
assign bc_off = c_off;
assign bc_ky = c_ky;
assign bc_kx = c_kx;
assign bc_channel = c_ch;
assign bc_count = c_count;
assign bc_codes = codes_reg;
assign busy = state != IDLE;
assign groups_issued = groups_reg;

always @(posedge clk) begin
    a_valid <= 1'b0;
    rd_fresh <= 1'b1;

    case (state)
        IDLE: begin
            if (start) begin
                ch_rd <= {N_WIDTH+1{1'b0}};
                rd_fresh <= 1'b0;
                groups_reg <= 32'd0;
                state <= LOOKUP;
            end
        end
        LOOKUP: begin
            if (ch_rd == active_channels) begin
                state <= IDLE;
            end else if (rd_fresh) begin
                ch <= chan_channel;
                first <= chan_first;
                count <= chan_count;
                pix <= {PIX_WIDTH{1'b0}};
                j <= {LIST_WIDTH+1{1'b0}};
                t <= 4'd0;
                ky <= 2'd0;
                kx <= 2'd0;
                state <= RUN;
                ch_rd <= ch_rd + 1'b1;
                rd_fresh <= 1'b0;
            end
        end
        RUN: begin
            if (issue) begin
                a_valid <= 1'b1;
                a_entry <= first + j[LIST_WIDTH-1:0];
                a_t <= t;
                a_ky <= ky;
                a_kx <= kx;
                a_ch <= ch;
                a_first <= j == 0 && t == 0;
                a_last <= block_last;
                a_blk0 <= pix == 0;
                a_count <= (pix_left >= BLOCK) ? BLOCK[COUNT_WIDTH-1:0] : pix_left[COUNT_WIDTH-1:0];
                if (pix == 0 && t == 0) begin
                    groups_reg <= groups_reg + 1'b1;
                end
                if (!last_tap) begin
                    t <= t + 1'b1;
                    if (kx == kernel - 1'b1) begin
                        kx <= 2'd0;
                        ky <= ky + 1'b1;
                    end else begin
                        kx <= kx + 1'b1;
                    end
                end else begin
                    t <= 4'd0;
                    ky <= 2'd0;
                    kx <= 2'd0;
                    if (!last_entry) begin
                        j <= j + 1'b1;
                    end else begin
                        j <= {LIST_WIDTH+1{1'b0}};
                        if (!last_block) begin
                            pix <= next_pix[PIX_WIDTH-1:0];
                        end else if (next_ready) begin
                            // the next channel's list is already known: no bubble
                            ch <= chan_channel;
                            first <= chan_first;
                            count <= chan_count;
                            pix <= {PIX_WIDTH{1'b0}};
                            ch_rd <= ch_rd + 1'b1;
                            rd_fresh <= 1'b0;
                        end else begin
                            // the next channel's entry is still on its way (or none is left)
                            state <= LOOKUP;
                        end
                    end
                end
            end
        end
        default: state <= IDLE;
    endcase

    credits <= credits - ((issue && block_last) ? 2'd1 : 2'd0) + (bank_release ? 2'd1 : 2'd0);

    // stage b
    b_valid <= a_valid;
    b_first <= a_first;
    b_last <= a_last;
    b_blk0 <= a_blk0;
    b_t <= a_t;
    b_ky <= a_ky;
    b_kx <= a_kx;
    b_ch <= a_ch;
    b_count <= a_count;

    // stage c
    c_valid <= b_valid;
    c_first <= b_first;
    c_last <= b_last;
    c_blk0 <= b_blk0;
    c_off <= $signed({{COORD_WIDTH-ACT_ADDR_WIDTH{1'b0}}, b_act_off}) +
             $signed({{COORD_WIDTH-ACT_ADDR_WIDTH-3{1'b0}}, b_row_off}) +
             $signed({{COORD_WIDTH-2{1'b0}}, b_kx});
    c_ky <= b_ky;
    c_kx <= b_kx;
    c_ch <= b_ch;
    c_count <= b_count;
    c_wgt_addr <= b_code_base + {{WGT_ADDR_WIDTH-4{1'b0}}, b_t >> LG_TPW};
    c_slice <= b_t[LG_TPW:0] & TAPS_PER_WORD[LG_TPW:0] - 1'b1;
    c_nz <= b_nz;

    // codes: the word answers one cycle after the broadcast, the PEs want them one later
    d_slice <= c_slice;
    d_nz <= c_nz;
    codes_reg <= d_nz ? wgt_data[2*LANES*d_slice +: 2*LANES] : {2*LANES{1'b0}};

    if (rst) begin
        state <= IDLE;
        a_valid <= 1'b0;
        b_valid <= 1'b0;
        c_valid <= 1'b0;
        credits <= 2'd2;
        groups_reg <= 32'd0;
        rd_fresh <= 1'b0;
        ch_rd <= {N_WIDTH+1{1'b0}};
    end
end

endmodule

`resetall
