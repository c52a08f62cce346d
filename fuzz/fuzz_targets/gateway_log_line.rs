//! Arbitrary bytes as a gateway tslog file (`openclaw-YYYY-MM-DD.log`):
//! exactly one event per non-blank line, ids unique within the file (repeated
//! lines are numbered by occurrence), plus the shared checks of
//! `common::check_jsonl`. A first line that `looks_like_gateway_log` accepts
//! is never quarantined (the sniffer and the parser agree on `_meta`).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use trajectory_ingest::openclaw::gateway_log::{looks_like_gateway_log, read_gateway_log, SOURCE};
use trajectory_schema::EventKind;

fuzz_target!(|data: &[u8]| {
    let first = common::first_line(data);
    let sniffed = looks_like_gateway_log(first);
    let events = common::fuzz_jsonl(
        data,
        "fuzz",
        &common::Expect {
            source: SOURCE,
            one_event_per_line: true,
            unique_ids: true,
            unknown_counted: true,
        },
        |data, context| read_gateway_log(data, context),
    );
    if sniffed && first.len() <= common::MAX_LINE_BYTES {
        assert_ne!(
            events[0].kind,
            EventKind::Quarantined,
            "looks_like_gateway_log accepted a line the reader quarantines: {:?}",
            events[0].error
        );
    }
});
