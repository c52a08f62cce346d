//! Per-file work of discovery and read ordering (an open and a short read
//! per source, thousands of them in a large history) spread over threads.

/// Fewest threads the per-file work is spread over, whatever the core count.
/// The work is an open and a short read per file: with the files in the page
/// cache it is CPU work (one thread per core would do), but in a cold run (a
/// nightly ingest of files nothing has read since they were written) each
/// read waits on the disk, and only more threads keep more reads in flight.
/// 100 MB benchmark corpus after `drop_caches`, 2 cores: see
/// docs/architecture.md ("Discovery and read order on cold files"). With the
/// files cached the extra threads cost their start, tens of microseconds each.
const MIN_THREADS: usize = 8;

/// `work` of every item, in the order given, computed on one thread per core
/// but at least [`MIN_THREADS`] (in contiguous parts) when there are at
/// least `min_items` items, else on the calling thread.
///
/// `work` must not panic on data; if a thread panics anyway (a bug), each
/// item of its part gets `on_panic()`, so no item is lost from the result.
pub(crate) fn map_on_cores<T, R>(
    items: &[T],
    min_items: usize,
    work: impl Fn(&T) -> R + Sync,
    on_panic: impl Fn() -> R,
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(MIN_THREADS);
    if items.len() < min_items.max(2) {
        return items.iter().map(work).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(per_thread)
            .map(|part| {
                (
                    part.len(),
                    scope.spawn(move || part.iter().map(work).collect::<Vec<_>>()),
                )
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|(len, part)| {
                part.join()
                    .unwrap_or_else(|_| (0..len).map(|_| on_panic()).collect())
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_on_any_number_of_threads() {
        let items: Vec<u32> = (0..1000).collect();
        let squares = map_on_cores(&items, 64, |i| i * i, || 0);
        assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
        // Below the threshold the caller's thread does the work.
        let caller = std::thread::current().id();
        let ids = map_on_cores(&items[..3], 64, |_| std::thread::current().id(), || caller);
        assert!(ids.iter().all(|id| *id == caller));
    }

    #[test]
    fn a_panicking_part_yields_the_fallback_for_each_of_its_items() {
        let items: Vec<u32> = (0..200).collect();
        let out = map_on_cores(
            &items,
            64,
            |i| if *i == 150 { panic!("bug") } else { Some(*i) },
            || None,
        );
        assert_eq!(out.len(), 200);
        assert_eq!(out[0], Some(0));
        assert_eq!(out[150], None);
        assert_eq!(out[149], Some(149), "another thread's part");
    }
}
