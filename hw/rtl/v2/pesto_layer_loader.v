/*
 * pesto_layer_loader: layer mode (v1's run sequence and packets) on the v2 engine. It takes the
 * v1 weight packet apart into the same memories a network program fills and builds the layer's
 * issue schedule in the program memory:
 *
 *   parameters (2 words per channel)  -> parameter memory [n]
 *   group indexer (bit n*G + g)        -> walk 1, one bit per cycle: scratch[g*N + n] = {nz, rank}
 *                                         (rank: the group's place among the non-zero groups in
 *                                         (n, g) order, i.e. in the packet), word-group masks
 *   codes of the non-zero groups       -> code memory [rank] (a 1x1 group's taps go to the centre)
 *   walk 2 (g-major over the scratch)  -> pass table and entries: with skipping the non-zero
 *                                         groups, without every group (nz = 0: zero codes)
 *
 * Walk 2 runs on every run (a run that reuses the weights may switch the mode), beside the codes
 * and the activations arriving. Program memory layout: passes at 0, masks at MASK_BASE, entries
 * at ENTRY_BASE, the scratch in the upper half. A network program in the memories is lost.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_layer_loader #
(
    // channels per PE group word
    parameter LANES = 16,
    // output channel index width
    parameter N_WIDTH = 9,
    // code memory address width
    parameter CA = 13,
    // program memory word address width
    parameter PA = 14,
    // parameter memory address width
    parameter PRA = 12
)
(
    input  wire                   clk,
    input  wire                   rst,

    input  wire                   start,
    input  wire                   load_weights,
    input  wire                   skip,
    input  wire                   kernel3,
    input  wire [N_WIDTH:0]       n,
    input  wire [11:0]            groups,
    input  wire [15:0]            nnz,
    input  wire [19:0]            plane,

    input  wire                   b_valid,
    output wire                   b_ready,
    input  wire [63:0]            b_data,

    output wire                   code_wr,
    output wire [CA-1:0]          code_addr,
    output wire [18*LANES-1:0]    code_data,
    output wire [1:0]             prog_wr,
    output wire [PA-2:0]          prog_row,
    output wire [63:0]            prog_data,
    output wire                   param_wr,
    output wire [PRA-1:0]         param_addr,
    output wire [69:0]            param_data,
    output wire [PA-1:0]          prog_rd_addr,
    input  wire [31:0]            prog_rd_data,

    // the weight packet is in (the activations follow); the schedule is built
    output wire                   weights_done,
    output wire                   sched_done,
    output wire [15:0]            pass_count,
    output wire                   mismatch,
    output wire                   bad_code
);

/* verilator lint_off UNUSEDPARAM */
`include "pesto_program.vh"
/* verilator lint_on UNUSEDPARAM */

localparam CODE_BITS = 18 * LANES;
localparam CODE_BEATS = (CODE_BITS + 63) / 64;
localparam LW = $clog2(LANES);
localparam [PA-1:0] MASK_BASE = 256;
localparam [PA-1:0] ENTRY_BASE = 512;
localparam [PA-1:0] SCRATCH_BASE = 1 << (PA - 1);
localparam [2:0] IDLE = 3'd0, PARAMS = 3'd1, INDEX = 3'd2, CODES = 3'd3, DONE = 3'd4;

// ------------------------------------------------------------------ the weight packet
reg [2:0] state;
reg [N_WIDTH:0] pn;                  // parameters: channel
reg pk;                              // parameters: word of the channel
reg [47:0] bias;
reg [63:0] bits;
reg [6:0] bits_left;                 // bits of the current indexer word still to walk
reg [N_WIDTH:0] wn;                  // walk 1: channel, group, scratch index g*N + n
reg [11:0] wg;
reg [PA-1:0] widx;
reg [15:0] rank;
reg row_nz;
reg [LANES-1:0] mask_acc;
reg [15:0] code_i;
reg [3:0] ck;
reg [64*CODE_BEATS-1:0] entry;
reg walk1_done;
reg mask_pending, mask_now;
reg [LANES-1:0] mask_word;
reg [PA-1:0] mask_at;
reg mismatch_reg, bad_code_reg;
// one program-memory write per cycle: scratch and masks (walk 1) or entries and passes (walk 2)
reg [1:0] w1_wr;
reg [PA-1:0] w1_addr;
reg [31:0] w1_data;
reg code_wr_reg, param_wr_reg;
reg [CA-1:0] code_addr_reg;
reg [PRA-1:0] param_addr_reg;
reg [69:0] param_data_reg;

wire [3:0] beats = kernel3 ? CODE_BEATS[3:0] : 4'd1;
wire walking = state == INDEX && bits_left != 7'd0 && !mask_pending && !mask_now;
wire take = b_valid && b_ready;
wire nz = bits[0];
wire last_g = wg == groups - 1'b1;
wire last_n = wn == n - 1'b1;
wire [N_WIDTH:0] n_mask_index = wn >> LW;

// a 2-bit field of a code word holding the reserved code 2 (binary 10)
wire [31:0] fields_hi, fields_lo;
genvar f;
generate
    for (f = 0; f < 32; f = f + 1) begin : field
        assign fields_hi[f] = b_data[2*f+1];
        assign fields_lo[f] = b_data[2*f];
    end
endgenerate
wire has_reserved = |(fields_hi & ~fields_lo);

assign b_ready = state == PARAMS || (state == INDEX && bits_left == 7'd0 && !mask_pending && !mask_now) ||
                 state == CODES;
assign code_wr = code_wr_reg;
assign code_addr = code_addr_reg;
assign code_data = kernel3 ? entry[CODE_BITS-1:0] :
                   {{8*LANES{1'b0}}, entry[2*LANES-1:0], {8*LANES{1'b0}}};
assign param_wr = param_wr_reg;
assign param_addr = param_addr_reg;
assign param_data = param_data_reg;
assign weights_done = state == DONE;
assign mismatch = mismatch_reg;
assign bad_code = bad_code_reg;

always @(posedge clk) begin
    code_wr_reg <= 1'b0;
    param_wr_reg <= 1'b0;
    w1_wr <= 2'b00;
    bad_code_reg <= 1'b0;
    case (state)
        IDLE: ;
        PARAMS: begin
            if (take) begin
                pk <= !pk;
                if (!pk) begin
                    bias <= b_data[47:0];
                end else begin
                    param_wr_reg <= 1'b1;
                    param_addr_reg <= {{PRA-N_WIDTH-1{1'b0}}, pn};
                    param_data_reg <= {bias, b_data[21:0]};
                    pn <= pn + 1'b1;
                    if (pn == n - 1'b1) begin
                        state <= INDEX;
                    end
                end
            end
        end
        INDEX: begin
            if (take) begin
                bits <= b_data;
                bits_left <= 7'd64;
            end else if (walking) begin
                // walk 1: one indexer bit per cycle
                bits <= bits >> 1;
                bits_left <= bits_left - 1'b1;
                w1_wr <= widx[0] ? 2'b10 : 2'b01;
                w1_addr <= widx;
                w1_data <= {16'd0, nz, rank[14:0]};
                rank <= rank + {15'd0, nz};
                if (!last_g) begin
                    wg <= wg + 1'b1;
                    widx <= widx + {{PA-N_WIDTH-1{1'b0}}, n};
                    row_nz <= row_nz | nz;
                end else begin
                    wg <= 12'd0;
                    row_nz <= 1'b0;
                    mask_acc[wn[LW-1:0]] <= row_nz | nz;
                    wn <= wn + 1'b1;
                    widx <= SCRATCH_BASE + {{PA-N_WIDTH-1{1'b0}}, wn} + 1'b1;
                    if (wn[LW-1:0] == {LW{1'b1}} || last_n) begin
                        // the channel's mask word is complete: write it next cycle
                        mask_pending <= 1'b1;
                        mask_word <= mask_acc | ({{LANES-1{1'b0}}, row_nz | nz} << wn[LW-1:0]);
                        mask_at <= MASK_BASE + {{PA-N_WIDTH-1{1'b0}}, n_mask_index};
                        mask_acc <= {LANES{1'b0}};
                    end
                    if (last_n) begin
                        bits_left <= 7'd0;
                        walk1_done <= 1'b1;
                        mismatch_reg <= rank + {15'd0, nz} != nnz;
                        state <= (rank + {15'd0, nz} == 16'd0) ? DONE : CODES;
                    end
                end
            end
        end
        CODES: begin
            if (take) begin
                entry[64*ck +: 64] <= b_data;
                if (has_reserved) begin
                    bad_code_reg <= 1'b1;
                end
                if (ck == beats - 1'b1) begin
                    ck <= 4'd0;
                    code_wr_reg <= 1'b1;
                    code_addr_reg <= code_i[CA-1:0];
                    code_i <= code_i + 1'b1;
                    if (code_i == rank - 1'b1) begin
                        state <= DONE;
                    end
                end else begin
                    ck <= ck + 1'b1;
                end
            end
        end
        DONE: ;
        default: state <= IDLE;
    endcase
    if (start) begin
        pn <= {N_WIDTH+1{1'b0}};
        pk <= 1'b0;
        bits_left <= 7'd0;
        wn <= {N_WIDTH+1{1'b0}};
        wg <= 12'd0;
        widx <= SCRATCH_BASE;
        rank <= 16'd0;
        row_nz <= 1'b0;
        mask_acc <= {LANES{1'b0}};
        code_i <= 16'd0;
        ck <= 4'd0;
        walk1_done <= !load_weights;
        mismatch_reg <= 1'b0;
        state <= load_weights ? PARAMS : DONE;
    end
    // the mask word is written the cycle after the walk's own last write
    mask_now <= mask_pending;
    if (mask_pending) begin
        mask_pending <= 1'b0;
    end
    if (rst) begin
        state <= IDLE;
        walk1_done <= 1'b0;
        mismatch_reg <= 1'b0;
        mask_pending <= 1'b0;
        mask_now <= 1'b0;
    end
end

// ------------------------------------------------------------------ walk 2: the schedule
localparam [2:0] W2_IDLE = 3'd0, W2_CLEAR = 3'd1, W2_RUN = 3'd2, W2_PASS = 3'd3, W2_DONE = 3'd4;

reg [2:0] w2;
reg [N_WIDTH:0] qn;                 // read side: channel, group, scratch index
reg [11:0] qg;
reg [PA-1:0] qidx;
reg q_done;                         // the group's reads are all issued
reg r_valid, r_last_n;              // one cycle after the read
reg [N_WIDTH:0] r_n;
reg r_g0;
reg [15:0] e, p, count;
reg [19:0] offset;
reg seen [0:(1<<N_WIDTH)-1];
reg [1:0] w2_wr;
reg [PA-1:0] w2_addr;
reg [31:0] w2_data;
reg sched_done_reg;

wire r_nz = prog_rd_data[15];
wire [13:0] r_rank = prog_rd_data[13:0];
wire r_seen = seen[r_n[N_WIDTH-1:0]];
wire r_take = r_valid && (!skip || r_nz);
wire reading = w2 == W2_RUN && !q_done;
wire [9:0] r_n10 = r_n[9:0];

assign prog_rd_addr = qidx;
assign sched_done = sched_done_reg;
assign pass_count = p;

always @(posedge clk) begin
    w2_wr <= 2'b00;
    r_valid <= 1'b0;
    case (w2)
        W2_IDLE: begin
            if (walk1_done && !sched_done_reg && state != IDLE) begin
                qn <= {N_WIDTH+1{1'b0}};
                w2 <= W2_CLEAR;
            end
        end
        W2_CLEAR: begin                        // seen[n] = 0 for every channel
            seen[qn[N_WIDTH-1:0]] <= 1'b0;
            qn <= qn + 1'b1;
            if (qn == n - 1'b1) begin
                qn <= {N_WIDTH+1{1'b0}};
                qg <= 12'd0;
                qidx <= SCRATCH_BASE;
                q_done <= 1'b0;
                e <= 16'd0;
                p <= 16'd0;
                count <= 16'd0;
                offset <= 20'd0;
                w2 <= W2_RUN;
            end
        end
        W2_RUN: begin
            if (reading) begin
                r_valid <= 1'b1;
                r_n <= qn;
                r_g0 <= qg == 12'd0;
                r_last_n <= qn == n - 1'b1;
                qidx <= qidx + 1'b1;
                qn <= qn + 1'b1;
                if (qn == n - 1'b1) begin
                    q_done <= 1'b1;
                end
            end
            if (r_take) begin
                w2_wr <= e[0] ? 2'b10 : 2'b01;
                w2_addr <= ENTRY_BASE + e[PA-1:0];
                w2_data <= {6'd0, r_nz, skip ? !r_seen : r_g0, r_rank, r_n10};
                seen[r_n[N_WIDTH-1:0]] <= 1'b1;
                e <= e + 1'b1;
                count <= count + 1'b1;
            end
            if (r_valid && r_last_n) begin
                w2 <= W2_PASS;                 // a cycle for the group's pass entry
            end
        end
        W2_PASS: begin
            if (count != 16'd0) begin
                w2_wr <= p[0] ? 2'b10 : 2'b01;
                w2_addr <= p[PA-1:0];
                w2_data <= {offset[11:0], count[11:0], qg[7:0]};
                p <= p + 1'b1;
            end
            count <= 16'd0;
            offset <= offset + plane;
            qn <= {N_WIDTH+1{1'b0}};
            qg <= qg + 1'b1;
            q_done <= 1'b0;
            w2 <= (qg == groups - 1'b1) ? W2_DONE : W2_RUN;
        end
        W2_DONE: begin
            sched_done_reg <= 1'b1;
            w2 <= W2_IDLE;
        end
        default: w2 <= W2_IDLE;
    endcase
    if (start) begin
        sched_done_reg <= 1'b0;
    end
    if (rst) begin
        w2 <= W2_IDLE;
        sched_done_reg <= 1'b0;
        r_valid <= 1'b0;
    end
end

assign prog_wr = w1_wr | w2_wr | (mask_now ? (mask_at[0] ? 2'b10 : 2'b01) : 2'b00);
assign prog_row = w1_wr != 2'b00 ? w1_addr[PA-1:1] : w2_wr != 2'b00 ? w2_addr[PA-1:1] : mask_at[PA-1:1];
wire [31:0] wr_word = w1_wr != 2'b00 ? w1_data : w2_wr != 2'b00 ? w2_data : {{32-LANES{1'b0}}, mask_word};
assign prog_data = {wr_word, wr_word};

wire unused_ok = &{1'b0, prog_rd_data, entry, w1_addr[0], w2_addr[0], 1'b0};

endmodule

`resetall
