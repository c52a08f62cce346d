//! Checks shared by the reader fuzz targets (not a target itself: each target
//! includes it with `mod common;`).
//!
//! Every check is an invariant the readers document, so a failing `assert!`
//! here is a bug in the reader (or in its documentation), never in the input.
#![allow(dead_code)]

use std::collections::HashSet;

use serde_json::Value;
use trajectory_ingest::jsonl::{sha256_hex, ReadStats, SourceContext};
use trajectory_schema::{Event, EventKind};

/// Line cap of the fuzz context. Seeds are a few KB at most, so inputs
/// above it are rare but reachable (the cap path is exercised too).
pub const MAX_LINE_BYTES: usize = 1 << 16;

/// The context every target reads with. `session_id_hint` is the file stem.
pub fn context(session_id_hint: &str) -> SourceContext {
    SourceContext {
        source_uri: "file:///fuzz/input.jsonl".into(),
        agent_id: Some("fuzz".into()),
        session_id_hint: Some(session_id_hint.into()),
        ingest_id: "fuzz".into(),
        ingested_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
        max_line_bytes: MAX_LINE_BYTES,
    }
}

/// What a JSONL reader promises beyond the shared rules.
pub struct Expect {
    /// The `source` column of every event.
    pub source: &'static str,
    /// Exactly one event per non-blank line (false: one or more, e.g. a
    /// transcript message with tool calls).
    pub one_event_per_line: bool,
    /// Event ids are unique within one file (readers that number repeated
    /// lines by occurrence). Readers that hash only the line's content give
    /// byte-identical lines the same id on purpose, so they set this false.
    pub unique_ids: bool,
    /// `stats.unknown_entries` == the number of `unknown` events.
    pub unknown_counted: bool,
}

/// One physical line, split as `lines::Lines` documents it: up to `\n`, a
/// trailing `\r` dropped, the last line possibly without `\n`.
pub struct RawLine<'a> {
    pub offset: usize,
    pub number: u64,
    pub bytes: &'a [u8],
    pub terminated: bool,
}

pub fn split_lines(data: &[u8]) -> Vec<RawLine<'_>> {
    let mut lines = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let rest = &data[offset..];
        let (mut bytes, terminated, len) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], true, i + 1),
            None => (rest, false, rest.len()),
        };
        if terminated {
            if let Some(stripped) = bytes.strip_suffix(b"\r") {
                bytes = stripped;
            }
        }
        lines.push(RawLine {
            offset,
            number: lines.len() as u64 + 1,
            bytes,
            terminated,
        });
        offset += len;
    }
    lines
}

/// A blank line: no event at all (an unterminated whitespace tail is
/// quarantined as truncated instead).
fn is_blank(line: &RawLine<'_>) -> bool {
    line.terminated && line.bytes.iter().all(u8::is_ascii_whitespace)
}

/// Whether the shared loop hands this line to the parser (a JSON object
/// within the cap); every other non-blank line must be quarantined.
fn is_object_line(line: &RawLine<'_>) -> bool {
    line.bytes.len() <= MAX_LINE_BYTES
        && std::str::from_utf8(line.bytes)
            .is_ok_and(|text| matches!(serde_json::from_str::<Value>(text), Ok(Value::Object(_))))
}

pub fn is_event_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks shared by every reader's output, JSONL or not.
pub fn check_events_common(
    events: &[Event],
    stats: &ReadStats,
    context: &SourceContext,
    source: &'static str,
    unique_ids: bool,
) {
    assert_eq!(
        stats.events as usize,
        events.len(),
        "stats.events != events.len()"
    );
    assert!(
        stats.quarantined <= stats.lines,
        "quarantined > lines: {stats:?}"
    );
    assert!(
        stats.unknown_entries <= stats.lines,
        "unknown_entries > lines: {stats:?}"
    );
    let quarantined = events
        .iter()
        .filter(|e| e.kind == EventKind::Quarantined)
        .count();
    assert_eq!(
        stats.quarantined as usize, quarantined,
        "stats.quarantined != number of quarantined events"
    );
    for event in events {
        assert!(
            is_event_id(&event.event_id),
            "event id {:?} is not 32 lowercase hex chars",
            event.event_id
        );
        assert_eq!(event.source, source, "wrong source column");
        assert_eq!(event.ingest_id, context.ingest_id);
        assert_eq!(event.ingested_at, context.ingested_at);
        assert_eq!(
            event.source_uri.as_deref(),
            Some(context.source_uri.as_str())
        );
        let sha = event.line_sha256.as_deref().unwrap_or("");
        assert!(is_sha256_hex(sha), "line_sha256 {sha:?} is not a sha256");
        if event.kind == EventKind::Quarantined {
            assert!(
                event.error.as_deref().is_some_and(|e| !e.is_empty()),
                "a quarantined event without a reason"
            );
            assert!(event.raw.is_some(), "a quarantined event without raw");
        }
    }
    if unique_ids {
        let ids: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids.len(), events.len(), "duplicate event ids");
    }
}

/// Checks the output of a JSONL reader against the input bytes.
pub fn check_jsonl(
    data: &[u8],
    events: &[Event],
    stats: &ReadStats,
    context: &SourceContext,
    expect: &Expect,
) {
    check_events_common(events, stats, context, expect.source, expect.unique_ids);
    let lines = split_lines(data);
    assert_eq!(
        stats.lines as usize,
        lines.len(),
        "stats.lines != physical lines"
    );
    assert_eq!(
        stats.bytes as usize,
        data.len(),
        "stats.bytes != input length ({} lines)",
        lines.len()
    );
    if expect.unknown_counted {
        let unknown = events
            .iter()
            .filter(|e| e.kind == EventKind::Unknown)
            .count();
        assert_eq!(
            stats.unknown_entries as usize, unknown,
            "stats.unknown_entries != number of unknown events"
        );
    }

    // Events come in line order; group them by line.
    let mut rest = events;
    for line in &lines {
        let n = rest
            .iter()
            .take_while(|e| e.source_line == Some(line.number as i64))
            .count();
        let (of_line, tail) = rest.split_at(n);
        rest = tail;
        if is_blank(line) {
            assert_eq!(n, 0, "a blank line (line {}) produced events", line.number);
            continue;
        }
        assert!(n >= 1, "line {} produced no event", line.number);
        if expect.one_event_per_line {
            assert_eq!(n, 1, "line {} produced {n} events", line.number);
        }
        if !is_object_line(line) {
            assert_eq!(
                of_line[0].kind,
                EventKind::Quarantined,
                "line {} is not a JSON object within the cap but was not quarantined",
                line.number
            );
        }
        if of_line.iter().any(|e| e.kind == EventKind::Quarantined) {
            assert_eq!(
                n, 1,
                "a quarantined line (line {}) has other events",
                line.number
            );
            assert_eq!(of_line[0].seq, Some(line.number as i64 - 1));
        }
        let sha = sha256_hex(line.bytes);
        let raw = String::from_utf8_lossy(line.bytes);
        for (i, event) in of_line.iter().enumerate() {
            assert_eq!(
                event.source_offset,
                Some(line.offset as i64),
                "wrong source_offset"
            );
            assert_eq!(
                event.line_sha256.as_deref(),
                Some(sha.as_str()),
                "wrong line_sha256"
            );
            if i == 0 {
                assert_eq!(event.raw.as_deref(), Some(&*raw), "raw is not the line");
            } else {
                assert!(
                    event.raw.is_none(),
                    "raw stored twice for line {}",
                    line.number
                );
            }
        }
    }
    assert!(
        rest.is_empty(),
        "events out of line order or on a line that does not exist: {:?}",
        rest.iter().map(|e| e.source_line).collect::<Vec<_>>()
    );
}

/// The first line as the format sniffers get it (no `\n`, no `\r`).
pub fn first_line(data: &[u8]) -> &[u8] {
    split_lines(data).first().map_or(&[][..], |l| l.bytes)
}

/// Reads `data` with `read`, checks the output, and reads it again: the same
/// bytes must give the same events (ids are deterministic).
pub fn fuzz_jsonl<F>(data: &[u8], session_id_hint: &str, expect: &Expect, read: F) -> Vec<Event>
where
    F: Fn(&[u8], &SourceContext) -> std::io::Result<(Vec<Event>, ReadStats)>,
{
    let context = context(session_id_hint);
    let (events, stats) = match read(data, &context) {
        Ok(read) => read,
        Err(e) => panic!("reading a byte slice failed: {e}"),
    };
    check_jsonl(data, &events, &stats, &context, expect);
    let again = read(data, &context).expect("second read");
    assert_same_events(&events, &again.0);
    assert_eq!(
        again.1, stats,
        "reading the same bytes twice gave different stats"
    );
    events
}

/// Panics, naming the first differing event and its differing fields, when
/// two reads of the same bytes disagree.
pub fn assert_same_events(first: &[Event], second: &[Event]) {
    if first == second {
        return;
    }
    assert_eq!(
        first.len(),
        second.len(),
        "reading the same bytes twice gave a different event count"
    );
    let Some(i) = (0..first.len()).find(|&i| first[i] != second[i]) else {
        return;
    };
    let a = format!("{:#?}", first[i]);
    let b = format!("{:#?}", second[i]);
    // `{:#?}` puts every field on its own line(s); name the field of each
    // differing line.
    let mut field = "";
    let mut diff: Vec<String> = Vec::new();
    for (x, y) in a.lines().zip(b.lines()) {
        if let Some((name, _)) = x.strip_prefix("    ").and_then(|l| l.split_once(": ")) {
            if !name.starts_with(' ') {
                field = name;
            }
        }
        if x != y {
            diff.push(format!("{field}: {} | {}", x.trim(), y.trim()));
        }
    }
    panic!(
        "reading the same bytes twice gave different events: event {i} (line {:?}) differs in {}",
        first[i].source_line,
        if diff.is_empty() {
            "a float field (NaN?)".to_string()
        } else {
            diff.join("; ")
        }
    );
}
