//! Arbitrary bytes as an `openclaw-trajectory` event file, read both as a
//! runtime sidecar (`<sessionId>.trajectory.jsonl`) and as an export bundle's
//! `events.jsonl`: exactly one event per non-blank line, `unknown` events
//! counted in `stats.unknown_entries`, every good event has `attributes` that
//! is a JSON object, plus the shared checks of `common::check_jsonl`. Ids are
//! not unique on purpose (a byte-identical line is the same event).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use trajectory_ingest::jsonl::read_jsonl;
use trajectory_ingest::openclaw::trajectory_events::{
    looks_like_trajectory_events, read_trajectory_events, TrajectoryParser, EXPORT_SOURCE, SOURCE,
};
use trajectory_schema::{Event, EventKind};

fn check_attributes(events: &[Event]) {
    for event in events.iter().filter(|e| e.kind != EventKind::Quarantined) {
        let attributes = event.attributes.as_deref().unwrap_or("");
        assert!(
            matches!(
                serde_json::from_str::<Value>(attributes),
                Ok(Value::Object(_))
            ),
            "attributes is not a JSON object: {attributes:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_trajectory_events(common::first_line(data));
    let expect = |source| common::Expect {
        source,
        one_event_per_line: true,
        unique_ids: false,
        unknown_counted: true,
    };
    let runtime = common::fuzz_jsonl(data, "fuzz.trajectory", &expect(SOURCE), |data, context| {
        read_trajectory_events(data, context)
    });
    check_attributes(&runtime);
    let export = common::fuzz_jsonl(data, "events", &expect(EXPORT_SOURCE), |data, context| {
        read_jsonl(data, context, &mut TrajectoryParser::export(context))
    });
    check_attributes(&export);
    assert_eq!(
        runtime.len(),
        export.len(),
        "sidecar and export read different line counts"
    );
});
