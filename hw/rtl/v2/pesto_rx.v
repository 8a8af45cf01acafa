/*
 * pesto_rx: the input stream's front end for one run. The consumer of the moment (program
 * loader, layer loader, input stream of a network step) takes beats and says which beat should be
 * the stream's last (expect_last); pesto_rx checks TLAST against it: TLAST on any other beat ends
 * the stream early (err_short), no TLAST on the expected one means the stream is too long
 * (err_long). drop consumes beats through the next TLAST (a refused run, an error, a stream too
 * long), so the DMA's transfer always completes; drop_done says there is nothing left to drop.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_rx
(
    input  wire        clk,
    input  wire        rst,

    input  wire        clear,

    input  wire [63:0] s_axis_tdata,
    input  wire [7:0]  s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,

    output wire        b_valid,
    input  wire        b_ready,
    output wire [63:0] b_data,
    input  wire        expect_last,

    output wire        err_short,
    output wire        err_long,

    input  wire        drop,
    output wire        drop_done,
    output wire        last_seen,
    // a beat was accepted (the last one of the stream is the COMPUTE_CYCLES origin)
    output wire        beat
);

reg seen;
reg short_reg, long_reg;

wire dropping = drop && !seen;
wire take = s_axis_tvalid && (dropping || (b_ready && !drop));

assign s_axis_tready = dropping || (b_ready && !drop);
assign b_valid = s_axis_tvalid && !drop;
assign b_data = s_axis_tdata;
assign err_short = short_reg;
assign err_long = long_reg;
assign drop_done = drop && seen;
assign last_seen = seen;
assign beat = take;

always @(posedge clk) begin
    short_reg <= 1'b0;
    long_reg <= 1'b0;
    if (take && s_axis_tlast) begin
        seen <= 1'b1;
    end
    if (take && !dropping) begin
        short_reg <= s_axis_tlast && !expect_last;
        long_reg <= expect_last && !s_axis_tlast;
    end
    if (rst || clear) begin
        seen <= 1'b0;
        short_reg <= 1'b0;
        long_reg <= 1'b0;
    end
end

wire unused_ok = &{1'b0, s_axis_tkeep, 1'b0};

endmodule

`resetall
