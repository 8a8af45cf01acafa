// The pipeline depth of pesto_fat_pe (hw/rtl/v2/pesto_fat_pe.v), the one home of it: pesto_issue
// waits this long after a tile's last entry before it hands the tile's accumulators to the drain.
// A PE's adder tree has one registered level per halving of its terms (9 taps x its slice of
// channels), then one cycle accumulates and writes.

// levels of a binary adder tree over `terms` leaves
function integer pesto_adder_levels;
    input integer terms;
    integer left;
    begin
        pesto_adder_levels = 0;
        left = terms;
        while (left > 1) begin
            left = (left + 1) / 2;
            pesto_adder_levels = pesto_adder_levels + 1;
        end
    end
endfunction

// terms a PE adds per cycle: the nine taps x LANES / GROUP_CYCLES channels
function integer pesto_fat_pe_terms;
    input integer lanes;
    input integer group_cycles;
    begin
        pesto_fat_pe_terms = 9 * lanes / group_cycles;
    end
endfunction

// cycles from an entry at a PE's input to its accumulator written
function integer pesto_fat_pe_latency;
    input integer lanes;
    input integer group_cycles;
    begin
        pesto_fat_pe_latency = pesto_adder_levels(pesto_fat_pe_terms(lanes, group_cycles)) + 1;
    end
endfunction
