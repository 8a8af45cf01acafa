/*
 * pesto_act_mem: the activation memory: four banks (pixel parity (y mod 2, x mod 2)) of
 * 2**AW words of LANES int16, each with two ports (A read/write, B read), read data one cycle
 * after the address, shared by every unit that moves activations:
 *
 *   port A: a write (the conv writer, the vector unit, the input stream) or a read (the fill's
 *           first slot, the output stream)
 *   port B: a read (the fill's second slot, the writer's residual, the vector unit, the output
 *           stream)
 *
 * At most one unit drives a port in a cycle (the engine runs one step at a time; in a conv step
 * the writer goes first and the fill waits), so each port takes the first request in the order
 * writer, vector unit, input stream, fill, output stream.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_act_mem #
(
    // channels per word
    parameter LANES = 16,
    // bank address width
    parameter AW = 10
)
(
    input  wire                   clk,

    // the conv writer: port A writes and port B reads, per bank
    input  wire [3:0]             wr_en,
    input  wire [4*AW-1:0]        wr_addr,
    input  wire [4*16*LANES-1:0]  wr_data,
    input  wire                   res_en,
    input  wire [4*AW-1:0]        res_addr,

    // the vector unit and the input stream: one word per cycle
    input  wire                   vec_rd,
    input  wire [1:0]             vec_rd_bank,
    input  wire [AW-1:0]          vec_rd_addr,
    input  wire                   vec_wr,
    input  wire [1:0]             vec_wr_bank,
    input  wire [AW-1:0]          vec_wr_addr,
    input  wire [16*LANES-1:0]    vec_wr_data,
    input  wire                   in_wr,
    input  wire [1:0]             in_bank,
    input  wire [AW-1:0]          in_addr,
    input  wire [16*LANES-1:0]    in_data,

    // the fill (source 2*bank + port) and the output stream: reads
    input  wire                   fill_rd,
    input  wire [8*AW-1:0]        fill_addr,
    input  wire                   out_rd,
    input  wire [8*AW-1:0]        out_addr,

    // read data of every port: port p of bank b at [16*LANES*(2*b + p) +: 16*LANES]
    output wire [8*16*LANES-1:0]  rd_data
);

localparam W = 16 * LANES;

genvar b;
generate
    for (b = 0; b < 4; b = b + 1) begin : bank
        wire vec_w = vec_wr && vec_wr_bank == b;
        wire vec_r = vec_rd && vec_rd_bank == b;
        wire in_w = in_wr && in_bank == b;
        wire a_we = wr_en[b] || vec_w || in_w;
        wire [AW-1:0] a_addr = wr_en[b] ? wr_addr[AW*b +: AW] :
                               vec_w ? vec_wr_addr :
                               in_w ? in_addr :
                               fill_rd ? fill_addr[AW*(2*b) +: AW] : out_addr[AW*(2*b) +: AW];
        wire [W-1:0] a_data = wr_en[b] ? wr_data[W*b +: W] : vec_w ? vec_wr_data : in_data;
        wire [AW-1:0] b_addr = res_en ? res_addr[AW*b +: AW] :
                               vec_r ? vec_rd_addr :
                               fill_rd ? fill_addr[AW*(2*b+1) +: AW] : out_addr[AW*(2*b+1) +: AW];

        pesto_ram_tdp #(.WIDTH(W), .ADDR_WIDTH(AW)) ram_inst (
            .clk(clk),
            .a_wr_en(a_we),
            .a_addr(a_addr),
            .a_wr_data(a_data),
            .a_rd_data(rd_data[W*(2*b) +: W]),
            .b_addr(b_addr),
            .b_rd_data(rd_data[W*(2*b+1) +: W])
        );
    end
endgenerate

wire unused_ok = &{1'b0, out_rd, 1'b0};

endmodule

`resetall
