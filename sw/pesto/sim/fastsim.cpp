// fastsim.cpp: a C++ testbench around a Verilated accelerator top (class Vtop), built into a
// shared library that pesto.sim.fast.FastSim drives over ctypes. No Python runs per cycle.
//
// The top is reached only through its port list (the contract of hw/rtl/pesto_accel.v):
//   aclk, aresetn, s_axil_* (AXI4-Lite slave), s_axis_* (input stream), m_axis_* (output
//   stream), interrupt.
// Port widths come from the Verilated model (pesto.sim.build writes fastsim_ports.h from
// Vtop.h); registers are plain offsets. Each call runs whole clock cycles until its
// transaction completes, its cycle budget is spent or its wall-clock deadline passes, and
// returns a Result the host turns into values or a HardwareError.
//
// One cycle (step): sample every handshake (valid && ready) before the rising edge, raise
// aclk and evaluate, then drive the next inputs and evaluate again with aclk low, so the
// outputs seen at the next sample are settled. The same timing as cocotbext-axi's drivers:
// a source drives a new beat just after an edge, a sink samples just before one.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "Vtop.h"
#include "verilated.h"
// Last: the port widths, and a macro for each port Verilator renamed (interrupt is a reserved
// word to it and becomes __SYM__interrupt), so that top_->interrupt means the port.
#include "fastsim_ports.h"

#define API extern "C" __attribute__((visibility("default")))

static_assert(FASTSIM_TDATA_BITS <= 64, "stream words wider than 64 bits are not supported");
static_assert(FASTSIM_AXIL_DATA_BITS <= 32, "AXI4-Lite data wider than 32 bits is not supported");

namespace {

// Verilator's default vl_fatal ($fatal, $stop, internal errors) exits the process, which here is
// the host's Python: throw instead, and the call that was running reports it.
struct ModelFatal : std::runtime_error {
    using std::runtime_error::runtime_error;
};

constexpr uint64_t mask_of(int bits) { return bits >= 64 ? ~0ULL : ((1ULL << bits) - 1); }

enum Status : int32_t {
    OK = 0,
    CYCLE_LIMIT = 1,   // the cycle budget ran out before the transaction completed
    WALL_LIMIT = 2,    // the wall-clock deadline passed first
    EARLY_TLAST = 3,   // the output stream ended before the input stream was accepted
    FATAL = 4,         // the model called $fatal/$stop/$finish or Verilator stopped it
    BAD_ARG = 5,       // an offset or value outside the port's width
    DEAD = 6,          // an earlier FATAL: the model cannot go on
    ENGINE_ERROR = 7,  // the watched status register shows an error: the engine sends no output
};

constexpr uint64_t WATCH_CYCLES = 4096;  // a transfer reads the watched register this often

// What the host is waiting for, reported as a bit mask in Result.pending.
enum Pending : uint32_t {
    P_AW = 1, P_W = 2, P_B = 4, P_AR = 8, P_R = 16, P_SRC = 32, P_TLAST = 64,
};

}  // namespace

struct Result {
    uint64_t cycles;      // cycles this call ran
    uint64_t accepted;    // input words accepted on s_axis
    uint64_t received;    // output words received on m_axis (also those beyond the buffer)
    uint64_t stray;       // output words that arrived with no transfer waiting (dropped)
    uint64_t s_stalled;   // trailing cycles s_axis_tvalid was high and tready low
    uint64_t m_silent;    // trailing cycles without an output word
    uint32_t value;       // register read data
    uint32_t resp;        // BRESP / RRESP
    uint32_t pending;     // Pending bits still open when the call ended
    int32_t status;       // Status
    int32_t irq;          // the interrupt output when the call ended
    int32_t reserved;
    uint64_t now;         // clock cycles simulated since the model was created
    char message[256];    // FATAL: Verilator's message
};

namespace {

class Sim {
public:
    explicit Sim(int seed) {
        ctx_.randReset(2);               // X's are random per seed, as in the cocotb runs
        ctx_.randSeed(seed ? seed : 1);
        ctx_.fatalOnError(true);
        top_ = new Vtop{&ctx_, "top"};
        top_->aclk = 0;
        top_->aresetn = 0;
        top_->s_axil_awvalid = 0;
        top_->s_axil_wvalid = 0;
        top_->s_axil_bready = 0;
        top_->s_axil_arvalid = 0;
        top_->s_axil_rready = 0;
        top_->s_axil_awprot = 0;
        top_->s_axil_arprot = 0;
        top_->s_axil_wstrb = mask_of(FASTSIM_AXIL_DATA_BITS / 8);
        top_->s_axis_tvalid = 0;
        top_->s_axis_tlast = 0;
        top_->s_axis_tdata = 0;
        top_->s_axis_tkeep = mask_of(FASTSIM_TDATA_BITS / 8);
        top_->m_axis_tready = 0;
        top_->eval();
    }
    ~Sim() {
        top_->final();
        delete top_;
    }

    uint64_t cycles() const { return cycles_; }
    bool dead() const { return !dead_msg_.empty(); }
    const std::string& dead_msg() const { return dead_msg_; }

    void set_noise(double idle, double backpressure, uint64_t seed) {
        idle_ = idle;
        bp_ = backpressure;
        rng_ = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
    }

    // aresetn low for `low` cycles, then high for 2 (the cocotb server's reset).
    void reset(int low) {
        src_abort();
        top_->s_axil_awvalid = top_->s_axil_wvalid = top_->s_axil_arvalid = 0;
        top_->aresetn = 0;
        hold_ready_ = true;
        for (int i = 0; i < low; ++i) step();
        top_->aresetn = 1;
        hold_ready_ = false;  // the sink comes back on the first edge after reset
        step();
        step();
    }

    void write(uint32_t addr, uint32_t data, uint64_t max_cycles, double timeout_s, Result& r) {
        begin(max_cycles, timeout_s);
        top_->s_axil_awaddr = addr;
        top_->s_axil_wdata = data;
        uint32_t pending = P_AW | P_W | P_B;
        bool first = true;
        while (pending) {
            const bool aw = top_->s_axil_awvalid && top_->s_axil_awready;
            const bool w = top_->s_axil_wvalid && top_->s_axil_wready;
            const bool b = top_->s_axil_bvalid && top_->s_axil_bready;
            const uint32_t bresp = top_->s_axil_bresp;
            step_edge();
            if (aw) { top_->s_axil_awvalid = 0; pending &= ~P_AW; }
            if (w) { top_->s_axil_wvalid = 0; pending &= ~P_W; }
            if (b && !(pending & (P_AW | P_W))) { pending &= ~P_B; r.resp = bresp; }
            if (first) { top_->s_axil_awvalid = 1; top_->s_axil_wvalid = 1; first = false; }
            step_settle();
            if (pending && over(r)) break;
        }
        if (pending) { top_->s_axil_awvalid = top_->s_axil_wvalid = 0; top_->eval(); }
        finish(r, pending);
    }

    void read(uint32_t addr, uint64_t max_cycles, double timeout_s, Result& r) {
        begin(max_cycles, timeout_s);
        top_->s_axil_araddr = addr;
        uint32_t pending = P_AR | P_R;
        bool first = true;
        while (pending) {
            const bool ar = top_->s_axil_arvalid && top_->s_axil_arready;
            const bool rd = top_->s_axil_rvalid && top_->s_axil_rready;
            const uint32_t data = top_->s_axil_rdata, rresp = top_->s_axil_rresp;
            step_edge();
            if (ar) { top_->s_axil_arvalid = 0; pending &= ~P_AR; }
            if (rd && !(pending & P_AR)) { pending &= ~P_R; r.value = data; r.resp = rresp; }
            if (first) { top_->s_axil_arvalid = 1; first = false; }
            step_settle();
            if (pending && over(r)) break;
        }
        if (pending) { top_->s_axil_arvalid = 0; top_->eval(); }
        finish(r, pending);
    }

    // Send n_in words (TLAST on the last) while receiving into out[0..cap) until TLAST; with
    // cap == 0 and no output expected (expect_out false), until the input is accepted. With a
    // watch_mask, an AXI4-Lite read of watch_addr runs beside the streams every WATCH_CYCLES
    // cycles, and bits of watch_mask set in it end the transfer (ENGINE_ERROR, value = the read).
    void transfer(const uint64_t* in, uint64_t n_in, uint64_t* out, uint64_t cap, bool expect_out,
                  uint64_t max_cycles, double timeout_s, uint32_t watch_addr, uint32_t watch_mask,
                  Result& r) {
        begin(max_cycles, timeout_s);
        src_ = in;
        src_n_ = n_in;
        src_next_ = 0;
        src_accepted_ = 0;
        sink_ = out;
        sink_cap_ = cap;
        sink_got_ = 0;
        sink_last_ = false;
        sink_on_ = expect_out;
        silent_ = 0;
        stalled_ = 0;
        uint32_t pending = 0;
        int watch = 0;  // 0: no read running, 1: address phase, 2: data phase
        uint64_t next_watch = cycles_ + WATCH_CYCLES;
        bool engine_error = false;
        for (;;) {
            pending = (src_accepted_ < src_n_ ? P_SRC : 0) | (expect_out && !sink_last_ ? P_TLAST : 0);
            if (!pending) break;
            if (sink_last_ && src_accepted_ < src_n_) { r.status = EARLY_TLAST; break; }
            if (!watch_mask) {
                step();
            } else {
                const bool ar = top_->s_axil_arvalid && top_->s_axil_arready;
                const bool rd = top_->s_axil_rvalid && top_->s_axil_rready;
                const uint32_t data = top_->s_axil_rdata;
                step_edge();
                if (watch == 1 && ar) { top_->s_axil_arvalid = 0; watch = 2; }
                if (watch == 2 && rd) {  // the data may come with the address handshake (as read() allows)
                    watch = 0;
                    next_watch = cycles_ + WATCH_CYCLES;
                    if (data & watch_mask) { r.value = data; engine_error = true; }
                }
                if (watch == 0 && !engine_error && cycles_ >= next_watch) {
                    top_->s_axil_araddr = watch_addr;
                    top_->s_axil_arvalid = 1;
                    watch = 1;
                }
                step_settle();
                if (engine_error) { r.status = ENGINE_ERROR; break; }
            }
            if (over(r)) {
                pending = (src_accepted_ < src_n_ ? P_SRC : 0) | (expect_out && !sink_last_ ? P_TLAST : 0);
                if (!pending) r.status = OK;  // it completed on the last allowed cycle
                break;
            }
        }
        r.accepted = src_accepted_;
        r.received = sink_got_;
        r.s_stalled = stalled_;
        r.m_silent = silent_;
        src_abort();
        sink_on_ = false;
        sink_ = nullptr;
        for (int i = 0; watch && i < 64; ++i) {  // complete a watch read still open: the next access starts clean
            const bool ar = top_->s_axil_arvalid && top_->s_axil_arready;
            const bool rd = top_->s_axil_rvalid && top_->s_axil_rready;
            step_edge();
            if (watch == 1 && ar) { top_->s_axil_arvalid = 0; watch = 2; }
            if (watch == 2 && rd) watch = 0;
            step_settle();
        }
        if (watch) { top_->s_axil_arvalid = 0; top_->eval(); }
        finish(r, r.status == OK ? 0 : pending);
    }

    void run(uint64_t n, Result& r) {
        begin(n, 1e30);
        for (uint64_t i = 0; i < n; ++i) step();
        finish(r, 0);
    }

    int irq() const { return top_->interrupt; }

    void fail(const std::string& msg) { dead_msg_ = msg.empty() ? "the model stopped" : msg; }

private:
    // -- one clock cycle ---------------------------------------------------------------------
    void step() {
        step_edge();
        step_settle();
    }

    // Sample the streams, rising edge, then the stream drives for the next cycle.
    void step_edge() {
        const bool s_fire = top_->s_axis_tvalid && top_->s_axis_tready;
        const bool s_stall = top_->s_axis_tvalid && !top_->s_axis_tready;
        const bool m_fire = top_->m_axis_tvalid && top_->m_axis_tready;
        const uint64_t m_data = top_->m_axis_tdata;
        const bool m_last = top_->m_axis_tlast;
        top_->aclk = 1;
        top_->eval();
        ++cycles_;
        if (ctx_.gotFinish()) throw ModelFatal("the model called $finish");
        if (m_fire) {
            silent_ = 0;
            if (sink_on_ && !sink_last_) {
                if (sink_got_ < sink_cap_) sink_[sink_got_] = m_data;
                ++sink_got_;
                sink_last_ = m_last;
            } else {
                ++stray_;
            }
        } else {
            ++silent_;
        }
        stalled_ = s_stall ? stalled_ + 1 : 0;
        if (s_fire) ++src_accepted_;
        if (!top_->s_axis_tvalid || s_fire) {  // the source may present the next beat
            if (src_next_ < src_n_ && !(idle_ > 0 && coin(idle_))) {
                top_->s_axis_tdata = src_[src_next_] & mask_of(FASTSIM_TDATA_BITS);
                top_->s_axis_tlast = src_next_ + 1 == src_n_;
                top_->s_axis_tvalid = 1;
                ++src_next_;
            } else {
                top_->s_axis_tvalid = 0;
                top_->s_axis_tlast = 0;
            }
        }
        top_->m_axis_tready = !hold_ready_ && !(bp_ > 0 && coin(bp_));
        top_->s_axil_bready = !hold_ready_;
        top_->s_axil_rready = !hold_ready_;
    }

    void step_settle() {
        top_->aclk = 0;
        top_->eval();
    }

    void src_abort() {
        src_ = nullptr;
        src_n_ = src_next_ = src_accepted_ = 0;
        top_->s_axis_tvalid = 0;
        top_->s_axis_tlast = 0;
        top_->eval();
    }

    // -- budgets -----------------------------------------------------------------------------
    void begin(uint64_t max_cycles, double timeout_s) {
        start_ = cycles_;
        stray_ = 0;
        limit_ = max_cycles;
        t0_ = std::chrono::steady_clock::now();
        deadline_ = t0_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(timeout_s < 1e9 ? timeout_s : 1e9));
    }

    bool over(Result& r) {
        const uint64_t spent = cycles_ - start_;
        if (spent >= limit_) { r.status = CYCLE_LIMIT; return true; }
        if ((spent & 4095) == 0 && std::chrono::steady_clock::now() > deadline_) {
            r.status = WALL_LIMIT;
            return true;
        }
        return false;
    }

    void finish(Result& r, uint32_t pending) {
        r.cycles = cycles_ - start_;
        r.stray = stray_;
        r.pending = pending;
        r.irq = top_->interrupt;
        if (!pending && r.status != EARLY_TLAST) r.status = OK;
    }

    bool coin(double p) {  // splitmix64 -> [0, 1) < p
        uint64_t z = (rng_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0) < p;
    }

    VerilatedContext ctx_;
    Vtop* top_ = nullptr;
    uint64_t cycles_ = 0;
    // budgets of the running call
    uint64_t start_ = 0, limit_ = 0;
    std::chrono::steady_clock::time_point t0_, deadline_;
    // input stream
    const uint64_t* src_ = nullptr;
    uint64_t src_n_ = 0, src_next_ = 0, src_accepted_ = 0;
    // output stream
    uint64_t* sink_ = nullptr;
    uint64_t sink_cap_ = 0, sink_got_ = 0;
    bool sink_last_ = false, sink_on_ = false;
    uint64_t stray_ = 0, silent_ = 0, stalled_ = 0;
    bool hold_ready_ = true;
    // noise
    double idle_ = 0.0, bp_ = 0.0;
    uint64_t rng_ = 0;
    std::string dead_msg_;
};

// Run one call, turning a model stop into a FATAL result (and the model dead from then on).
template <class F>
int32_t guarded(Sim* s, Result* r, F&& body) {
    std::memset(r, 0, sizeof(*r));
    if (s->dead()) {
        r->status = DEAD;
        std::snprintf(r->message, sizeof(r->message), "%s", s->dead_msg().c_str());
        return r->status;
    }
    try {
        body();
    } catch (const std::exception& e) {
        s->fail(e.what());
        r->status = FATAL;
        std::snprintf(r->message, sizeof(r->message), "%s", e.what());
    }
    r->irq = s->irq();
    r->now = s->cycles();
    return r->status;
}

}  // namespace

void vl_fatal(const char* filename, int linenum, const char* hier, const char* msg) {
    (void)hier;
    char buf[240];
    std::snprintf(buf, sizeof(buf), "%s:%d: %s", filename ? filename : "?", linenum, msg ? msg : "");
    throw ModelFatal(buf);
}

// -- the C API (ctypes) ------------------------------------------------------------------------

API int32_t fastsim_abi() { return 3; }

API const char* fastsim_ports() { return FASTSIM_PORTS; }

API void* fastsim_open(int32_t seed, Result* r) {
    std::memset(r, 0, sizeof(*r));
    try {
        return new Sim(seed);
    } catch (const std::exception& e) {
        r->status = FATAL;
        std::snprintf(r->message, sizeof(r->message), "%s", e.what());
        return nullptr;
    }
}

API void fastsim_close(void* h) {
    try {
        delete static_cast<Sim*>(h);
    } catch (...) {
    }
}

API int32_t fastsim_reset(void* h, int32_t low_cycles, Result* r) {
    Sim* s = static_cast<Sim*>(h);
    return guarded(s, r, [&] {
        const uint64_t c0 = s->cycles();
        s->reset(low_cycles);
        r->cycles = s->cycles() - c0;
    });
}

API int32_t fastsim_write(void* h, uint32_t offset, uint32_t value, uint64_t max_cycles, double timeout_s,
                          Result* r) {
    Sim* s = static_cast<Sim*>(h);
    return guarded(s, r, [&] {
        if (offset > mask_of(FASTSIM_AXIL_ADDR_BITS) || value > mask_of(FASTSIM_AXIL_DATA_BITS)) {
            r->status = BAD_ARG;
            return;
        }
        s->write(offset, value, max_cycles, timeout_s, *r);
    });
}

API int32_t fastsim_read(void* h, uint32_t offset, uint64_t max_cycles, double timeout_s, Result* r) {
    Sim* s = static_cast<Sim*>(h);
    return guarded(s, r, [&] {
        if (offset > mask_of(FASTSIM_AXIL_ADDR_BITS)) {
            r->status = BAD_ARG;
            return;
        }
        s->read(offset, max_cycles, timeout_s, *r);
    });
}

API int32_t fastsim_transfer(void* h, const uint64_t* in, uint64_t n_in, uint64_t* out, uint64_t cap,
                             int32_t expect_out, uint64_t max_cycles, double timeout_s, uint32_t watch_addr,
                             uint32_t watch_mask, Result* r) {
    Sim* s = static_cast<Sim*>(h);
    return guarded(s, r, [&] {
        s->transfer(in, n_in, out, cap, expect_out != 0, max_cycles, timeout_s, watch_addr, watch_mask, *r);
    });
}

API int32_t fastsim_run(void* h, uint64_t cycles, Result* r) {
    Sim* s = static_cast<Sim*>(h);
    return guarded(s, r, [&] { s->run(cycles, *r); });
}

API void fastsim_noise(void* h, double idle, double backpressure, uint64_t seed) {
    static_cast<Sim*>(h)->set_noise(idle, backpressure, seed);
}

API uint64_t fastsim_cycles(void* h) { return static_cast<Sim*>(h)->cycles(); }
