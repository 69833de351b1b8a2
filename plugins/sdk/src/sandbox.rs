//! Keeps std's unused WASI plumbing out of every plugin.
//!
//! A `wasm32-wasip2` cdylib that links std imports about twenty WASI functions even when the
//! plugin never touches the environment or stdio: std's panic and allocation-failure paths call
//! libc's `getenv` (`RUST_BACKTRACE`) and `write` (to stderr), and those pull in wasi-libc's
//! environment start-up (`wasi:cli/environment`, `wasi:cli/exit`) and its descriptor table
//! (`wasi:cli/std{in,out,err}`, `wasi:cli/terminal-*`, `wasi:io/{streams,poll,error}`).
//! Every import is linked and lowered again on each call's fresh instance, so they are not free.
//!
//! The sandbox gives a plugin no environment and discards stdout and stderr, so these two
//! definitions behave exactly as the host would: `getenv` finds nothing, and writes to stdout
//! or stderr are accepted and dropped. Being defined here, they take the place of wasi-libc's,
//! and a plugin that uses nothing else from WASI imports nothing from it. (A plugin that does use
//! WASI directly, e.g. `std::env::vars` or `std::fs`, still gets wasi-libc's code for that, and
//! the host still refuses it in content.)

use core::ffi::c_char;

/// `EBADF` in WASI's errno numbering.
const EBADF: i32 = 8;

unsafe extern "C" {
    /// wasi-libc's `errno`.
    fn __errno_location() -> *mut i32;
}

/// libc's `getenv`: the sandbox has no environment variables.
#[unsafe(no_mangle)]
pub extern "C" fn getenv(_name: *const c_char) -> *mut c_char {
    core::ptr::null_mut()
}

/// libc's `write`: stdout and stderr are discarded by the host, so accept and drop what is
/// written to them. There is no other descriptor to write to (no files, no sockets).
#[unsafe(no_mangle)]
pub extern "C" fn write(fd: i32, _buf: *const u8, count: usize) -> isize {
    if fd == 1 || fd == 2 {
        return count.min(isize::MAX as usize) as isize;
    }
    // SAFETY: wasi-libc's `__errno_location` returns a valid pointer to this thread's errno.
    unsafe { *__errno_location() = EBADF };
    -1
}
