# Packages the RTL engine (top PESTO_RTL_TOP, accelerator v2; sources PESTO_RTL_SOURCES) as a Vivado IP
# (VLNV from regmap.json via config.tcl). Sourced by pynq_z1.tcl.
# The port prefixes s_axil_/s_axis_/m_axis_ (alexforencich style) let Vivado infer the AXI4-Lite
# and AXI4-Stream interfaces; the clock, reset and interrupt are declared here.
set pkg_dir "$PESTO_BUILD/ip_pkg"
create_project -force pesto_ip_pkg $pkg_dir -part $PESTO_PART
add_files -norecurse $PESTO_RTL_SOURCES
set_property is_global_include true [get_files -quiet *.vh]
set_property top $PESTO_RTL_TOP [current_fileset]
update_compile_order -fileset sources_1
ipx::package_project -root_dir $PESTO_IP_REPO -vendor $PESTO_VENDOR -library $PESTO_LIBRARY \
    -taxonomy /UserIP -import_files -set_current true
set core [ipx::current_core]
set_property name $PESTO_NAME $core
set_property version $PESTO_VERSION $core
set_property display_name "pesto accelerator (RTL)" $core
ipx::infer_bus_interface aclk xilinx.com:signal:clock_rtl:1.0 $core
ipx::infer_bus_interface aresetn xilinx.com:signal:reset_rtl:1.0 $core
ipx::infer_bus_interface interrupt xilinx.com:signal:interrupt_rtl:1.0 $core
set_property value ACTIVE_LOW [ipx::add_bus_parameter POLARITY [ipx::get_bus_interfaces aresetn -of_objects $core]]
set_property value LEVEL_HIGH [ipx::add_bus_parameter SENSITIVITY [ipx::get_bus_interfaces interrupt -of_objects $core]]
ipx::associate_bus_interfaces -busif s_axil -clock aclk $core
ipx::associate_bus_interfaces -busif s_axis -clock aclk $core
ipx::associate_bus_interfaces -busif m_axis -clock aclk $core
ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::check_integrity $core
ipx::save_core $core
close_project
