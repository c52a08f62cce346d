//! The order an ingest run reads its sources in: by the time of each
//! source's first record, oldest first.
//!
//! Events are partitioned by `date`. Read in path order (session ids are
//! random UUIDs), every chunk of events touches every day a history covers,
//! so the store either buffers all of them or writes each day as many small
//! segments. Read oldest-first, a chunk covers a few consecutive days and a
//! day is complete soon after the reading position passes it: the store
//! writes it as one segment from a small buffer (see
//! `trajectory_store::StagedAppend::stage`).
//!
//! The time comes from the first line of a JSONL source (a transcript's
//! `session` header `timestamp`, a gateway log's `time`, ...), read from at
//! most [`PEEK_BYTES`] of the decoded file. Sources without one (SQLite
//! stores, bundles, a first line longer than the peek, no time field) are
//! read after the timed ones, in path order. Ties keep path order, so the
//! order is deterministic.

use std::io::{BufRead, Read};

use serde::Deserialize;

use crate::discover::open_decoded_buffered;
use crate::sources::Source;

/// How many decoded bytes are read to find the first line's time.
pub const PEEK_BYTES: u64 = 64 * 1024;

/// The time fields a first line may carry, in the order they are tried.
#[derive(Deserialize)]
struct FirstRecord {
    timestamp: Option<serde_json::Value>,
    time: Option<serde_json::Value>,
    ts: Option<serde_json::Value>,
}

/// Milliseconds since the epoch of `source`'s first record, when its first
/// line (within [`PEEK_BYTES`]) is a JSON object with a `timestamp`, `time`
/// or `ts` field (ISO-8601 or epoch milliseconds). `None` for sources that
/// are not line records, unreadable files and lines without a time.
pub fn first_record_millis(source: &Source) -> Option<i64> {
    if !source.kind.is_incremental() {
        return None;
    }
    // A small buffer: a header line is short, and a 1 MiB one would read
    // most transcripts whole before the run reads them again.
    let mut reader = open_decoded_buffered(&source.path, 8 * 1024)
        .ok()?
        .take(PEEK_BYTES);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).ok()?;
    let record: FirstRecord = serde_json::from_slice(&line).ok()?;
    [record.timestamp, record.time, record.ts]
        .iter()
        .flatten()
        .find_map(crate::jsonl::parse_time)
        .map(|t| t.timestamp_millis())
}

/// Sorts `sources` oldest first by [`first_record_millis`]; sources without
/// a time go last. Ties and untimed sources keep their order (discovery's
/// path order), so the order is deterministic.
///
/// The peeks (one open and one short read per source, thousands of them in a
/// large history) run on one thread per core.
pub fn order_by_first_record(sources: &mut [Source]) {
    let keys = first_record_keys(sources);
    let mut keyed: Vec<((bool, Option<i64>), Source)> =
        keys.into_iter().zip(sources.iter().cloned()).collect();
    // Stable: equal keys keep discovery's order.
    keyed.sort_by_key(|(key, _)| *key);
    for (slot, (_, source)) in sources.iter_mut().zip(keyed) {
        *slot = source;
    }
}

/// `(untimed, millis)` of each source, in the order given. A peek never
/// panics on data (every failure is `None`); should a peeking thread panic
/// (a bug), its sources read as untimed (last), none is lost.
fn first_record_keys(sources: &[Source]) -> Vec<(bool, Option<i64>)> {
    crate::on_cores::map_on_cores(
        sources,
        64,
        |source| {
            let millis = first_record_millis(source);
            (millis.is_none(), millis)
        },
        || (true, None),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SourceKind;
    use std::path::Path;

    fn source(dir: &Path, name: &str, kind: SourceKind, first_line: &str) -> Source {
        let path = dir.join(name);
        std::fs::write(&path, format!("{first_line}\n{{\"type\":\"message\"}}\n")).unwrap();
        Source {
            size: std::fs::metadata(&path).unwrap().len(),
            path,
            kind,
        }
    }

    #[test]
    fn sources_are_read_oldest_first_and_untimed_ones_last() {
        let dir = tempfile::tempdir().unwrap();
        let t = SourceKind::Transcript;
        let mut sources = vec![
            source(
                dir.path(),
                "a.jsonl",
                t,
                r#"{"type":"session","timestamp":"2026-03-15T05:10:15Z"}"#,
            ),
            source(dir.path(), "b.jsonl", t, "not json"),
            source(
                dir.path(),
                "c.jsonl",
                t,
                r#"{"type":"session","timestamp":1767225600000}"#,
            ),
            source(
                dir.path(),
                "d.log",
                SourceKind::GatewayLog,
                r#"{"time":"2026-02-01T00:00:00.000+02:00"}"#,
            ),
            source(
                dir.path(),
                "e.jsonl",
                t,
                r#"{"type":"session","timestamp":"2026-03-15T05:10:15Z"}"#,
            ),
            source(
                dir.path(),
                "f.sqlite",
                SourceKind::AgentStore,
                r#"{"timestamp":"2020-01-01T00:00:00Z"}"#,
            ),
        ];
        order_by_first_record(&mut sources);
        let names: Vec<String> = sources
            .iter()
            .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // c: 2026-01-01, d: 2026-01-31T22:00Z, a and e tie (path order), then
        // the untimed b and the SQLite store (never peeked) in path order.
        assert_eq!(
            names,
            ["c.jsonl", "d.log", "a.jsonl", "e.jsonl", "b.jsonl", "f.sqlite"]
        );
        assert_eq!(
            first_record_millis(&sources[1]),
            Some(1_769_896_800_000),
            "offsets are normalised to UTC"
        );
    }

    #[test]
    fn many_sources_are_ordered_the_same_as_one_at_a_time() {
        // Enough sources for the peeks to run on several threads.
        let dir = tempfile::tempdir().unwrap();
        let mut sources: Vec<Source> = (0..200)
            .map(|i| {
                let line = match i % 3 {
                    0 => "not json".to_string(),
                    _ => format!(
                        r#"{{"type":"session","timestamp":{}}}"#,
                        1_767_225_600_000i64 + ((i * 7919) % 50) * 1000
                    ),
                };
                source(
                    dir.path(),
                    &format!("s{i:03}.jsonl"),
                    SourceKind::Transcript,
                    &line,
                )
            })
            .collect();
        let mut expected: Vec<(Option<i64>, String)> = sources
            .iter()
            .map(|s| (first_record_millis(s), s.path.display().to_string()))
            .collect();
        expected.sort_by_key(|(millis, _)| (millis.is_none(), *millis));
        order_by_first_record(&mut sources);
        let got: Vec<(Option<i64>, String)> = sources
            .iter()
            .map(|s| (first_record_millis(s), s.path.display().to_string()))
            .collect();
        assert_eq!(got.len(), 200, "no source is lost");
        assert_eq!(got, expected);
        assert!(got[..133].iter().all(|(m, _)| m.is_some()));
    }

    #[test]
    fn a_first_line_longer_than_the_peek_has_no_time() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!(
            r#"{{"timestamp":"2026-03-15T05:10:15Z","text":"{}"}}"#,
            "x".repeat(PEEK_BYTES as usize)
        );
        let s = source(dir.path(), "long.jsonl", SourceKind::Transcript, &long);
        assert_eq!(first_record_millis(&s), None);
        let short = source(
            dir.path(),
            "short.jsonl",
            SourceKind::Transcript,
            r#"{"timestamp":"2026-03-15T05:10:15Z","text":"x"}"#,
        );
        assert_eq!(first_record_millis(&short), Some(1_773_551_415_000));
    }
}
