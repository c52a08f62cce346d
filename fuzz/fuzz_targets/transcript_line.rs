//! Arbitrary bytes as a pi / OpenClaw transcript (`<sessionId>.jsonl`): the
//! reader never panics and accounts for every line (see `common::check_jsonl`:
//! stats match the events and the input, every non-blank line has events in
//! order, unreadable lines are quarantined alone, ids are 32 hex chars and
//! deterministic, `raw` is stored once per line, unknown entries are counted).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use trajectory_ingest::openclaw::transcript::{is_session_header, read_transcript, SOURCE};

fuzz_target!(|data: &[u8]| {
    let _ = is_session_header(common::first_line(data));
    common::fuzz_jsonl(
        data,
        "fuzz",
        &common::Expect {
            source: SOURCE,
            one_event_per_line: false,
            unique_ids: false,
            unknown_counted: true,
        },
        |data, context| read_transcript(data, context),
    );
});
