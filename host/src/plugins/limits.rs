//! What one plugin call may use, and the store-level enforcement of the memory cap.

use std::time::Duration;

/// Per-call limits. Defaults suit a payment provider: a few HTTP round trips, small messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory a call may grow to, in bytes.
    pub memory_bytes: usize,
    /// CPU budget in wasm fuel units (about one per instruction); `None` relies on `timeout` alone.
    pub fuel: Option<u64>,
    /// Wall-clock budget of a whole call, host HTTP included.
    pub timeout: Duration,
    /// Cap on one host HTTP request (the response may use what is left of `timeout`).
    pub http_timeout: Duration,
    /// Cap on a call's input (request) as measured by `WireSize`.
    pub max_input_bytes: usize,
    /// Cap on a call's output (outcome or error).
    pub max_output_bytes: usize,
    pub max_http_request_bytes: usize,
    pub max_http_response_bytes: usize,
    pub max_http_requests_per_call: u32,
    /// Lines one call may write to the host log: its own, the host's warnings about its requests,
    /// the notice that the budget is spent and the host's line about how the call ended.
    pub max_log_lines_per_call: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            fuel: Some(2_000_000_000),
            timeout: Duration::from_secs(20),
            http_timeout: Duration::from_secs(15),
            max_input_bytes: 1 << 20,
            max_output_bytes: 64 << 10,
            max_http_request_bytes: 1 << 20,
            max_http_response_bytes: 4 << 20,
            max_http_requests_per_call: 16,
            max_log_lines_per_call: 100,
        }
    }
}

impl Limits {
    /// The most one copy out of the guest may take in host memory: a host call's arguments (a
    /// log line, an HTTP request) or a result. wasmtime counts it while lifting, before it
    /// allocates (its "hostcall fuel", 128 MiB unless set), and stops the call past it. Four times
    /// the larger of the HTTP request and output caps: a lifted list element costs up to 48 host
    /// bytes where those caps count 8 to 16. Results are held to the output cap itself, also
    /// before the copy (`output.rs`).
    pub fn max_copy_bytes(&self) -> usize {
        self.max_http_request_bytes.max(self.max_output_bytes).saturating_mul(4)
    }
}

/// The memory cap was hit: `memory.grow` past it traps with this error instead of returning -1,
/// so a memory bomb ends the call at once rather than in an allocator's abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("linear memory would grow to {desired} bytes, over the {limit}-byte cap")]
pub struct MemoryLimitExceeded {
    pub desired: usize,
    pub limit: usize,
}

/// The `ResourceLimiter` of one call's store.
pub(crate) struct CallLimiter {
    memory_bytes: usize,
}

impl CallLimiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self { memory_bytes: limits.memory_bytes }
    }
}

// A component instance holds a handful of core instances, tables and memories; these caps stop a
// component from multiplying them.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 4;
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(MemoryLimitExceeded { desired, limit: self.memory_bytes }.into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}
