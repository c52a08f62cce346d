//! Arbitrary bytes as the cache trace (`logs/cache-trace.jsonl`):
//! exactly one event per non-blank line, ids unique within the file (repeated
//! lines are numbered by occurrence), no `unknown` events, plus the shared
//! checks of `common::check_jsonl`. The sniffer never panics.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use trajectory_ingest::openclaw::cache_trace::{looks_like_cache_trace, read_cache_trace, SOURCE};

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_cache_trace(common::first_line(data));
    common::fuzz_jsonl(
        data,
        "fuzz",
        &common::Expect {
            source: SOURCE,
            one_event_per_line: true,
            unique_ids: true,
            unknown_counted: true,
        },
        |data, context| read_cache_trace(data, context),
    );
});
