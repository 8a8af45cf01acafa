/*
 * pesto_packer_v2: packs a stream of int16 values, arriving 1 to 4 per beat, into full 64-bit
 * AXI4-Stream words in order (value k at bits 16*(k%4)), so output channels whose pixel count
 * is not a multiple of 4 share words exactly as the output packet layout says. The beat marked
 * final ends an image's output: its last word is zero padded, and carries TLAST if s_tlast (the
 * last image of a run).
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_packer_v2
(
    input  wire        clk,
    input  wire        rst,

    input  wire [63:0] s_data,
    input  wire [2:0]  s_count,
    input  wire        s_final,
    input  wire        s_tlast,
    input  wire        s_valid,
    output wire        s_ready,

    output wire [63:0] m_axis_tdata,
    output wire [7:0]  m_axis_tkeep,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);

reg [47:0] hold;          // up to three values left over
reg [1:0] held;
reg flush;                // a final leftover word still to send
reg flush_last;           // ... and whether it ends the packet
reg [63:0] out_data;
reg out_valid, out_last;

wire out_free = !out_valid || m_axis_tready;
wire take = s_valid && out_free && !flush;

// keep only the valid values of the input beat
wire [63:0] in_mask = (s_count >= 3'd4) ? {64{1'b1}} : ((64'd1 << (16 * s_count)) - 64'd1);
wire [111:0] merged = {64'd0, hold} | ({48'd0, s_data & in_mask} << (16 * held));
wire [3:0] total = {2'b00, held} + {1'b0, s_count};

assign s_ready = out_free && !flush;
assign m_axis_tdata = out_data;
assign m_axis_tkeep = 8'hFF;
assign m_axis_tvalid = out_valid;
assign m_axis_tlast = out_last;

always @(posedge clk) begin
    if (out_valid && m_axis_tready) begin
        out_valid <= 1'b0;
    end

    if (flush && out_free) begin
        out_data <= {16'd0, hold};
        out_valid <= 1'b1;
        out_last <= flush_last;
        hold <= 48'd0;
        held <= 2'd0;
        flush <= 1'b0;
    end else if (take) begin
        if (total >= 4'd4) begin
            out_data <= merged[63:0];
            out_valid <= 1'b1;
            out_last <= s_final && s_tlast && total == 4'd4;
            hold <= merged[111:64];
            held <= total[1:0];
            flush <= s_final && total != 4'd4;
            flush_last <= s_tlast;
        end else if (s_final) begin
            out_data <= merged[63:0];
            out_valid <= 1'b1;
            out_last <= s_tlast;
            hold <= 48'd0;
            held <= 2'd0;
        end else begin
            hold <= merged[47:0];
            held <= total[1:0];
        end
    end

    if (rst) begin
        hold <= 48'd0;
        held <= 2'd0;
        flush <= 1'b0;
        out_valid <= 1'b0;
        out_last <= 1'b0;
    end
end

endmodule

`resetall
