//! The one wasmtime `Engine`: compilation settings, the pooling allocator, the epoch clock.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use super::limits::Limits;

/// How the plugin runtime is set up. Changing anything here that affects code generation (fuel,
/// stack size) changes the engine's compatibility hash and so the precompiled-cache key.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub limits: Limits,
    /// Where precompiled components (`.cwasm`) are kept; `None` compiles on every load. Must be
    /// as trusted as the host binary: its files are loaded as native code.
    pub cache_dir: Option<PathBuf>,
    /// Calls that may run at once across all plugins (pooling allocator slots).
    pub max_concurrent_calls: u32,
    /// Native stack a call's wasm may use; deeper recursion traps as a stack overflow.
    pub max_wasm_stack: usize,
    /// Granularity of the wall-clock deadline.
    pub epoch_tick: Duration,
    /// Use Linux's PAGEMAP_SCAN (6.7+) to reset only the pages a call dirtied.
    pub pagemap_scan: bool,
    /// Bytes of a pooled memory slot kept mapped between calls; `None`: 4 MiB with
    /// PAGEMAP_SCAN, else 64 KiB (which is then memset on every reuse).
    pub memory_keep_resident: Option<usize>,
    /// Bytes of a pooled table slot kept mapped between calls (see `build_engine`).
    pub table_keep_resident: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            cache_dir: None,
            max_concurrent_calls: 64,
            max_wasm_stack: 512 << 10,
            epoch_tick: Duration::from_millis(5),
            pagemap_scan: true,
            memory_keep_resident: None,
            table_keep_resident: TABLE_KEEP_RESIDENT,
        }
    }
}

/// Memory a pooled slot keeps mapped between calls (see `build_engine`): with PAGEMAP_SCAN only
/// dirty pages in it are restored; without, all of it is memset, so it stays small.
const KEEP_RESIDENT_WITH_PAGEMAP: usize = 4 << 20;
const KEEP_RESIDENT: usize = 64 << 10;
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

pub(crate) fn build_engine(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.cranelift_opt_level(OptLevel::Speed);
    c.parallel_compilation(true);
    c.consume_fuel(config.limits.fuel.is_some());
    c.epoch_interruption(true);
    c.max_wasm_stack(config.max_wasm_stack);
    // Backtraces cost time on every trap and say little about a third-party component.
    c.wasm_backtrace_max_frames(None);

    let slots = config.max_concurrent_calls.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots * 8)
        .max_core_instances_per_component(16)
        .total_memories(slots * 2)
        .max_memories_per_component(2)
        .total_tables(slots * 8)
        .max_tables_per_component(8)
        .max_memory_size(config.limits.memory_bytes)
        // Reset a slot in place rather than handing its pages back to the kernel: with
        // PAGEMAP_SCAN (Linux 6.7+) only the pages a call dirtied are restored, so the next call
        // in that slot takes no page faults. Without it, the first `keep_resident` bytes are
        // memset and the rest is madvised away.
        .pagemap_scan(if config.pagemap_scan { Enabled::Auto } else { Enabled::No })
        .linear_memory_keep_resident(config.memory_keep_resident.unwrap_or(
            if config.pagemap_scan && PoolingAllocationConfig::is_pagemap_scan_available() {
                KEEP_RESIDENT_WITH_PAGEMAP
            } else {
                KEEP_RESIDENT
            },
        ))
        .table_keep_resident(config.table_keep_resident);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&c)
}

/// Advances the engine's epoch every `tick`, which is what store deadlines count. Stops when
/// dropped or when the engine is gone.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine, tick: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        thread::Builder::new().name("plugin-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        Ok(Self { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Epoch ticks covering `timeout` (rounded up, plus one for the tick already under way).
pub(crate) fn deadline_ticks(timeout: Duration, tick: Duration) -> u64 {
    let tick = tick.as_nanos().max(1);
    (timeout.as_nanos().div_ceil(tick) as u64).saturating_add(1)
}
