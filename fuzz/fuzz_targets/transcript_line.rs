//! Arbitrary bytes as a transcript: the reader never panics, and accounts for
//! every line (events + blank lines >= lines).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trajectory_ingest::jsonl::SourceContext;
use trajectory_ingest::openclaw::transcript::read_transcript;

fuzz_target!(|data: &[u8]| {
    let context = SourceContext {
        source_uri: "file:///fuzz.jsonl".into(),
        agent_id: Some("fuzz".into()),
        session_id_hint: Some("fuzz".into()),
        ingest_id: "fuzz".into(),
        ingested_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
        max_line_bytes: 1 << 16,
    };
    if let Ok((events, stats)) = read_transcript(data, &context) {
        assert_eq!(stats.events as usize, events.len());
        assert!(stats.quarantined <= stats.lines);
    }
});
