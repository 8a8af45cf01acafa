/*
 * pesto_issue: the schedule of a conv step, one entry per cycle into the PEs.
 *
 * Front end: for every pass descriptor (pesto_passes) it reads the pass's entries {n, code
 * address, first, nz} from the program memory and their codes from the code memory (zero when
 * nz = 0, the dense baseline's groups a sub-net does not issue) into a small queue; the list
 * restarts for every tile. A tile without passes travels as a marker.
 *
 * Back end: issues each entry into the PEs over GROUP_CYCLES consecutive cycles (slice 0, 1, ...
 * of its lanes; pesto_fat_pe) and pops it with its last slice. The first entry of a pass waits until the
 * window is in the shadow grid (full_next) and copies it into the working grid on its way
 * (load_soon), so PEs see each entry with its pass's window. Tiles take the three accumulator
 * banks in turn; the first entry of a tile waits until the drain has released its bank.
 * DONE_DELAY cycles after a tile's last entry its accumulators are complete (blk_valid).
 *
 *   pop -> X -> Y (PE c0) -> the PE's pipeline (accumulator written) -> blk_valid
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_issue #
(
    // channels per PE group word
    parameter LANES = 16,
    // cycles the PEs take per entry (pesto_fat_pe)
    parameter GROUP_CYCLES = 2,
    // output channel index width
    parameter N_WIDTH = 9,
    // code memory address width
    parameter CA = 13,
    // program memory word address width
    parameter PA = 14
)
(
    input  wire                     clk,
    input  wire                     rst,

    input  wire                     start,
    input  wire [15:0]              entry_base,

    // pass descriptors
    input  wire                     d_valid,
    output wire                     d_ready,
    input  wire [11:0]              d_count,
    input  wire                     d_first,
    input  wire                     d_last,
    input  wire                     d_empty,

    output wire [PA-1:0]            prog_addr,
    input  wire [31:0]              prog_data,
    output wire [CA-1:0]            code_addr,
    input  wire [9*2*LANES-1:0]     code_data,

    // the window
    input  wire                     full_next,
    output wire                     load_soon,

    // the PEs' c0 inputs
    output wire                     pe_valid,
    output wire [1:0]               pe_slice,    // the lanes of the entry (pesto_window)
    output wire                     pe_first,
    output wire [N_WIDTH-1:0]       pe_n,
    output wire [1:0]               pe_bank,
    // the codes of this slice: tap t's lanes SLICE * pe_slice .. at [2*SLICE*t +: 2*SLICE]
    output wire [9*2*LANES/GROUP_CYCLES-1:0] pe_codes,

    // tiles: complete (to the drain) and released (by the drain)
    output wire                     blk_valid,
    input  wire [2:0]               bank_release,

    output wire [31:0]              issued,
    // a slice of an entry went into the PEs this cycle
    output wire                     popped
);

/* verilator lint_off UNUSEDPARAM */
`include "pesto_program.vh"
/* verilator lint_on UNUSEDPARAM */

localparam CW = 9 * 2 * LANES;
// queue item: {marker, tile first, tile last, pass start, first, n, codes}
localparam IW = 5 + N_WIDTH + CW;
`include "pesto_fat_pe.vh"
// a tile's last entry: popped, x, y (at the PEs' inputs), then through the PEs' pipelines
localparam DONE_DELAY = 2 + pesto_fat_pe_latency(LANES, GROUP_CYCLES);

// ------------------------------------------------------------------ front end
reg [15:0] ptr;
reg [11:0] e;
reg [3:0] credits;
reg s1_valid, s2_valid;
reg [4:0] s1_flags, s2_flags;     // {marker, tile first, tile last, pass start, -}
reg [N_WIDTH-1:0] s2_n;
reg s2_first, s2_nz;
reg counting;
reg [31:0] issued_reg;

wire pop;
wire have = d_valid;
wire go = have && credits != 4'd0;
wire pass_end = d_empty || e == d_count - 1'b1;
wire [N_WIDTH-1:0] entry_n = prog_data[PROG_ENTRY_N_LSB +: N_WIDTH];
wire entry_first = prog_data[PROG_ENTRY_FIRST_LSB];
wire entry_nz = prog_data[PROG_ENTRY_NZ_LSB];

assign d_ready = go && pass_end;
assign prog_addr = ptr[PA-1:0];
assign code_addr = prog_data[PROG_ENTRY_CODE_LSB +: CA];

wire [IW-1:0] q_in = {s2_flags[4:1], s2_first, s2_n, s2_nz ? code_data : {CW{1'b0}}};
wire [IW-1:0] q_out;
wire q_valid, q_s_ready;

always @(posedge clk) begin
    s1_valid <= go;
    s1_flags <= {d_empty, d_first && e == 12'd0, d_last && pass_end, e == 12'd0 && !d_empty, 1'b0};
    if (go) begin
        if (pass_end) begin
            e <= 12'd0;
            if (d_last) begin
                ptr <= entry_base;
            end else if (!d_empty) begin
                ptr <= ptr + 1'b1;
            end
        end else begin
            e <= e + 1'b1;
            ptr <= ptr + 1'b1;
        end
    end
    s2_valid <= s1_valid;
    s2_flags <= s1_flags;
    s2_n <= entry_n;
    s2_first <= entry_first;
    s2_nz <= entry_nz && !s1_flags[4];
    credits <= credits - {3'd0, go} + {3'd0, pop};
    if (start) begin
        ptr <= entry_base;
        e <= 12'd0;
    end
    if (rst || start) begin
        s1_valid <= 1'b0;
        s2_valid <= 1'b0;
        credits <= 4'd8;
    end
end

// eight credits cover the loop from a read to its pop and back (five cycles) at one entry a cycle
pesto_fifo #(.WIDTH(IW), .ADDR_WIDTH(3)) queue_inst (
    .clk(clk), .rst(rst || start),
    .s_data(q_in), .s_valid(s2_valid), .s_ready(q_s_ready),
    .m_data(q_out), .m_valid(q_valid), .m_ready(pop)
);

// ------------------------------------------------------------------ back end
wire h_marker = q_out[IW-1];
wire h_tile_first = q_out[IW-2];
wire h_tile_last = q_out[IW-3];
wire h_pass_start = q_out[IW-4];

reg [1:0] bank;
reg [2:0] bank_busy;
reg x_valid, x_first;
reg [1:0] x_bank, y_bank;
reg [N_WIDTH-1:0] x_n;
reg [CW-1:0] x_codes;
reg y_valid, y_first;
reg [N_WIDTH-1:0] y_n;
reg [CW-1:0] y_codes;
reg [DONE_DELAY-1:0] done_pipe;
reg [1:0] slice, x_slice, y_slice;

// an entry's first slice waits for its bank and its pass's window; the others follow it
wire bank_ok = !bank_busy[bank];
wire need_bank = h_marker || h_tile_first;
wire first_slice = slice == 2'd0;
wire last_slice = slice == GROUP_CYCLES - 1;
wire can_go = q_valid && (!first_slice || ((!need_bank || bank_ok) && (!h_pass_start || full_next)));
wire go_entry = can_go && !h_marker;
assign pop = can_go && (h_marker || last_slice);
assign load_soon = can_go && first_slice && h_pass_start;
wire tile_done = pop && (h_marker || h_tile_last);

assign pe_valid = y_valid;
assign pe_slice = y_slice;
assign pe_first = y_first;
assign pe_n = y_n;
assign pe_bank = y_bank;
localparam SLICE = LANES / GROUP_CYCLES;
reg [9*2*SLICE-1:0] y_slice_codes;
integer ts, ks;
always @* begin
    y_slice_codes = {9*2*SLICE{1'b0}};
    for (ks = 0; ks < GROUP_CYCLES; ks = ks + 1) begin
        if (y_slice == ks[1:0]) begin
            for (ts = 0; ts < 9; ts = ts + 1) begin
                y_slice_codes[2*SLICE*ts +: 2*SLICE] = y_codes[2*(LANES*ts + SLICE*ks) +: 2*SLICE];
            end
        end
    end
end
assign pe_codes = y_slice_codes;
assign blk_valid = done_pipe[DONE_DELAY-1];
assign issued = issued_reg;
assign popped = go_entry;

always @(posedge clk) begin
    x_valid <= go_entry;
    x_slice <= slice;
    x_first <= q_out[CW+N_WIDTH] && first_slice;
    x_n <= q_out[CW +: N_WIDTH];
    x_codes <= q_out[CW-1:0];
    x_bank <= bank;
    y_valid <= x_valid;
    y_slice <= x_slice;
    y_first <= x_first;
    y_n <= x_n;
    y_codes <= x_codes;
    y_bank <= x_bank;

    done_pipe <= {done_pipe[DONE_DELAY-2:0], tile_done};
    bank_busy <= (bank_busy | ((pop && need_bank) ? (3'b001 << bank) : 3'b000)) & ~bank_release;
    if (tile_done) begin
        bank <= (bank == 2'd2) ? 2'd0 : bank + 1'b1;
        counting <= 1'b0;
    end
    if (go_entry) begin
        slice <= last_slice ? 2'd0 : slice + 1'b1;
    end
    if (pop && !h_marker && counting) begin
        issued_reg <= issued_reg + 1'b1;
    end
    if (start) begin
        counting <= 1'b1;
        issued_reg <= 32'd0;
    end
    if (rst || start) begin
        x_valid <= 1'b0;
        y_valid <= 1'b0;
        done_pipe <= {DONE_DELAY{1'b0}};
        bank <= 2'd0;
        bank_busy <= 3'b000;
        slice <= 2'd0;
    end
    if (rst) begin
        issued_reg <= 32'd0;
    end
end

// the credits keep the queue from overflowing; the reserved flag bit and the high entry bits
wire unused_ok = &{1'b0, q_s_ready, s2_flags[0], prog_data, 1'b0};

endmodule

`resetall
