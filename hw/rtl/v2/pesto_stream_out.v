/*
 * pesto_stream_out: an output step: a tensor out in (n, y, x) order (v1's output packet), up to
 * four values of one row per cycle: pixels x .. x+3 lie in two banks (the row's parity), two in
 * each, read through both ports. Values go to pesto_packer, which fills whole 64-bit words; the
 * last image's last value ends the packet (TLAST), every other image's output is padded to a
 * whole word. A credit count keeps the reads from overrunning the queue in front of the packer.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_stream_out #
(
    // channels per word
    parameter LANES = 16,
    // bank address width
    parameter AW = 10
)
(
    input  wire                   clk,
    input  wire                   rst,

    input  wire                   start,
    input  wire [AW-1:0]          base,
    input  wire [19:0]            plane,
    input  wire [11:0]            w2,
    input  wire                   phase,
    input  wire [11:0]            channels,
    input  wire [11:0]            h,
    input  wire [11:0]            w,
    input  wire                   last_image,

    output wire                   rd,
    output wire [8*AW-1:0]        rd_addr,
    input  wire [8*16*LANES-1:0]  rd_data,

    output wire                   p_valid,
    input  wire                   p_ready,
    output wire [63:0]            p_data,
    output wire [2:0]             p_count,
    output wire                   p_final,
    output wire                   p_tlast,

    output wire                   busy
);

localparam W = 16 * LANES;
localparam LW = $clog2(LANES);

reg running;
reg [11:0] n, y, x;
reg [19:0] row, goff;
reg [2:0] credits;
// one cycle after the read: which values, where they are
reg r_valid, r_final;
reg [2:0] r_count;
reg [LW-1:0] r_lane;
reg [1:0] r_bank0, r_bank1;

wire [12:0] yp = {1'b0, y} + phase;
wire [12:0] y_next_p = yp + 13'd1;
wire [11:0] left = w - x;
wire [2:0] count = (left >= 12'd4) ? 3'd4 : left[2:0];
wire last_x = left <= 12'd4;
wire last_y = y == h - 1'b1;
wire last_n = n == channels - 1'b1;
wire issue = running && credits != 3'd0;
wire [LW-1:0] lane = n[LW-1:0];
wire q_pop = p_valid && p_ready;

// pixel x + i: bank (yp mod 2, (x + i + phase) mod 2), word (x + i + phase) >> 1; ports A for
// i = 0, 1 and B for i = 2, 3
wire [19:0] word_base = {{20-AW{1'b0}}, base} + goff + row;
wire [12:0] xp0 = {1'b0, x} + phase;
wire [12:0] xp1 = xp0 + 13'd1;
wire [12:0] xp2 = xp0 + 13'd2;
wire [12:0] xp3 = xp0 + 13'd3;
wire [1:0] bank0 = {yp[0], xp0[0]};
wire [1:0] bank1 = {yp[0], xp1[0]};
wire [19:0] addr0 = word_base + {8'd0, xp0[12:1]};
wire [19:0] addr1 = word_base + {8'd0, xp1[12:1]};
wire [19:0] addr2 = word_base + {8'd0, xp2[12:1]};
wire [19:0] addr3 = word_base + {8'd0, xp3[12:1]};

reg [8*AW-1:0] addr_bus;
integer b;
always @* begin
    addr_bus = {8*AW{1'b0}};
    for (b = 0; b < 4; b = b + 1) begin
        if (b[1:0] == bank0) begin
            addr_bus[AW*(2*b) +: AW] = addr0[AW-1:0];
            addr_bus[AW*(2*b+1) +: AW] = addr2[AW-1:0];
        end
        if (b[1:0] == bank1) begin
            addr_bus[AW*(2*b) +: AW] = addr1[AW-1:0];
            addr_bus[AW*(2*b+1) +: AW] = addr3[AW-1:0];
        end
    end
end

assign rd = issue;
assign rd_addr = addr_bus;
assign busy = running || r_valid || p_valid;

always @(posedge clk) begin
    r_valid <= issue;
    r_count <= count;
    r_lane <= lane;
    r_bank0 <= bank0;
    r_bank1 <= bank1;
    r_final <= last_x && last_y && last_n;
    credits <= credits - {2'd0, issue} + {2'd0, q_pop};
    if (start) begin
        running <= 1'b1;
        n <= 12'd0;
        y <= 12'd0;
        x <= 12'd0;
        row <= 20'd0;
        goff <= 20'd0;
    end else if (issue) begin
        if (!last_x) begin
            x <= x + 12'd4;
        end else begin
            x <= 12'd0;
            if (!last_y) begin
                y <= y + 1'b1;
                if (y_next_p[12:1] != yp[12:1]) begin
                    row <= row + {8'd0, w2};
                end
            end else begin
                y <= 12'd0;
                row <= 20'd0;
                n <= n + 1'b1;
                if (lane == {LW{1'b1}}) begin
                    goff <= goff + plane;
                end
                if (last_n) begin
                    running <= 1'b0;
                end
            end
        end
    end
    if (rst || start) begin
        r_valid <= 1'b0;
        credits <= 3'd4;
    end
    if (rst) begin
        running <= 1'b0;
    end
end

// the values of the read, from ports A (i = 0, 1) and B (i = 2, 3): channel r_lane of each of
// the eight words first (the same lane of every word), then the words of the four pixels
reg [15:0] lane_of [0:7];
integer wd;
always @* begin
    for (wd = 0; wd < 8; wd = wd + 1) begin
        lane_of[wd] = rd_data[W*wd + 16*r_lane +: 16];
    end
end
wire [63:0] values = {lane_of[2*r_bank1+1], lane_of[2*r_bank0+1], lane_of[2*r_bank1], lane_of[2*r_bank0]};
wire q_ready;

pesto_fifo #(.WIDTH(64 + 3 + 2), .ADDR_WIDTH(2)) queue_inst (
    .clk(clk), .rst(rst || start),
    .s_data({values, r_count, r_final, r_final && last_image}), .s_valid(r_valid), .s_ready(q_ready),
    .m_data({p_data, p_count, p_final, p_tlast}), .m_valid(p_valid), .m_ready(p_ready)
);

// the credits keep the queue from overflowing
wire unused_ok = &{1'b0, q_ready, addr0[19:AW], addr1[19:AW], addr2[19:AW], addr3[19:AW], y_next_p[0],
                   xp2[0], xp3[0], 1'b0};

endmodule

`resetall
