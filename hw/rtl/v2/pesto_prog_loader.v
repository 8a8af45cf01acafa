/*
 * pesto_prog_loader: a MODE.LOAD_PROGRAM run: the network program stream (program.json) into the
 * code, program and parameter memories. Header word (magic, version, steps, sub-nets, dense),
 * then chunks {memory, start, length} with their entries (a code group in ceil(18*LANES/64)
 * words, v1's code layout with tap t at bits 2*LANES*t; a program row in one word; an output
 * stage in two, v1's parameter layout), then an end chunk and the sum of every word before it,
 * which must be the stream's last word. A bad header, a chunk outside its memory, a wrong sum
 * (bad) or a reserved code (bad_code) stops the load.
 */

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pesto_prog_loader #
(
    // channels per PE group word
    parameter LANES = 16,
    // code memory address width and depth (groups)
    parameter CA = 13,
    parameter CODE_DEPTH = 6144,
    // program memory word address width
    parameter PA = 14,
    // parameter memory address width and depth (output stages)
    parameter PRA = 12,
    parameter PARAM_DEPTH = 4096
)
(
    input  wire                  clk,
    input  wire                  rst,

    input  wire                  start,

    input  wire                  b_valid,
    output wire                  b_ready,
    input  wire [63:0]           b_data,
    output wire                  expect_last,

    output wire                  code_wr,
    output wire [CA-1:0]         code_addr,
    output wire [18*LANES-1:0]   code_data,
    output wire [1:0]            prog_wr,
    output wire [PA-2:0]         prog_row,
    output wire [63:0]           prog_data,
    output wire                  param_wr,
    output wire [PRA-1:0]        param_addr,
    output wire [69:0]           param_data,

    output wire                  done,
    output wire                  bad,
    output wire                  bad_code,
    output wire [15:0]           steps,
    output wire [4:0]            subnets,
    output wire                  dense,
    output wire [31:0]           sum_low
);

/* verilator lint_off UNUSEDPARAM */
`include "pesto_program.vh"
/* verilator lint_on UNUSEDPARAM */

localparam CODE_BITS = 18 * LANES;
localparam CODE_BEATS = (CODE_BITS + 63) / 64;
localparam [2:0] IDLE = 3'd0, HEADER = 3'd1, CHUNK = 3'd2, DATA = 3'd3, SUM = 3'd4;
localparam [32:0] PROG_ROWS = 33'd1 << (PA - 1);
localparam [32:0] CODE_END = CODE_DEPTH;
localparam [32:0] PARAM_END = PARAM_DEPTH;

reg [2:0] state;
reg [3:0] memory;
reg [31:0] left;                    // entries of the chunk still to come
reg [23:0] addr;
reg [3:0] k;                        // beat within an entry
reg [64*CODE_BEATS-1:0] entry;
reg [47:0] bias;
reg [63:0] sum;
reg [15:0] steps_reg;
reg [4:0] subnets_reg;
reg dense_reg;
reg done_reg, bad_reg, bad_code_reg;
reg code_wr_reg, param_wr_reg;
reg [1:0] prog_wr_reg;
reg [CA-1:0] code_addr_reg;
reg [PRA-1:0] param_addr_reg;
reg [PA-2:0] prog_row_reg;
reg [63:0] prog_data_reg;
reg [69:0] param_data_reg;

wire take = b_valid && b_ready;
wire [3:0] c_mem = b_data[PROG_CHUNK_MEMORY_MSB:PROG_CHUNK_MEMORY_LSB];
wire [23:0] c_start = b_data[PROG_CHUNK_START_MSB:PROG_CHUNK_START_LSB];
wire [31:0] c_len = b_data[PROG_CHUNK_LENGTH_MSB:PROG_CHUNK_LENGTH_LSB];
wire [32:0] c_end = {9'd0, c_start} + {1'b0, c_len};
wire c_fits = (c_mem == PROG_MEM_CODE && c_end <= CODE_END) ||
              (c_mem == PROG_MEM_PROG && c_end <= PROG_ROWS) ||
              (c_mem == PROG_MEM_PARAM && c_end <= PARAM_END);
wire [3:0] beats = memory == PROG_MEM_CODE ? CODE_BEATS[3:0] : memory == PROG_MEM_PARAM ? 4'd2 : 4'd1;
wire entry_end = k == beats - 1'b1;
wire [31:0] h_magic = b_data[PROG_HDR_MAGIC_MSB:PROG_HDR_MAGIC_LSB];
wire [7:0] h_version = b_data[PROG_HDR_VERSION_MSB:PROG_HDR_VERSION_LSB];
wire [4:0] h_subnets = b_data[PROG_HDR_SUBNETS_MSB:PROG_HDR_SUBNETS_LSB];
wire [15:0] h_steps = b_data[PROG_HDR_STEPS_MSB:PROG_HDR_STEPS_LSB];

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

assign b_ready = state != IDLE;
assign expect_last = state == SUM;
assign code_wr = code_wr_reg;
assign code_addr = code_addr_reg;
assign code_data = entry[CODE_BITS-1:0];
assign prog_wr = prog_wr_reg;
assign prog_row = prog_row_reg;
assign prog_data = prog_data_reg;
assign param_wr = param_wr_reg;
assign param_addr = param_addr_reg;
assign param_data = param_data_reg;
assign done = done_reg;
assign bad = bad_reg;
assign bad_code = bad_code_reg;
assign steps = steps_reg;
assign subnets = subnets_reg;
assign dense = dense_reg;
assign sum_low = sum[31:0];

always @(posedge clk) begin
    done_reg <= 1'b0;
    bad_reg <= 1'b0;
    bad_code_reg <= 1'b0;
    code_wr_reg <= 1'b0;
    param_wr_reg <= 1'b0;
    prog_wr_reg <= 2'b00;
    if (take && state != SUM) begin
        sum <= sum + b_data;
    end
    case (state)
        IDLE: begin
            if (start) begin
                sum <= 64'd0;
                state <= HEADER;
            end
        end
        HEADER: begin
            if (take) begin
                steps_reg <= h_steps;
                subnets_reg <= h_subnets;
                dense_reg <= b_data[PROG_HDR_DENSE_LSB];
                if (h_magic == PROG_MAGIC && h_version == PROG_VERSION[7:0] && h_subnets != 5'd0 &&
                        h_subnets <= 5'd16 && h_steps != 16'd0) begin
                    state <= CHUNK;
                end else begin
                    bad_reg <= 1'b1;
                    state <= IDLE;
                end
            end
        end
        CHUNK: begin
            if (take) begin
                memory <= c_mem;
                addr <= c_start;
                left <= c_len;
                k <= 4'd0;
                entry <= {64*CODE_BEATS{1'b0}};
                if (c_mem == PROG_MEM_END) begin
                    state <= SUM;
                end else if (!c_fits) begin
                    bad_reg <= 1'b1;
                    state <= IDLE;
                end else if (c_len != 32'd0) begin
                    state <= DATA;
                end
            end
        end
        DATA: begin
            if (take) begin
                entry[64*k +: 64] <= b_data;
                k <= entry_end ? 4'd0 : k + 1'b1;
                if (memory == PROG_MEM_CODE && has_reserved) begin
                    bad_code_reg <= 1'b1;
                    state <= IDLE;
                end else if (entry_end) begin
                    addr <= addr + 1'b1;
                    left <= left - 1'b1;
                    if (left == 32'd1) begin
                        state <= CHUNK;
                    end
                end
                if (memory == PROG_MEM_CODE && entry_end) begin
                    code_wr_reg <= 1'b1;
                    code_addr_reg <= addr[CA-1:0];
                end
                if (memory == PROG_MEM_PROG) begin
                    prog_wr_reg <= 2'b11;
                    prog_row_reg <= addr[PA-2:0];
                    prog_data_reg <= b_data;
                end
                if (memory == PROG_MEM_PARAM) begin
                    if (k == 4'd0) begin
                        bias <= b_data[47:0];
                    end else begin
                        param_wr_reg <= 1'b1;
                        param_addr_reg <= addr[PRA-1:0];
                        param_data_reg <= {bias, b_data[21:0]};
                    end
                end
            end
        end
        SUM: begin
            if (take) begin
                state <= IDLE;
                if (b_data == sum) begin
                    done_reg <= 1'b1;
                end else begin
                    bad_reg <= 1'b1;
                end
            end
        end
        default: state <= IDLE;
    endcase
    if (rst) begin
        state <= IDLE;
        done_reg <= 1'b0;
        bad_reg <= 1'b0;
    end
end

wire unused_ok = &{1'b0, entry, 1'b0};

endmodule

`resetall
