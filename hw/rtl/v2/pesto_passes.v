/*
 * pesto_passes: walks a conv step's tiles and, per tile, its pass table (program memory): one
 * descriptor per (tile, pass) to the fill (where the window of that pass is in the source
 * activation set) and one to the issuer (how many entries the pass has, where a tile starts and
 * ends). A step with no pass at all sends one empty descriptor per tile, so every tile is still
 * drained.
 *
 * Tiles are 2 x 2 output pixels in raster order. For tile (by, bx) at stride s with padding pad
 * the window origin is (2s*by - pad, 2s*bx - pad) and, with the source stored at phase pad mod 2,
 * its bank address s*by*w2 + s*bx (docs/accelerator-v2.md).
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_passes #
(
    // activation bank address width
    parameter AW = 9,
    // program memory word address width
    parameter PA = 14
)
(
    input  wire               clk,
    input  wire               rst,

    input  wire               start,
    input  wire               stride2,
    input  wire               pad,
    input  wire [15:0]        pass_base,
    input  wire [15:0]        pass_count,
    input  wire [11:0]        blocks_h,
    input  wire [11:0]        blocks_w,
    input  wire [AW-1:0]      src_base,
    input  wire [11:0]        src_w2,

    output wire [PA-1:0]      prog_addr,
    input  wire [31:0]        prog_data,

    // to the fill: the pass's window address (bank words) and origin (pixels)
    output wire               f_valid,
    input  wire               f_ready,
    output wire               f_empty,
    output wire [15:0]        f_addr,
    output wire signed [13:0] f_y0,
    output wire signed [13:0] f_x0,

    // to the issuer
    output wire               i_valid,
    input  wire               i_ready,
    output wire [11:0]        i_count,
    output wire               i_first,
    output wire               i_last,
    output wire               i_empty,

    output wire               busy
);

/* verilator lint_off UNUSEDPARAM */
`include "pesto_program.vh"
/* verilator lint_on UNUSEDPARAM */

localparam [1:0] IDLE = 2'd0, READ = 2'd1, EMIT = 2'd2;

reg [1:0] state;
reg [11:0] by, bx;
reg [15:0] p;
reg [15:0] row_addr, col_addr;       // s*by*w2 + src_base, s*bx
reg signed [13:0] y0, x0;

wire f_s_ready, i_s_ready;
wire room = f_s_ready && i_s_ready;
wire empty_step = pass_count == 16'd0;
wire last_pass = empty_step || p == pass_count - 1'b1;
wire last_col = bx == blocks_w - 1'b1;
wire last_row = by == blocks_h - 1'b1;
wire emit = state == EMIT && room;

wire [11:0] count = prog_data[PROG_PASS_COUNT_MSB:PROG_PASS_COUNT_LSB];
wire [11:0] offset = prog_data[PROG_PASS_OFFSET_MSB:PROG_PASS_OFFSET_LSB];
wire [15:0] addr = row_addr + col_addr + {4'd0, empty_step ? 12'd0 : offset};
wire [3:0] step = stride2 ? 4'd4 : 4'd2;   // window origin advance per tile, pixels

assign prog_addr = pass_base[PA-1:0] + p[PA-1:0];
assign busy = state != IDLE;

always @(posedge clk) begin
    case (state)
        IDLE: begin
            if (start) begin
                by <= 12'd0;
                bx <= 12'd0;
                p <= 16'd0;
                row_addr <= {{16-AW{1'b0}}, src_base};
                col_addr <= 16'd0;
                y0 <= -$signed({13'd0, pad});
                x0 <= -$signed({13'd0, pad});
                state <= READ;
            end
        end
        READ: state <= EMIT;   // the pass entry answers next cycle
        EMIT: begin
            if (room) begin
                state <= READ;
                if (!last_pass) begin
                    p <= p + 1'b1;
                end else begin
                    p <= 16'd0;
                    if (!last_col) begin
                        bx <= bx + 1'b1;
                        col_addr <= col_addr + (stride2 ? 16'd2 : 16'd1);
                        x0 <= x0 + $signed({10'd0, step});
                    end else begin
                        bx <= 12'd0;
                        col_addr <= 16'd0;
                        x0 <= -$signed({13'd0, pad});
                        by <= by + 1'b1;
                        row_addr <= row_addr + (stride2 ? {3'd0, src_w2, 1'b0} : {4'd0, src_w2});
                        y0 <= y0 + $signed({10'd0, step});
                        if (last_row) begin
                            state <= IDLE;
                        end
                    end
                end
            end
        end
        default: state <= IDLE;
    endcase
    if (rst) begin
        state <= IDLE;
    end
end

pesto_fifo #(.WIDTH(1 + 16 + 28), .ADDR_WIDTH(2)) fill_queue_inst (
    .clk(clk), .rst(rst || start),
    .s_data({empty_step, addr, y0, x0}), .s_valid(emit), .s_ready(f_s_ready),
    .m_data({f_empty, f_addr, f_y0, f_x0}), .m_valid(f_valid), .m_ready(f_ready)
);

pesto_fifo #(.WIDTH(1 + 12 + 2), .ADDR_WIDTH(2)) issue_queue_inst (
    .clk(clk), .rst(rst || start),
    .s_data({empty_step, empty_step ? 12'd0 : count, p == 16'd0, last_pass}), .s_valid(emit),
    .s_ready(i_s_ready),
    .m_data({i_empty, i_count, i_first, i_last}), .m_valid(i_valid), .m_ready(i_ready)
);

wire unused_ok = &{1'b0, prog_data, pass_base, 1'b0};

endmodule

`resetall
