//! The C allocator's settings for a long-running host.
//!
//! glibc raises its mmap threshold each time a block above it is freed, up to 32 MiB, so after
//! the first argon2id hash (19 MiB, `lessor_auth::password`) every later one is carved from a
//! thread's arena instead of mapped. Freed, those blocks stay resident: 15 concurrent logins took
//! an idle host from 31 to 246 MiB RSS (2026-12-05; malloc_stats showed 5.6 MB in use of 287 MB
//! held). A fixed threshold turns the dynamic adjustment off: blocks of 4 MiB and more are mapped
//! and unmapped on free, and RSS stays at 32 MiB after the same logins.

/// Blocks at least this large are mapped, and returned to the OS when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 4 << 20;

/// Call once at start-up, before the work that allocates large transient blocks.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters, under its own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
