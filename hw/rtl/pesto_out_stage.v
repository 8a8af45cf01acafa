/*
 * pesto_out_stage: the per-output-channel integer output stage of the numeric contract
 * (sw/pesto/numerics.py), on OUT_LANES accumulators per cycle:
 *
 *     v = acc * mult[n] + bias[n]                (exact: 48-bit product, 48-bit bias)
 *     v = (v + 2**(shift[n]-1)) >>> shift[n]     (round half up; shift 0 is the identity)
 *     v = max(v, 0)                              (if relu)
 *     y = clamp(v, -32768, 32767)
 *
 * mult/shift/bias come from the parameter RAM (read port driven here, one cycle latency).
 * Fully pipelined, no stalls: the producer issues only when the consumer has room.
 * The multipliers are the only ones next to the PE array (one per output lane).
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_out_stage #
(
    // accumulators processed per cycle (int16 results per output word)
    parameter OUT_LANES = 4,
    // output channel index width
    parameter N_WIDTH = 8,
    // side-band bits carried alongside each word (e.g. the valid-value count)
    parameter USER_WIDTH = 3
)
(
    input  wire                      clk,
    input  wire                      rst,

    input  wire                      relu,

    input  wire                      s_valid,
    input  wire [OUT_LANES*32-1:0]   s_acc,
    input  wire [N_WIDTH-1:0]        s_channel,
    input  wire [USER_WIDTH-1:0]     s_user,

    // parameter RAM: {bias[47:0], shift[5:0], mult[15:0]} of channel param_addr, next cycle
    output wire [N_WIDTH-1:0]        param_addr,
    input  wire [69:0]               param_data,

    output wire                      m_valid,
    output wire [OUT_LANES*16-1:0]   m_data,
    output wire [USER_WIDTH-1:0]     m_user
);

localparam STAGES = 4;

reg [STAGES:0] valid_pipe;
reg [USER_WIDTH-1:0] user_pipe [0:STAGES];

reg [OUT_LANES*32-1:0] acc_s0;
reg [OUT_LANES*48-1:0] prod_s1;
reg [47:0] bias_s1;
reg [5:0] shift_s1, shift_s2;
reg [OUT_LANES*50-1:0] sum_s2;
reg [OUT_LANES*50-1:0] shifted_s3;
reg [OUT_LANES*16-1:0] y_s4;

wire [15:0] mult = param_data[15:0];
wire [5:0] shift = param_data[21:16];
wire [47:0] bias = param_data[69:22];
wire [49:0] half_s1 = (shift_s1 == 6'd0) ? 50'd0 : (50'd1 << (shift_s1 - 6'd1));

assign param_addr = s_channel;
assign m_valid = valid_pipe[STAGES];
assign m_data = y_s4;
assign m_user = user_pipe[STAGES];

integer i;

always @(posedge clk) begin
    valid_pipe <= {valid_pipe[STAGES-1:0], s_valid};
    user_pipe[0] <= s_user;
    for (i = 1; i <= STAGES; i = i + 1) begin
        user_pipe[i] <= user_pipe[i-1];
    end

    // s0: accumulators wait one cycle for the channel's parameters
    acc_s0 <= s_acc;

    // s1: exact product
    for (i = 0; i < OUT_LANES; i = i + 1) begin
        prod_s1[48*i +: 48] <= $signed(acc_s0[32*i +: 32]) * $signed(mult);
    end
    bias_s1 <= bias;
    shift_s1 <= shift;

    // s2: bias and rounding constant
    for (i = 0; i < OUT_LANES; i = i + 1) begin
        sum_s2[50*i +: 50] <= {{2{prod_s1[48*i+47]}}, prod_s1[48*i +: 48]} +
                              {{2{bias_s1[47]}}, bias_s1} + half_s1;
    end
    shift_s2 <= shift_s1;

    // s3: arithmetic shift
    for (i = 0; i < OUT_LANES; i = i + 1) begin
        shifted_s3[50*i +: 50] <= $signed(sum_s2[50*i +: 50]) >>> shift_s2;
    end

    // s4: ReLU and saturation to int16
    for (i = 0; i < OUT_LANES; i = i + 1) begin
        if (relu && shifted_s3[50*i+49]) begin
            y_s4[16*i +: 16] <= 16'd0;
        end else if (!shifted_s3[50*i+49] && shifted_s3[50*i+15 +: 35] != 35'd0) begin
            y_s4[16*i +: 16] <= 16'h7FFF;
        end else if (shifted_s3[50*i+49] && shifted_s3[50*i+15 +: 35] != {35{1'b1}}) begin
            y_s4[16*i +: 16] <= 16'h8000;
        end else begin
            y_s4[16*i +: 16] <= shifted_s3[50*i +: 16];
        end
    end

    if (rst) begin
        valid_pipe <= {STAGES+1{1'b0}};
    end
end

endmodule

`resetall
