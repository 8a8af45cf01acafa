/*
 * pesto_emitter: puts the output packet together in (n, y, x) order.
 *
 * It walks the output channels. A channel the scheduler skipped entirely (every group zero,
 * skipping on) has no data in the output FIFO: its outputs are the output stage of a zero
 * accumulator, y0[n] (precomputed when the parameters load, ReLU applied here), repeated for
 * every pixel, 4 per beat. Any other channel forwards its words from the output FIFO. The
 * packer behind it fuses channel boundaries into whole 64-bit words.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_emitter #
(
    // output channel index width
    parameter N_WIDTH = 8,
    // pixel count width
    parameter PIX_WIDTH = 13
)
(
    input  wire                 clk,
    input  wire                 rst,

    input  wire                 start,
    input  wire [N_WIDTH:0]     num_channels,
    input  wire [PIX_WIDTH-1:0] pixels,
    input  wire                 relu,

    // per-channel facts, one cycle read latency
    output wire [N_WIDTH-1:0]   ch_addr,
    input  wire                 ch_zero,
    input  wire [15:0]          ch_y0,

    // output FIFO (words of the non-zero channels, in order)
    input  wire [63:0]          fifo_data,
    input  wire [2:0]           fifo_count,
    input  wire                 fifo_valid,
    output wire                 fifo_ready,

    // values to the packer
    output wire [63:0]          m_data,
    output wire [2:0]           m_count,
    output wire                 m_final,
    output wire                 m_valid,
    input  wire                 m_ready
);

localparam [1:0] IDLE = 2'd0, LOOKUP = 2'd1, EMIT = 2'd2;

reg [1:0] state;
reg lookup_wait;
reg [N_WIDTH:0] channel;
reg [PIX_WIDTH-1:0] left;
reg zero;
reg [15:0] y0;

wire [2:0] zero_count = (left >= 4) ? 3'd4 : left[2:0];
wire [2:0] count = zero ? zero_count : fifo_count;
wire beat_valid = state == EMIT && (zero || fifo_valid);
wire beat = beat_valid && m_ready;
wire last_of_channel = left == {{PIX_WIDTH-3{1'b0}}, count};
wire last_channel = channel == num_channels - 1'b1;

assign ch_addr = channel[N_WIDTH-1:0];
assign fifo_ready = state == EMIT && !zero && m_ready;
assign m_data = zero ? {4{y0}} : fifo_data;
assign m_count = count;
assign m_final = last_of_channel && last_channel;
assign m_valid = beat_valid;

always @(posedge clk) begin
    case (state)
        IDLE: begin
            if (start) begin
                channel <= {N_WIDTH+1{1'b0}};
                state <= LOOKUP;
                lookup_wait <= 1'b1;
            end
        end
        LOOKUP: begin
            // ch_addr changed last cycle: the RAM answers now
            lookup_wait <= 1'b0;
            if (!lookup_wait) begin
                zero <= ch_zero;
                y0 <= (relu && ch_y0[15]) ? 16'd0 : ch_y0;
                left <= pixels;
                state <= EMIT;
            end
        end
        EMIT: begin
            if (beat) begin
                left <= left - {{PIX_WIDTH-3{1'b0}}, count};
                if (last_of_channel) begin
                    if (last_channel) begin
                        state <= IDLE;
                    end else begin
                        channel <= channel + 1'b1;
                        state <= LOOKUP;
                        lookup_wait <= 1'b1;
                    end
                end
            end
        end
        default: state <= IDLE;
    endcase

    if (rst) begin
        state <= IDLE;
        channel <= {N_WIDTH+1{1'b0}};
        lookup_wait <= 1'b0;
        zero <= 1'b0;
    end
end

endmodule

`resetall
