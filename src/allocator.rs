//! The process allocator of the `trajectory` binary and of the examples that
//! time what it does (`query/examples/query_timing.rs` includes this file),
//! so a timing taken outside the binary runs under the same allocator with
//! the same settings.

/// mimalloc instead of glibc malloc: the ingest's reader threads allocate
/// and free many short strings, which glibc's per-thread arenas turn into
/// fragmentation (peak RSS well above the live heap).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `enum mi_option_e`
/// (`c_src/mimalloc/v3/include/mimalloc.h` of libmimalloc-sys 0.1.49, which
/// `mimalloc` builds by default). libmimalloc-sys names its options by v2's
/// numbering only, hence the constant; a unit test checks it against the
/// option's default (1000 ms).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// How long freed memory stays with the process before mimalloc returns it
/// to the OS, in milliseconds. mimalloc's default (1 s) returns the buffers
/// an ingest frees between chunks and faults them back in for the next one:
/// 100 MB of input took 32,500 page faults at the default and 18,900 at 3 s
/// or more (docs/benchmarks.md). 10 s keeps a run's working set while it
/// runs and still gives memory back to a `--follow` that goes idle.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

extern "C" {
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Sets [`PURGE_DELAY_MS`] unless the user chose one with mimalloc's own
/// `MIMALLOC_PURGE_DELAY`.
pub fn set_purge_delay() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores the value of a valid option
        // index (checked by `purge_delay_option_is_mimallocs`); mimalloc
        // reads it at the next purge.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option index is mimalloc v3's `mi_option_purge_delay`: before
    /// anything sets it, it reads that option's default, and after
    /// [`set_purge_delay`] it reads our delay. (Tests never run
    /// `main`, so nothing has set it before.)
    #[test]
    fn purge_delay_option_is_mimallocs() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads one option of the linked mimalloc.
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 1000);
        set_purge_delay();
        // SAFETY: as above.
        assert_eq!(
            unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) },
            PURGE_DELAY_MS
        );
    }
}
