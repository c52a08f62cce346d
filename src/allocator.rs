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
/// runs and still gives memory back to a `--follow` that goes idle. Every
/// command but the jobs after ingest uses it (see [`JOB_PURGE_DELAY_MS`]).
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// `mi_option_destroy_on_exit` in the same enum. mimalloc's exit handler
/// (`_mi_auto_process_done`, `c_src/mimalloc/v3/src/init.c`) returns at
/// once when this option is above 1.
const MI_OPTION_DESTROY_ON_EXIT: std::ffi::c_int = 22;

extern "C" {
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Sets mimalloc `option` (one of the `MI_OPTION_*` indices above) to
/// `value`, unless the user chose it through its variable `env`.
fn set_option_unless_chosen(env: &str, option: std::ffi::c_int, value: std::ffi::c_long) {
    if std::env::var_os(env).is_none() {
        // SAFETY: mi_option_set only stores the value of a valid option
        // index (each checked by a unit test against its default); mimalloc
        // reads it when it next needs it.
        unsafe { mi_option_set(option, value) };
    }
}

/// How long the jobs after ingest (derive, dedupe, export, build, report) keep
/// freed memory, in milliseconds. They free whole phases (a sort's runs, a
/// shard's arrays): at mimalloc's 1 s a 10x export of `kto` peaked at
/// 598 MB, at 250 ms at 506 MB, 7 % slower; derive and dedupe 3-4 %
/// slower for 6-11 % less peak (docs/benchmarks.md, session 28).
// The query_timing example includes this file and sets the ingest's delay only.
#[allow(dead_code)]
const JOB_PURGE_DELAY_MS: std::ffi::c_long = 250;

/// Sets [`PURGE_DELAY_MS`] unless the user chose one with mimalloc's own
/// `MIMALLOC_PURGE_DELAY`.
pub fn set_purge_delay() {
    set_option_unless_chosen(
        "MIMALLOC_PURGE_DELAY",
        MI_OPTION_PURGE_DELAY,
        PURGE_DELAY_MS,
    );
}

/// Sets [`JOB_PURGE_DELAY_MS`] unless the user chose one with
/// `MIMALLOC_PURGE_DELAY`.
#[allow(dead_code)]
pub fn set_job_purge_delay() {
    set_option_unless_chosen(
        "MIMALLOC_PURGE_DELAY",
        MI_OPTION_PURGE_DELAY,
        JOB_PURGE_DELAY_MS,
    );
}

/// Skips mimalloc's clean-up at process exit (its `destroy_on_exit` option
/// set to 2), unless the user set `MIMALLOC_DESTROY_ON_EXIT`.
///
/// At exit mimalloc collects every heap and returns every arena to the OS
/// (an `madvise` per range), which only matters to a library unloaded from a
/// running process; the kernel frees a process's memory anyway. After a
/// 100 MB ingest that clean-up was a quarter of the samples of the run's last
/// 3 % of wall time, on one core (docs/benchmarks.md, session 21).
/// The handler also prints `MIMALLOC_SHOW_STATS`: set
/// `MIMALLOC_DESTROY_ON_EXIT=0` with it to see the statistics.
pub fn skip_cleanup_at_exit() {
    set_option_unless_chosen("MIMALLOC_DESTROY_ON_EXIT", MI_OPTION_DESTROY_ON_EXIT, 2);
}

/// `PR_SET_THP_DISABLE` and `PR_GET_THP_DISABLE` of `<linux/prctl.h>`.
#[cfg(target_os = "linux")]
const PR_SET_THP_DISABLE: std::ffi::c_int = 41;
#[cfg(all(target_os = "linux", test))]
const PR_GET_THP_DISABLE: std::ffi::c_int = 42;

#[cfg(target_os = "linux")]
extern "C" {
    fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
}

/// `prctl(option, value, 0, 0, 0)` for the THP flag of this process.
#[cfg(target_os = "linux")]
fn thp_prctl(option: std::ffi::c_int, value: std::ffi::c_ulong) -> std::ffi::c_int {
    // SAFETY: PR_SET_THP_DISABLE and PR_GET_THP_DISABLE only set or read a
    // flag of this process; the unused arguments must be zero.
    unsafe {
        prctl(
            option,
            value,
            0 as std::ffi::c_ulong,
            0 as std::ffi::c_ulong,
            0 as std::ffi::c_ulong,
        )
    }
}

/// Turns transparent huge pages off for this process (Linux), unless the
/// user chose with mimalloc's own `MIMALLOC_ALLOW_THP`.
///
/// mimalloc asks for huge pages on its arena, and a huge page is zeroed
/// whole by the kernel on first touch however little of it is used. On the
/// benchmark VM (docs/benchmarks.md, session 20) the 100 MB ingest, 6
/// interleaved rounds, went from a median of 4.04 to 3.77 s of CPU (system
/// 1.13 -> 0.79 s; user about 5 % higher, the TLB's share), wall 2.24 -> 2.12 s,
/// peak RSS 349–366 -> 271–300 MB; a 2.3 MB ingest from 169 to 117 MB.
/// mimalloc reads its option before `main`, hence the process-wide switch
/// (it takes precedence over mimalloc's `MADV_HUGEPAGE`). Failure is ignored:
/// the process then runs with the system's setting.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        thp_prctl(PR_SET_THP_DISABLE, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `option` is the mimalloc option the user's variable `env` sets:
    /// before anything sets it, it reads that option's `default`, and after
    /// `set` it reads `ours`. (Tests never run `main`, so nothing has set
    /// it before.) Skipped when the user set `env`.
    fn check_option(
        env: &str,
        option: std::ffi::c_int,
        default: std::ffi::c_long,
        set: fn(),
        ours: std::ffi::c_long,
    ) {
        if std::env::var_os(env).is_some() {
            return;
        }
        // SAFETY: reads one option of the linked mimalloc.
        assert_eq!(unsafe { mi_option_get(option) }, default, "{env} default");
        set();
        // SAFETY: as above.
        assert_eq!(
            unsafe { mi_option_get(option) },
            ours,
            "{env} after setting"
        );
    }

    /// The index is mimalloc v3's `mi_option_purge_delay` (default 1000 ms).
    #[test]
    fn purge_delay_option_is_mimallocs() {
        check_option(
            "MIMALLOC_PURGE_DELAY",
            MI_OPTION_PURGE_DELAY,
            1000,
            set_purge_delay,
            PURGE_DELAY_MS,
        );
    }

    /// The index is mimalloc v3's `mi_option_destroy_on_exit` (default 0).
    #[test]
    fn exit_option_is_mimallocs() {
        check_option(
            "MIMALLOC_DESTROY_ON_EXIT",
            MI_OPTION_DESTROY_ON_EXIT,
            0,
            skip_cleanup_at_exit,
            2,
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn transparent_huge_pages_are_off_for_the_process() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        disable_transparent_huge_pages();
        assert_eq!(thp_prctl(PR_GET_THP_DISABLE, 0), 1);
    }
}
