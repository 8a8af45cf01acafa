/*
 * pesto_fill: reads one pass's window (4 x 4 cells at stride 1, 5 x 5 at stride 2) from the
 * source activation set into the shadow grid of pesto_window: eight words per cycle (four banks,
 * two ports each), 2 or 6 cycles per window. Cell (r, c) always comes from bank
 * (r mod 2, c mod 2), port (c div 2) mod 2, in a fixed slot of the fill (its rank among the
 * cells of its source), so the schedule is a table of constants; a cell outside the image is
 * written as zero (the padding).
 *
 * Handshake with the issuer: full_next says the shadow holds a complete window next cycle;
 * load_soon says the working grid copies the shadow next cycle. A fill may start when the shadow
 * holds nothing uncopied by then, so a new fill's first words land on the same edge as the copy
 * and a pass costs max(entries, 2 or 6) cycles.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_fill #
(
    // activation bank address width
    parameter AW = 9
)
(
    input  wire               clk,
    input  wire               rst,

    input  wire               stride2,
    input  wire [11:0]        in_h,
    input  wire [11:0]        in_w,
    input  wire [11:0]        src_w2,

    // pass descriptors (pesto_passes)
    input  wire               d_valid,
    output wire               d_ready,
    input  wire               d_empty,
    input  wire [15:0]        d_addr,
    input  wire signed [13:0] d_y0,
    input  wire signed [13:0] d_x0,

    input  wire               load_soon,
    output wire               full_next,
    // the writer has the banks this cycle: no read slot
    input  wire               stall,
    output wire               load,

    // activation memory: address of source 2*bank + port, valid while rd_en
    output wire               rd_en,
    output wire [8*AW-1:0]    rd_addr,

    // to pesto_window
    output wire [24:0]        fill_we,
    output wire [24:0]        fill_zero
);

// the cell that source src reads in slot k of a window of side n (25 = none)
function integer cell_at;
    input integer src, k, n;
    integer r, c, rank;
    begin
        cell_at = 25;
        rank = 0;
        for (r = 0; r < n; r = r + 1) begin
            for (c = 0; c < n; c = c + 1) begin
                if (2 * (2 * (r % 2) + (c % 2)) + ((c / 2) % 2) == src) begin
                    if (rank == k) begin
                        cell_at = 5 * r + c;
                    end
                    rank = rank + 1;
                end
            end
        end
    end
endfunction

// the slot in which cell i is read in a window of side n (-1: outside the window)
function integer slot_of;
    input integer i, n;
    integer k, src;
    begin
        slot_of = -1;
        src = 2 * (2 * ((i / 5) % 2) + ((i % 5) % 2)) + (((i % 5) / 2) % 2);
        for (k = 0; k < 6; k = k + 1) begin
            if (cell_at(src, k, n) == i) begin
                slot_of = k;
            end
        end
    end
endfunction

reg full, filling, landing, load_reg;
reg [2:0] slot, slot_q;
reg [15:0] addr_reg;
reg signed [13:0] y0_reg, x0_reg;
reg [7:0] valid_q;
reg s2;

wire [2:0] last_slot = s2 ? 3'd5 : 3'd1;
wire landing_last = landing && slot_q == last_slot;
wire may_start = !full_next || load_soon;
wire start = !filling && d_valid && !d_empty && may_start && !stall;

assign full_next = landing_last || (full && !load_reg);
assign d_ready = d_empty || start;
assign load = load_reg;
assign rd_en = (filling && !stall) || start;

// per source: the cell of this slot, its address and whether it lies inside the image
wire [7:0] src_valid;

wire [15:0] cur_addr = start ? d_addr : addr_reg;
wire signed [13:0] cur_y0 = start ? d_y0 : y0_reg;
wire signed [13:0] cur_x0 = start ? d_x0 : x0_reg;
wire cur_s2 = start ? stride2 : s2;
wire [2:0] cur_slot = start ? 3'd0 : slot;
wire [15:0] row2 = {3'd0, src_w2, 1'b0};
wire [15:0] row1 = {4'd0, src_w2};

genvar src, k;
generate
    for (src = 0; src < 8; src = src + 1) begin : source
        // (row, column) of the cell per slot, 7 = none; slots 0-5 at stride 2, then 0-1 at stride 1
        wire [2:0] r_tab [0:7];
        wire [2:0] c_tab [0:7];
        for (k = 0; k < 8; k = k + 1) begin : slot_table
            localparam integer CELL = (k < 6) ? cell_at(src, k, 5) : cell_at(src, k - 6, 4);
            localparam integer ROW_I = (CELL == 25) ? 7 : CELL / 5;
            localparam integer COL_I = (CELL == 25) ? 7 : CELL % 5;
            localparam [2:0] ROW = ROW_I[2:0];
            localparam [2:0] COL = COL_I[2:0];
            assign r_tab[k] = ROW;
            assign c_tab[k] = COL;
        end
        wire [2:0] sel = cur_s2 ? cur_slot : (cur_slot[0] ? 3'd7 : 3'd6);
        wire [2:0] r = r_tab[sel];
        wire [2:0] c = c_tab[sel];
        wire signed [13:0] yy = cur_y0 + $signed({11'd0, r});
        wire signed [13:0] xx = cur_x0 + $signed({11'd0, c});
        wire [15:0] a = cur_addr + (r[2] ? row2 : r[1] ? row1 : 16'd0) + {14'd0, c[2:1]};
        assign rd_addr[AW*src +: AW] = a[AW-1:0];
        assign src_valid[src] = r != 3'd7 && yy >= 0 && yy < $signed({2'b0, in_h}) && xx >= 0 &&
                                xx < $signed({2'b0, in_w});
        wire unused_ok = &{1'b0, a, 1'b0};
    end
endgenerate

always @(posedge clk) begin
    load_reg <= load_soon;
    landing <= (filling && !stall) || start;
    slot_q <= cur_slot;
    valid_q <= src_valid;
    if (start) begin
        filling <= 1'b1;
        slot <= 3'd1;
        addr_reg <= d_addr;
        y0_reg <= d_y0;
        x0_reg <= d_x0;
        s2 <= stride2;
    end else if (filling && !stall) begin
        slot <= slot + 1'b1;
        if (slot == last_slot) begin
            filling <= 1'b0;
        end
    end
    if (landing_last) begin
        full <= 1'b1;
    end else if (load_reg) begin
        full <= 1'b0;
    end
    if (rst) begin
        full <= 1'b0;
        filling <= 1'b0;
        landing <= 1'b0;
        load_reg <= 1'b0;
    end
end

// a ci is written in its slot; its source's validity decides whether it is data or zero
genvar i;
generate
    for (i = 0; i < 25; i = i + 1) begin : cell_we
        localparam integer SLOT1 = slot_of(i, 4);
        localparam integer SLOT2 = slot_of(i, 5);
        localparam integer SRC = 2 * (2 * ((i / 5) % 2) + ((i % 5) % 2)) + (((i % 5) / 2) % 2);
        localparam [2:0] SLOT1_BITS = (SLOT1 < 0) ? 3'd0 : SLOT1[2:0];
        localparam [2:0] SLOT2_BITS = (SLOT2 < 0) ? 3'd0 : SLOT2[2:0];
        localparam IN1 = SLOT1 >= 0;
        localparam IN2 = SLOT2 >= 0;
        assign fill_we[i] = landing && (s2 ? (IN2 && slot_q == SLOT2_BITS) : (IN1 && slot_q == SLOT1_BITS));
        assign fill_zero[i] = !valid_q[SRC];
    end
endgenerate

endmodule

`resetall
