# PYNQ-Z1 block design around pesto_accel: Zynq PS7 (board preset, FCLK0 100 MHz, GP0 master,
# HP0 64-bit slave), AXI DMA (MM2S + S2MM, 64-bit streams, no scatter-gather), the accelerator
# (packaged from hw/rtl, or exported by Vitis HLS), interrupts via xlconcat to IRQ_F2P.
# Writes $PESTO_OUT/pesto_<variant>.bit and .hwh (bitstreams/).  Run through bitstreams/build.sh.
#   vivado -mode batch -source bitstreams/pynq_z1.tcl -tclargs CONFIG.TCL
source [lindex $argv 0]
set here [file dirname [file normalize [info script]]]
if {[version -short] ne $PESTO_VIVADO_VERSION} {
    puts "WARNING: pesto's PYNQ-Z1 scripts are written for Vivado $PESTO_VIVADO_VERSION, this is [version -short]"
}
set board [lindex [lsort [get_board_parts -quiet $PESTO_BOARD_PATTERN]] end]
if {$board eq ""} {
    error "no PYNQ-Z1 board files: copy new/board_files/pynq-z1 of github.com/Digilent/vivado-boards into [file normalize $::env(XILINX_VIVADO)/data/boards/board_files] (docs/bitstreams.md)"
}

if {$PESTO_VARIANT eq "rtl"} { source $here/package_rtl.tcl }

set prj_dir "$PESTO_BUILD/vivado"
create_project -force pesto_$PESTO_VARIANT $prj_dir -part $PESTO_PART
set_property board_part $board [current_project]
set_property ip_repo_paths [list $PESTO_IP_REPO] [current_project]
update_ip_catalog

set bd pesto
create_bd_design $bd
set ps7 [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7 ps7]
apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
    -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps7
set_property -dict [list CONFIG.PCW_USE_M_AXI_GP0 {1} CONFIG.PCW_USE_S_AXI_HP0 {1} \
    CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64} CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $PESTO_CLOCK_MHZ \
    CONFIG.PCW_USE_FABRIC_INTERRUPT {1} CONFIG.PCW_IRQ_F2P_INTR {1}] $ps7

set dma [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma axi_dma]
set_property -dict [list CONFIG.c_include_sg {0} CONFIG.c_sg_length_width {26} \
    CONFIG.c_include_mm2s {1} CONFIG.c_include_s2mm {1} \
    CONFIG.c_m_axi_mm2s_data_width {64} CONFIG.c_m_axis_mm2s_tdata_width {64} \
    CONFIG.c_m_axi_s2mm_data_width {64} CONFIG.c_s_axis_s2mm_tdata_width {64} \
    CONFIG.c_mm2s_burst_size {64} CONFIG.c_s2mm_burst_size {64}] $dma

set accel [create_bd_cell -type ip -vlnv $PESTO_VLNV pesto_accel]
if {[llength $PESTO_IP_PARAMS]} {
    set cfg {}
    foreach {k v} $PESTO_IP_PARAMS { lappend cfg CONFIG.$k $v }
    set_property -dict $cfg $accel
}
array set port $PESTO_PORTS

# control: GP0 -> interconnect -> DMA registers and the accelerator's AXI4-Lite
proc axi_auto {master slave pin intc} {
    apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master {Auto} Clk_slave {Auto} \
        Clk_xbar {Auto} Master $master Slave $slave ddr_seg {Auto} intc_ip $intc master_apm {0}] $pin
}
axi_auto /ps7/M_AXI_GP0 /axi_dma/S_AXI_LITE [get_bd_intf_pins axi_dma/S_AXI_LITE] {New AXI Interconnect}
axi_auto /ps7/M_AXI_GP0 /pesto_accel/$port(lite) [get_bd_intf_pins pesto_accel/$port(lite)] {Auto}
# data: DMA masters -> SmartConnect -> HP0
axi_auto /axi_dma/M_AXI_MM2S /ps7/S_AXI_HP0 [get_bd_intf_pins ps7/S_AXI_HP0] {New AXI SmartConnect}
axi_auto /axi_dma/M_AXI_S2MM /ps7/S_AXI_HP0 [get_bd_intf_pins axi_dma/M_AXI_S2MM] {Auto}
connect_bd_intf_net [get_bd_intf_pins axi_dma/M_AXIS_MM2S] [get_bd_intf_pins pesto_accel/$port(in)]
connect_bd_intf_net [get_bd_intf_pins pesto_accel/$port(out)] [get_bd_intf_pins axi_dma/S_AXIS_S2MM]
# the accelerator's clock and reset: the ones the automation gave its AXI4-Lite port
connect_bd_net [get_bd_pins ps7/FCLK_CLK0] [get_bd_pins pesto_accel/$port(clk)] -quiet
connect_bd_net [get_bd_pins -of_objects [get_bd_cells -filter {VLNV =~ *proc_sys_reset*}] -filter {NAME == peripheral_aresetn}] \
    [get_bd_pins pesto_accel/$port(rstn)] -quiet

# interrupts: DMA MM2S, DMA S2MM, accelerator done -> IRQ_F2P
set irq [create_bd_cell -type ip -vlnv xilinx.com:ip:xlconcat irq_concat]
set_property CONFIG.NUM_PORTS {3} $irq
connect_bd_net [get_bd_pins axi_dma/mm2s_introut] [get_bd_pins irq_concat/In0]
connect_bd_net [get_bd_pins axi_dma/s2mm_introut] [get_bd_pins irq_concat/In1]
connect_bd_net [get_bd_pins pesto_accel/$port(irq)] [get_bd_pins irq_concat/In2]
connect_bd_net [get_bd_pins irq_concat/dout] [get_bd_pins ps7/IRQ_F2P]

assign_bd_address
validate_bd_design
save_bd_design

set wrapper [make_wrapper -files [get_files $bd.bd] -top]
add_files -norecurse $wrapper
set_property top ${bd}_wrapper [current_fileset]
launch_runs impl_1 -to_step write_bitstream -jobs $PESTO_JOBS
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} { error "implementation failed: see $prj_dir" }

# PYNQ loads NAME.bit together with NAME.hwh
file mkdir $PESTO_OUT
file copy -force [glob $prj_dir/pesto_$PESTO_VARIANT.runs/impl_1/${bd}_wrapper.bit] $PESTO_OUT/pesto_$PESTO_VARIANT.bit
file copy -force [glob $prj_dir/pesto_$PESTO_VARIANT.gen/sources_1/bd/$bd/hw_handoff/$bd.hwh] $PESTO_OUT/pesto_$PESTO_VARIANT.hwh
puts "wrote $PESTO_OUT/pesto_$PESTO_VARIANT.bit and .hwh"
