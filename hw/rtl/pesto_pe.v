/*
 * pesto_pe: one processing element: adds, subtracts or skips LANES int16 activations per cycle
 * (one kernel tap of one PE group, codes broadcast to every PE) into a 32-bit accumulator.
 * No multiplier: a ternary code selects +a, -a or nothing.
 *
 * The PE computes one output pixel per block. It tracks where its pixel's receptive field
 * starts in the input (iy0, ix0 and the buffer address org = iy0*W + ix0) incrementally:
 * loaded from init_* on the first block of a channel, advanced by NUM_PE pixels (the step
 * constants) on every later block, so no multiplier is needed for addressing either.
 *
 * Pipeline (every stage advances every cycle; the scheduler issues only what fits):
 *   p0 broadcast in -> p1 buffer address -> p2 activations + codes -> p3 partial sums
 *   -> p4 group sum -> p5 accumulator (res_valid on the block's last tap)
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_pe #
(
    // channels per PE group word
    parameter LANES = 16,
    // activation buffer address width
    parameter ADDR_WIDTH = 10,
    // signed width of coordinates and buffer offsets
    parameter COORD_WIDTH = 13
)
(
    input  wire                          clk,
    input  wire                          rst,

    // per-run constants
    input  wire                          init_wr,
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

    // p0: broadcast tap
    input  wire                          bc_valid,
    input  wire                          bc_first,
    input  wire                          bc_last,
    input  wire                          bc_blk0,
    input  wire signed [COORD_WIDTH-1:0] bc_off,
    input  wire [1:0]                    bc_ky,
    input  wire [1:0]                    bc_kx,
    // p2: the tap's codes (2 bits per lane)
    input  wire [2*LANES-1:0]            bc_codes,

    // activation buffer read port: address at p1, data at p2
    output wire [ADDR_WIDTH-1:0]         act_addr,
    input  wire [16*LANES-1:0]           act_data,

    output wire                          res_valid,
    output wire [31:0]                   res
);

localparam PARTS = (LANES + 3) / 4;

// receptive field origin of this PE's current pixel
reg signed [COORD_WIDTH-1:0] init_ix0_reg, init_iy0_reg, init_org_reg;
reg signed [COORD_WIDTH-1:0] ix0_reg, iy0_reg, org_reg;
// the origin of this PE's pixel in the next block, registered so the advance is off the
// address path
reg signed [COORD_WIDTH-1:0] ix_next_reg, iy_next_reg, org_next_reg;

reg signed [COORD_WIDTH-1:0] ix0_cur, iy0_cur, org_cur;
reg signed [COORD_WIDTH-1:0] ix_adv, iy_adv, org_adv;
reg signed [COORD_WIDTH-1:0] tap_y, tap_x;

// p1
reg [ADDR_WIDTH-1:0] addr_p1;
reg inb_p1, valid_p1, first_p1, last_p1;
// p2
reg inb_p2, valid_p2, first_p2, last_p2;
// p3
reg [22*PARTS-1:0] part_p3;
reg valid_p3, first_p3, last_p3;
// p4
reg signed [21:0] sum_p4;
reg valid_p4, first_p4, last_p4;
// p5
reg signed [31:0] acc_reg;
reg res_valid_reg;

assign act_addr = addr_p1;
assign res_valid = res_valid_reg;
assign res = acc_reg;

always @* begin
    if (bc_first && bc_blk0) begin
        ix0_cur = init_ix0_reg;
        iy0_cur = init_iy0_reg;
        org_cur = init_org_reg;
    end else if (bc_first) begin
        ix0_cur = ix_next_reg;
        iy0_cur = iy_next_reg;
        org_cur = org_next_reg;
    end else begin
        ix0_cur = ix0_reg;
        iy0_cur = iy0_reg;
        org_cur = org_reg;
    end
    tap_y = iy0_cur + $signed({{COORD_WIDTH-2{1'b0}}, bc_ky});
    tap_x = ix0_cur + $signed({{COORD_WIDTH-2{1'b0}}, bc_kx});
    // next block: NUM_PE pixels further, wrapping into the next output row when needed
    ix_adv = ix0_cur + step_x;
    iy_adv = iy0_cur + step_y;
    org_adv = org_cur + step_org;
    if (ix_adv >= wrap_x) begin
        ix_adv = ix_adv + wrap_dx;
        iy_adv = iy_adv + wrap_dy;
        org_adv = org_adv + wrap_dorg;
    end
end

// p3: ternary select and partial sums of four lanes
// -a = ~a + 1: a lane with code -1 contributes ~a here and its +1 joins a count of such
// lanes, so no lane needs a negating adder of its own
reg [22*PARTS-1:0] part_next;
reg [16:0] a, term;
reg [1:0] code;
reg [5:0] minus;
integer l, p;

always @* begin
    part_next = {22*PARTS{1'b0}};
    minus = 6'd0;
    for (l = 0; l < LANES; l = l + 1) begin
        a = {act_data[16*l+15], act_data[16*l +: 16]};
        // a tap in the zero padding contributes nothing: gate its codes, not its data
        code = inb_p2 ? bc_codes[2*l +: 2] : 2'd0;
        // code 1 = +1, 3 = -1, 0 = 0 (2 is reserved and rejected when the weights load)
        term = (code == 2'd1) ? a : (code == 2'd3) ? ~a : 17'd0;
        minus = minus + {5'd0, code == 2'd3};
        part_next[22*(l/4) +: 22] = part_next[22*(l/4) +: 22] + {{5{term[16]}}, term};
    end
    part_next[21:0] = part_next[21:0] + {16'd0, minus};
end

reg signed [21:0] sum_next;

always @* begin
    sum_next = 22'sd0;
    for (p = 0; p < PARTS; p = p + 1) begin
        sum_next = sum_next + $signed(part_p3[22*p +: 22]);
    end
end

always @(posedge clk) begin
    if (init_wr) begin
        init_ix0_reg <= init_ix0;
        init_iy0_reg <= init_iy0;
        init_org_reg <= init_org;
    end

    // p0 -> p1
    if (bc_valid) begin
        ix0_reg <= ix0_cur;
        iy0_reg <= iy0_cur;
        org_reg <= org_cur;
        ix_next_reg <= ix_adv;
        iy_next_reg <= iy_adv;
        org_next_reg <= org_adv;
    end
    addr_p1 <= org_cur[ADDR_WIDTH-1:0] + bc_off[ADDR_WIDTH-1:0];
    inb_p1 <= tap_y >= 0 && tap_y < in_h && tap_x >= 0 && tap_x < in_w;
    valid_p1 <= bc_valid;
    first_p1 <= bc_first;
    last_p1 <= bc_last;

    // p1 -> p2 (the buffer read)
    inb_p2 <= inb_p1;
    valid_p2 <= valid_p1;
    first_p2 <= first_p1;
    last_p2 <= last_p1;

    // p2 -> p3
    part_p3 <= part_next;
    valid_p3 <= valid_p2;
    first_p3 <= first_p2;
    last_p3 <= last_p2;

    // p3 -> p4
    sum_p4 <= sum_next;
    valid_p4 <= valid_p3;
    first_p4 <= first_p3;
    last_p4 <= last_p3;

    // p4 -> p5: the first tap of a block loads, the others accumulate
    if (valid_p4) begin
        acc_reg <= (first_p4 ? 32'sd0 : acc_reg) + {{10{sum_p4[21]}}, sum_p4};
    end
    res_valid_reg <= valid_p4 && last_p4;

    if (rst) begin
        valid_p1 <= 1'b0;
        valid_p2 <= 1'b0;
        valid_p3 <= 1'b0;
        valid_p4 <= 1'b0;
        res_valid_reg <= 1'b0;
    end
end

// offsets beyond the buffer only ever belong to padding taps (masked)
wire unused_ok = &{1'b0, bc_off[COORD_WIDTH-1:ADDR_WIDTH], 1'b0};

endmodule

`resetall
