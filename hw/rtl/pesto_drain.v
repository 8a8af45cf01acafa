/*
 * pesto_drain: hands the PE accumulators of finished blocks to the output stage.
 *
 * Two banks of NUM_PE accumulators (ping-pong): the PE array writes a finished block into one
 * bank while the other is read out OUT_LANES accumulators per cycle, so the PEs start the
 * next block without a bubble. A bank is released to the scheduler (bank_release) once read;
 * the scheduler issues a block's last tap only when a bank is free. Words are issued only
 * while the output FIFO has room (credits), so the output stage never needs to stall.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_drain #
(
    // processing elements (a multiple of OUT_LANES)
    parameter NUM_PE = 8,
    // accumulators per output word
    parameter OUT_LANES = 4,
    // output channel index width
    parameter N_WIDTH = 8,
    // block value count width
    parameter COUNT_WIDTH = 5,
    // output FIFO capacity in words
    parameter FIFO_DEPTH = 1024
)
(
    input  wire                        clk,
    input  wire                        rst,

    // a finished block: accumulators, channel and number of valid pixels
    input  wire                        res_valid,
    input  wire [32*NUM_PE-1:0]        res,
    input  wire [N_WIDTH-1:0]          res_channel,
    input  wire [COUNT_WIDTH-1:0]      res_count,

    output wire                        bank_release,

    // to the output stage: OUT_LANES accumulators and how many of them are valid
    output wire                        os_valid,
    output wire [32*OUT_LANES-1:0]     os_acc,
    output wire [N_WIDTH-1:0]          os_channel,
    output wire [2:0]                  os_count,

    // one pulse per word leaving the output FIFO
    input  wire                        fifo_pop
);

localparam WORDS = NUM_PE / OUT_LANES;
localparam CREDIT_WIDTH = $clog2(FIFO_DEPTH + 1);
localparam WORD_WIDTH = $clog2(WORDS + 1);

reg [32*NUM_PE-1:0] bank [0:1];
reg [1:0] bank_full;
reg [N_WIDTH-1:0] bank_channel [0:1];
reg [COUNT_WIDTH-1:0] bank_count [0:1];
reg wr_bank, rd_bank;
reg [WORD_WIDTH-1:0] word;
reg [COUNT_WIDTH-1:0] left;
reg [CREDIT_WIDTH-1:0] credits;

reg os_valid_reg;
reg [32*OUT_LANES-1:0] os_acc_reg;
reg [N_WIDTH-1:0] os_channel_reg;
reg [2:0] os_count_reg;
reg release_reg;

wire issue = bank_full[rd_bank] && credits != 0;
wire [COUNT_WIDTH-1:0] remaining = bank_count[rd_bank] - left;
wire last_word = remaining <= OUT_LANES;
wire [32*NUM_PE-1:0] rd_data = bank[rd_bank];

assign bank_release = release_reg;
assign os_valid = os_valid_reg;
assign os_acc = os_acc_reg;
assign os_channel = os_channel_reg;
assign os_count = os_count_reg;

always @(posedge clk) begin
    os_valid_reg <= 1'b0;
    release_reg <= 1'b0;

    if (res_valid) begin
        bank[wr_bank] <= res;
        bank_channel[wr_bank] <= res_channel;
        bank_count[wr_bank] <= res_count;
        wr_bank <= !wr_bank;
    end

    if (issue) begin
        os_valid_reg <= 1'b1;
        os_acc_reg <= rd_data[32*OUT_LANES*word +: 32*OUT_LANES];
        os_channel_reg <= bank_channel[rd_bank];
        os_count_reg <= last_word ? remaining[2:0] : OUT_LANES[2:0];
        if (last_word) begin
            word <= {WORD_WIDTH{1'b0}};
            left <= {COUNT_WIDTH{1'b0}};
            rd_bank <= !rd_bank;
            release_reg <= 1'b1;
        end else begin
            word <= word + 1'b1;
            left <= left + OUT_LANES[COUNT_WIDTH-1:0];
        end
    end

    // a bank fills and empties in different cycles or different banks
    bank_full <= (bank_full | ({1'b0, res_valid} << wr_bank)) &
                 ~({1'b0, issue && last_word} << rd_bank);
    credits <= credits - {{CREDIT_WIDTH-1{1'b0}}, issue} + {{CREDIT_WIDTH-1{1'b0}}, fifo_pop};

    if (rst) begin
        bank_full <= 2'b00;
        wr_bank <= 1'b0;
        rd_bank <= 1'b0;
        word <= {WORD_WIDTH{1'b0}};
        left <= {COUNT_WIDTH{1'b0}};
        credits <= FIFO_DEPTH[CREDIT_WIDTH-1:0];
        os_valid_reg <= 1'b0;
        release_reg <= 1'b0;
    end
end

endmodule

`resetall
