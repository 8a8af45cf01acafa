/*
 * pesto_indexer: turns the group indexer (one bit per (n, g), packed 64 per word) into the
 * scheduler's issue list, one bit per cycle, while the rest of the input stream loads.
 *
 * Issue list entry: {act_off = g*H*W (the group's base in the activation buffer),
 *                    code_base = (its rank among non-zero groups) * words_per_group,
 *                    nz}.
 * With skipping, a channel's list holds its non-zero groups only; without (the dense-ternary
 * baseline) every group, zero ones with nz = 0 (their codes read as zero). Per channel it
 * with a non-empty list it appends {channel, first entry, entry count} to a compacted channel
 * list, so the scheduler never spends a cycle on a channel whose groups are all zero; such a
 * channel (skipping on) is flagged for the emitter, which synthesises its outputs. Rebuilt on every run, so a
 * run that reuses the weights may change the mode.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_indexer #
(
    // output channel index width
    parameter N_WIDTH = 8,
    // issue list address width
    parameter LIST_WIDTH = 11,
    // activation buffer address width
    parameter ACT_ADDR_WIDTH = 10,
    // weight buffer address width
    parameter WGT_ADDR_WIDTH = 11,
    // indexer buffer address width (64-bit words)
    parameter IDX_ADDR_WIDTH = 5
)
(
    input  wire                        clk,
    input  wire                        rst,

    input  wire                        start,
    input  wire                        skip,
    input  wire [N_WIDTH:0]            num_channels,
    input  wire [LIST_WIDTH:0]         groups,
    input  wire [ACT_ADDR_WIDTH:0]     group_stride,
    input  wire [3:0]                  words_per_group,
    input  wire [LIST_WIDTH:0]         nnz,

    output wire [IDX_ADDR_WIDTH-1:0]   idx_addr,
    input  wire [63:0]                 idx_data,

    output wire                        list_wr,
    output wire [LIST_WIDTH-1:0]       list_addr,
    output wire [ACT_ADDR_WIDTH+WGT_ADDR_WIDTH:0] list_data,

    // per channel: whether its issue list is empty (the emitter synthesises it)
    output wire                        zero_wr,
    output wire [N_WIDTH-1:0]          zero_addr,
    output wire                        zero_data,

    // the channels with a non-empty list, compacted: {channel, first entry, entry count}
    output wire                        chan_wr,
    output wire [N_WIDTH-1:0]          chan_addr,
    output wire [N_WIDTH-1:0]          chan_channel,
    output wire [LIST_WIDTH-1:0]       chan_first,
    output wire [LIST_WIDTH:0]         chan_count,
    output wire [N_WIDTH:0]            active_channels,

    output wire                        done,
    output wire                        mismatch
);

localparam [1:0] IDLE = 2'd0, FETCH = 2'd1, WAIT = 2'd2, BITS = 2'd3;

reg [1:0] state;
reg done_reg;
reg [IDX_ADDR_WIDTH-1:0] word;
reg [5:0] bit_i;
reg [N_WIDTH:0] ch;
reg [LIST_WIDTH:0] g;
reg [ACT_ADDR_WIDTH:0] act_off;
reg [WGT_ADDR_WIDTH+3:0] code_base;
reg [LIST_WIDTH:0] entry;
reg [LIST_WIDTH:0] ch_first;
reg [LIST_WIDTH:0] ch_count;
reg [LIST_WIDTH:0] nz_total;
reg [N_WIDTH:0] active;

reg list_wr_reg, chan_wr_reg;
reg [LIST_WIDTH-1:0] list_addr_reg;
reg [ACT_ADDR_WIDTH+WGT_ADDR_WIDTH:0] list_data_reg;
reg [N_WIDTH-1:0] chan_addr_reg;
reg [N_WIDTH-1:0] chan_channel_reg;
reg zero_wr_reg, zero_data_reg;
reg [N_WIDTH-1:0] zero_addr_reg;
reg [LIST_WIDTH-1:0] chan_first_reg;
reg [LIST_WIDTH:0] chan_count_reg;

wire nz = idx_data[bit_i];
wire take = !skip || nz;
wire [LIST_WIDTH:0] count_next = ch_count + {{LIST_WIDTH{1'b0}}, take};
wire [LIST_WIDTH:0] entry_next = entry + {{LIST_WIDTH{1'b0}}, take};
wire [LIST_WIDTH:0] nz_next = nz_total + {{LIST_WIDTH{1'b0}}, nz};
wire last_group = g == groups - 1'b1;
wire last_channel = ch == num_channels - 1'b1;

assign idx_addr = word;
assign list_wr = list_wr_reg;
assign list_addr = list_addr_reg;
assign list_data = list_data_reg;
assign zero_wr = zero_wr_reg;
assign zero_addr = zero_addr_reg;
assign zero_data = zero_data_reg;
assign chan_wr = chan_wr_reg;
assign chan_addr = chan_addr_reg;
assign chan_channel = chan_channel_reg;
assign active_channels = active;
assign chan_first = chan_first_reg;
assign chan_count = chan_count_reg;
assign done = done_reg;
assign mismatch = nz_total != nnz;

always @(posedge clk) begin
    list_wr_reg <= 1'b0;
    chan_wr_reg <= 1'b0;
    zero_wr_reg <= 1'b0;

    case (state)
        IDLE: begin
            if (start) begin
                done_reg <= 1'b0;
                word <= {IDX_ADDR_WIDTH{1'b0}};
                bit_i <= 6'd0;
                ch <= {N_WIDTH+1{1'b0}};
                g <= {LIST_WIDTH+1{1'b0}};
                act_off <= {ACT_ADDR_WIDTH+1{1'b0}};
                code_base <= {WGT_ADDR_WIDTH+4{1'b0}};
                entry <= {LIST_WIDTH+1{1'b0}};
                ch_first <= {LIST_WIDTH+1{1'b0}};
                ch_count <= {LIST_WIDTH+1{1'b0}};
                nz_total <= {LIST_WIDTH+1{1'b0}};
                active <= {N_WIDTH+1{1'b0}};
                state <= FETCH;
            end
        end
        FETCH: state <= WAIT;   // idx_addr settles, the RAM answers next cycle
        WAIT: state <= BITS;
        BITS: begin
            if (take) begin
                list_wr_reg <= 1'b1;
                list_addr_reg <= entry[LIST_WIDTH-1:0];
                list_data_reg <= {act_off[ACT_ADDR_WIDTH-1:0], code_base[WGT_ADDR_WIDTH-1:0], nz};
            end
            entry <= entry_next;
            nz_total <= nz_next;
            if (nz) begin
                code_base <= code_base + {{WGT_ADDR_WIDTH{1'b0}}, words_per_group};
            end
            if (last_group) begin
                zero_wr_reg <= 1'b1;
                zero_addr_reg <= ch[N_WIDTH-1:0];
                zero_data_reg <= count_next == 0;
                if (count_next != 0) begin
                    chan_wr_reg <= 1'b1;
                    chan_addr_reg <= active[N_WIDTH-1:0];
                    active <= active + 1'b1;
                end
                chan_channel_reg <= ch[N_WIDTH-1:0];
                chan_first_reg <= ch_first[LIST_WIDTH-1:0];
                chan_count_reg <= count_next;
                ch <= ch + 1'b1;
                g <= {LIST_WIDTH+1{1'b0}};
                act_off <= {ACT_ADDR_WIDTH+1{1'b0}};
                ch_first <= entry_next;
                ch_count <= {LIST_WIDTH+1{1'b0}};
            end else begin
                g <= g + 1'b1;
                act_off <= act_off + group_stride;
                ch_count <= count_next;
            end
            bit_i <= bit_i + 1'b1;
            if (last_group && last_channel) begin
                state <= IDLE;
                done_reg <= 1'b1;
            end else if (bit_i == 6'd63) begin
                word <= word + 1'b1;
                state <= FETCH;
            end
        end
        default: state <= IDLE;
    endcase

    if (rst) begin
        state <= IDLE;
        done_reg <= 1'b0;
        list_wr_reg <= 1'b0;
        chan_wr_reg <= 1'b0;
        zero_wr_reg <= 1'b0;
        active <= {N_WIDTH+1{1'b0}};
        nz_total <= {LIST_WIDTH+1{1'b0}};
    end
end

// the entry count reaches the list depth only after the last channel
wire unused_ok = &{1'b0, ch_first[LIST_WIDTH], 1'b0};

endmodule

`resetall
