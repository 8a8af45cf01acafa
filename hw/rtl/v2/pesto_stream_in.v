/*
 * pesto_stream_in: an input step: the activation packet (int16 in (g, y, x, lane) order, four per
 * beat, LANES/4 beats per word) into a tensor of the activation memory, one word per LANES/4
 * beats through port A. The last beat of the run's last image must carry TLAST.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_stream_in #
(
    // channels per word
    parameter LANES = 16,
    // bank address width
    parameter AW = 10
)
(
    input  wire                 clk,
    input  wire                 rst,

    input  wire                 start,
    input  wire [AW-1:0]        base,
    input  wire [19:0]          plane,
    input  wire [11:0]          w2,
    input  wire                 phase,
    input  wire [7:0]           groups,
    input  wire [11:0]          h,
    input  wire [11:0]          w,
    input  wire                 last_image,

    input  wire                 b_valid,
    output wire                 b_ready,
    input  wire [63:0]          b_data,
    output wire                 expect_last,

    output wire                 wr,
    output wire [1:0]           wr_bank,
    output wire [AW-1:0]        wr_addr,
    output wire [16*LANES-1:0]  wr_data,

    output wire                 busy
);

localparam W = 16 * LANES;
localparam BEATS = LANES / 4;
localparam BW = (BEATS > 1) ? $clog2(BEATS) : 1;
localparam integer LAST_BEAT_I = BEATS - 1;
localparam [BW-1:0] LAST_BEAT = LAST_BEAT_I[BW-1:0];

reg running;
reg [BW-1:0] k;
reg [11:0] y, x;
reg [7:0] g;
reg [19:0] row, goff;
reg [W-1:0] word;
reg wr_reg;
reg [1:0] bank_reg;
reg [AW-1:0] addr_reg;

wire [12:0] yp = {1'b0, y} + phase;
wire [12:0] xp = {1'b0, x} + phase;
wire [12:0] y_next_p = yp + 13'd1;
wire last_k = k == LAST_BEAT;
wire last_x = x == w - 1'b1;
wire last_y = y == h - 1'b1;
wire last_g = g == groups - 1'b1;
wire take = running && b_valid;
wire [19:0] addr = {{20-AW{1'b0}}, base} + goff + row + {8'd0, xp[12:1]};

assign b_ready = running;
assign expect_last = last_image && last_k && last_x && last_y && last_g;
assign wr = wr_reg;
assign wr_bank = bank_reg;
assign wr_addr = addr_reg;
assign wr_data = word;
assign busy = running || wr_reg;

always @(posedge clk) begin
    wr_reg <= 1'b0;
    if (start) begin
        running <= 1'b1;
        k <= {BW{1'b0}};
        x <= 12'd0;
        y <= 12'd0;
        g <= 8'd0;
        row <= 20'd0;
        goff <= 20'd0;
    end else if (take) begin
        word[64*k +: 64] <= b_data;
        k <= k + 1'b1;
        if (last_k) begin
            k <= {BW{1'b0}};
            wr_reg <= 1'b1;
            bank_reg <= {yp[0], xp[0]};
            addr_reg <= addr[AW-1:0];
            if (!last_x) begin
                x <= x + 1'b1;
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
                    goff <= goff + plane;
                    g <= g + 1'b1;
                    if (last_g) begin
                        running <= 1'b0;
                    end
                end
            end
        end
    end
    if (rst) begin
        running <= 1'b0;
        wr_reg <= 1'b0;
    end
end

wire unused_ok = &{1'b0, addr[19:AW], y_next_p[0], 1'b0};

endmodule

`resetall
