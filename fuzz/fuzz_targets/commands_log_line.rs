//! Arbitrary bytes as the command log (`logs/commands.log`):
//! exactly one event per non-blank line, ids unique within the file (repeated
//! lines are numbered by occurrence), no `unknown` events, plus the shared
//! checks of `common::check_jsonl`. The sniffer never panics.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use trajectory_ingest::openclaw::commands_log::{
    looks_like_commands_log, read_commands_log, SOURCE,
};

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_commands_log(common::first_line(data));
    common::fuzz_jsonl(
        data,
        "fuzz",
        &common::Expect {
            source: SOURCE,
            one_event_per_line: true,
            unique_ids: true,
            unknown_counted: true,
        },
        |data, context| read_commands_log(data, context),
    );
});
