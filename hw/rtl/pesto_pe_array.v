/*
 * pesto_pe_array: NUM_PE processing elements in lockstep and their activation buffers.
 *
 * Every PE needs its own activation read port each cycle, so the activation buffer is
 * duplicated: one dual-port copy per two PEs (port A of copy i serves PE 2i and takes the
 * broadcast writes while the activation packet loads, port B serves PE 2i+1). Loading writes
 * every copy at once, so duplication costs block RAM but no load time.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_pe_array #
(
    // channels per PE group word
    parameter LANES = 16,
    // processing elements (even)
    parameter NUM_PE = 8,
    // activation buffer address width
    parameter ADDR_WIDTH = 10,
    // signed width of coordinates and buffer offsets
    parameter COORD_WIDTH = 13,
    // side-band bits that travel with a tap and come out with its results
    parameter META_WIDTH = 16
)
(
    input  wire                          clk,
    input  wire                          rst,

    // per-run constants; init_* is written into PE init_sel
    input  wire                          init_wr,
    input  wire [7:0]                    init_sel,
    input  wire signed [COORD_WIDTH-1:0] init_ix0,
    input  wire signed [COORD_WIDTH-1:0] init_iy0,
    input  wire signed [COORD_WIDTH-1:0] init_org,
    input  wire signed [COORD_WIDTH-1:0] step_x,
    input  wire signed [COORD_WIDTH-1:0] step_y,
    input  wire signed [COORD_WIDTH-1:0] step_org,
    input  wire signed [COORD_WIDTH-1:0] wrap_x,
    input  wire signed [COORD_WIDTH-1:0] wrap_dx,
    input  wire signed [COORD_WIDTH-1:0] wrap_dy,
    input  wire signed [COORD_WIDTH-1:0] wrap_dorg,
    input  wire signed [COORD_WIDTH-1:0] in_h,
    input  wire signed [COORD_WIDTH-1:0] in_w,

    // activation packet writes (every copy)
    input  wire                          act_wr,
    input  wire [ADDR_WIDTH-1:0]         act_wr_addr,
    input  wire [16*LANES-1:0]           act_wr_data,

    // broadcast tap (p0) and its codes (p2)
    input  wire                          bc_valid,
    input  wire                          bc_first,
    input  wire                          bc_last,
    input  wire                          bc_blk0,
    input  wire signed [COORD_WIDTH-1:0] bc_off,
    input  wire [1:0]                    bc_ky,
    input  wire [1:0]                    bc_kx,
    input  wire [META_WIDTH-1:0]         bc_meta,
    input  wire [2*LANES-1:0]            bc_codes,

    // one accumulator per PE when a block completes
    output wire                          res_valid,
    output wire [32*NUM_PE-1:0]          res,
    output wire [META_WIDTH-1:0]         res_meta
);

localparam PE_LATENCY = 5;

wire [ADDR_WIDTH-1:0] pe_addr [0:NUM_PE-1];
wire [16*LANES-1:0] pe_data [0:NUM_PE-1];
wire [NUM_PE-1:0] pe_res_valid;

reg [META_WIDTH-1:0] meta_pipe [0:PE_LATENCY-1];
integer i;

always @(posedge clk) begin
    meta_pipe[0] <= bc_meta;
    for (i = 1; i < PE_LATENCY; i = i + 1) begin
        meta_pipe[i] <= meta_pipe[i-1];
    end
end

assign res_valid = pe_res_valid[0];
assign res_meta = meta_pipe[PE_LATENCY-1];

genvar k;
generate
    for (k = 0; k < NUM_PE; k = k + 1) begin : pe
        pesto_pe #(
            .LANES(LANES),
            .ADDR_WIDTH(ADDR_WIDTH),
            .COORD_WIDTH(COORD_WIDTH)
        )
        pe_inst (
            .clk(clk),
            .rst(rst),
            .init_wr(init_wr && init_sel == k),
            .init_ix0(init_ix0),
            .init_iy0(init_iy0),
            .init_org(init_org),
            .step_x(step_x),
            .step_y(step_y),
            .step_org(step_org),
            .wrap_x(wrap_x),
            .wrap_dx(wrap_dx),
            .wrap_dy(wrap_dy),
            .wrap_dorg(wrap_dorg),
            .in_h(in_h),
            .in_w(in_w),
            .bc_valid(bc_valid),
            .bc_first(bc_first),
            .bc_last(bc_last),
            .bc_blk0(bc_blk0),
            .bc_off(bc_off),
            .bc_ky(bc_ky),
            .bc_kx(bc_kx),
            .bc_codes(bc_codes),
            .act_addr(pe_addr[k]),
            .act_data(pe_data[k]),
            .res_valid(pe_res_valid[k]),
            .res(res[32*k +: 32])
        );
    end

    for (k = 0; k < NUM_PE / 2; k = k + 1) begin : buffer
        pesto_ram_tdp #(
            .WIDTH(16*LANES),
            .ADDR_WIDTH(ADDR_WIDTH)
        )
        act_ram_inst (
            .clk(clk),
            .a_wr_en(act_wr),
            .a_addr(act_wr ? act_wr_addr : pe_addr[2*k]),
            .a_wr_data(act_wr_data),
            .a_rd_data(pe_data[2*k]),
            .b_addr(pe_addr[2*k+1]),
            .b_rd_data(pe_data[2*k+1])
        );
    end
endgenerate

// every PE signals completion in the same cycle; PE 0 speaks for all
wire unused_ok = &{1'b0, pe_res_valid[NUM_PE-1:1], 1'b0};

endmodule

`resetall
