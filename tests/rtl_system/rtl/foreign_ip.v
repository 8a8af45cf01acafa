// Not a pesto engine: an AXI4-Lite scratch RAM with an AXI4-Stream loopback, ports named like
// pesto_accel's. The system tests load it where the driver expects pesto_accel to check that the
// driver refuses a foreign bitstream, and that the simulation server and the fast harness report
// malformed streams.
module foreign_ip (
    input  wire        aclk,
    input  wire        aresetn,
    input  wire [7:0]  s_axil_awaddr,
    input  wire [2:0]  s_axil_awprot,
    input  wire        s_axil_awvalid,
    output reg         s_axil_awready,
    input  wire [31:0] s_axil_wdata,
    input  wire [3:0]  s_axil_wstrb,
    input  wire        s_axil_wvalid,
    output reg         s_axil_wready,
    output wire [1:0]  s_axil_bresp,
    output reg         s_axil_bvalid,
    input  wire        s_axil_bready,
    input  wire [7:0]  s_axil_araddr,
    input  wire [2:0]  s_axil_arprot,
    input  wire        s_axil_arvalid,
    output reg         s_axil_arready,
    output reg  [31:0] s_axil_rdata,
    output wire [1:0]  s_axil_rresp,
    output reg         s_axil_rvalid,
    input  wire        s_axil_rready,
    input  wire [63:0] s_axis_tdata,
    input  wire [7:0]  s_axis_tkeep,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,
    output wire [63:0] m_axis_tdata,
    output wire [7:0]  m_axis_tkeep,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast,
    output wire        interrupt
);
    reg [31:0] ram [0:63];
    integer i;
    initial for (i = 0; i < 64; i = i + 1) ram[i] = 32'd0;

    assign s_axil_bresp = 2'b00;
    assign s_axil_rresp = 2'b00;
    assign interrupt = 1'b0;
    // loopback: every input beat comes straight back
    assign m_axis_tdata = s_axis_tdata;
    assign m_axis_tkeep = s_axis_tkeep;
    assign m_axis_tvalid = s_axis_tvalid;
    assign m_axis_tlast = s_axis_tlast;
    assign s_axis_tready = m_axis_tready;

    // A write of 0xDEAD to 0xFC stops the simulation with $fatal: the fast harness must turn it
    // into an error of the host, not end the host process (tests/rtl_system/test_fastsim.py).
    always @(posedge aclk)
        if (aresetn && s_axil_awvalid && s_axil_wvalid && s_axil_awaddr == 8'hFC && s_axil_wdata == 32'hDEAD)
            $fatal(1, "foreign_ip: stop requested");

    always @(posedge aclk) begin
        if (!aresetn) begin
            s_axil_awready <= 1'b0;
            s_axil_wready <= 1'b0;
            s_axil_bvalid <= 1'b0;
            s_axil_arready <= 1'b0;
            s_axil_rvalid <= 1'b0;
            s_axil_rdata <= 32'd0;
        end else begin
            s_axil_awready <= 1'b0;
            s_axil_wready <= 1'b0;
            s_axil_arready <= 1'b0;
            if (s_axil_awvalid && s_axil_wvalid && !s_axil_bvalid && !s_axil_awready) begin
                s_axil_awready <= 1'b1;
                s_axil_wready <= 1'b1;
                s_axil_bvalid <= 1'b1;
                ram[s_axil_awaddr[7:2]] <= s_axil_wdata;
            end
            if (s_axil_bvalid && s_axil_bready)
                s_axil_bvalid <= 1'b0;
            if (s_axil_arvalid && !s_axil_rvalid && !s_axil_arready) begin
                s_axil_arready <= 1'b1;
                s_axil_rvalid <= 1'b1;
                s_axil_rdata <= ram[s_axil_araddr[7:2]];
            end
            if (s_axil_rvalid && s_axil_rready)
                s_axil_rvalid <= 1'b0;
        end
    end
endmodule
