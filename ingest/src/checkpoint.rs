//! Per-source checkpoints: where the last ingest stopped in each file.
//!
//! A checkpoint is a row of the `events` table itself (`kind =
//! 'source_checkpoint'`), written in the **same Delta commit** as the events
//! read up to it, so a crash can never leave events without their checkpoint
//! or a checkpoint ahead of its events:
//!
//! ```text
//! run N:   read file[0 .. a)  ──▶ commit { events of [0,a), checkpoint(file, a, H(file[0..a))) }
//! run N+1: H(file[0..a)) == stored hash ?  yes ─▶ read file[a .. b) only
//!                                           no  ─▶ rewritten in place: read from 0
//!                                                  (deterministic ids drop what is already stored)
//! ```
//!
//! Columns of a checkpoint row: `source_uri` (the file), `source_offset` (bytes
//! consumed), `source_line` (lines consumed), `attributes`
//! (`{"prefix_blake3", "file_id", "pending_bytes"}`). A partial last line (no
//! newline, not a complete JSON value) is not consumed: it is counted in
//! `pending_bytes` and read by the next run once it is complete.

use std::io::{self, BufRead};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::json;
use trajectory_schema::{Event, EventKind};

use crate::jsonl::event_id;
use crate::lines::Line;

/// The `source` column of checkpoint rows.
pub const CHECKPOINT_SOURCE: &str = "trajectory_ingest";

/// Where reading of one source stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCheckpoint {
    pub source_uri: String,
    /// Bytes consumed (of the decompressed stream).
    pub offset: u64,
    /// Lines consumed.
    pub lines: u64,
    /// blake3 of the consumed bytes, hex.
    pub prefix_blake3: String,
    /// Device and inode of the file when it was read (informational).
    pub file_id: String,
    /// Bytes of an incomplete last line left for the next run.
    pub pending_bytes: u64,
}

impl SourceCheckpoint {
    /// The checkpoint as an `events` row.
    pub fn to_event(&self, ingest_id: &str, ingested_at: DateTime<Utc>) -> Event {
        let offset = self.offset.to_string();
        let mut event = Event::new(
            event_id(&[
                CHECKPOINT_SOURCE,
                &self.source_uri,
                &offset,
                &self.prefix_blake3,
            ]),
            ingested_at,
            EventKind::SourceCheckpoint,
            CHECKPOINT_SOURCE,
            ingest_id,
            ingested_at,
        );
        event.source_uri = Some(self.source_uri.clone());
        event.source_offset = Some(self.offset as i64);
        event.source_line = Some(self.lines as i64);
        event.attributes = Some(
            json!({
                "prefix_blake3": self.prefix_blake3,
                "file_id": self.file_id,
                "pending_bytes": self.pending_bytes,
            })
            .to_string(),
        );
        event
    }

    /// Rebuilds a checkpoint from the columns of its row; `None` if they are incomplete.
    pub fn from_row(
        source_uri: &str,
        offset: Option<i64>,
        lines: Option<i64>,
        attributes: Option<&str>,
    ) -> Option<SourceCheckpoint> {
        let attributes: serde_json::Value = serde_json::from_str(attributes?).ok()?;
        Some(SourceCheckpoint {
            source_uri: source_uri.to_string(),
            offset: u64::try_from(offset?).ok()?,
            lines: u64::try_from(lines?).ok()?,
            prefix_blake3: attributes.get("prefix_blake3")?.as_str()?.to_string(),
            file_id: attributes
                .get("file_id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            pending_bytes: attributes
                .get("pending_bytes")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
        })
    }
}

/// What to do with a source given its last checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadPlan {
    /// Nothing was appended since the checkpoint.
    Unchanged,
    /// Read from the checkpoint on.
    Resume { offset: u64, lines: u64 },
    /// Read from the start; `reason` says why a checkpoint could not be used.
    FromStart { reason: Option<String> },
}

/// Device and inode of a file, as a string (`"dev:ino"`; empty where unknown).
pub fn file_id(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata(path) {
            return format!("{}:{}", meta.dev(), meta.ino());
        }
    }
    let _ = path;
    String::new()
}

/// Checks a checkpoint against the stream and positions `reader` to go on.
///
/// Hashes the first `previous.offset` bytes of `reader` (consuming them) and
/// compares with the stored hash. Returns the plan and the hasher state at the
/// reader's position, so the new checkpoint covers the whole consumed prefix.
///
/// Errors: I/O errors of `reader`.
pub fn plan_read<R: BufRead>(
    reader: &mut R,
    previous: Option<&SourceCheckpoint>,
) -> io::Result<(ReadPlan, blake3::Hasher)> {
    let mut hasher = blake3::Hasher::new();
    let Some(previous) = previous else {
        return Ok((ReadPlan::FromStart { reason: None }, hasher));
    };
    let mut remaining = previous.offset;
    let mut buffer = vec![0u8; 1 << 16];
    while remaining > 0 {
        let want = remaining.min(buffer.len() as u64) as usize;
        let n = reader.read(&mut buffer[..want])?;
        if n == 0 {
            return Ok((
                ReadPlan::FromStart {
                    reason: Some("file is shorter than at the last ingest: rewritten".into()),
                },
                blake3::Hasher::new(),
            ));
        }
        hasher.update(&buffer[..n]);
        remaining -= n as u64;
    }
    if hasher.finalize().to_hex().as_str() != previous.prefix_blake3 {
        return Ok((
            ReadPlan::FromStart {
                reason: Some(
                    "content before the last checkpoint changed: rewritten in place".into(),
                ),
            },
            blake3::Hasher::new(),
        ));
    }
    let more = !reader.fill_buf()?.is_empty();
    let plan = if more {
        ReadPlan::Resume {
            offset: previous.offset,
            lines: previous.lines,
        }
    } else {
        ReadPlan::Unchanged
    };
    Ok((plan, hasher))
}

/// Bytes [`TrackedLines`] gives its hasher at a time (16 blake3 chunks, its
/// widest SIMD batch).
const HASH_BLOCK_BYTES: usize = 16 * 1024;

/// Wraps the lines of a source: hashes what is consumed and holds back an
/// incomplete last line (no newline and not a complete JSON value).
pub struct TrackedLines<I> {
    inner: I,
    /// Hash of the consumed bytes before `unhashed`.
    hasher: blake3::Hasher,
    /// Consumed bytes not given to `hasher` yet: it is fed blocks of
    /// [`HASH_BLOCK_BYTES`], since blake3 hashes a long input on all SIMD
    /// lanes but a line at a time one 64-byte block after another (2 % of
    /// an ingest's CPU, 1 KB lines).
    unhashed: Vec<u8>,
    offset: u64,
    lines: u64,
    pending_bytes: u64,
}

impl<I: Iterator<Item = io::Result<Line>>> TrackedLines<I> {
    /// Tracks `inner`, which starts at `offset` after `lines` lines, with
    /// `hasher` holding the hash of everything before `offset`.
    pub fn new(inner: I, hasher: blake3::Hasher, offset: u64, lines: u64) -> TrackedLines<I> {
        TrackedLines {
            inner,
            hasher,
            unhashed: Vec::new(),
            offset,
            lines,
            pending_bytes: 0,
        }
    }

    fn consume(&mut self, bytes: &[u8]) {
        if self.unhashed.len() + bytes.len() > HASH_BLOCK_BYTES && !self.unhashed.is_empty() {
            self.hasher.update(&self.unhashed);
            self.unhashed.clear();
        }
        if bytes.len() >= HASH_BLOCK_BYTES {
            self.hasher.update(bytes);
        } else {
            if self.unhashed.capacity() == 0 {
                self.unhashed.reserve_exact(HASH_BLOCK_BYTES);
            }
            self.unhashed.extend_from_slice(bytes);
        }
    }

    /// The checkpoint after everything yielded so far.
    pub fn checkpoint(&self, source_uri: &str, file_id: String) -> SourceCheckpoint {
        SourceCheckpoint {
            source_uri: source_uri.to_string(),
            offset: self.offset,
            lines: self.lines,
            prefix_blake3: self
                .hasher
                .clone()
                .update(&self.unhashed)
                .finalize()
                .to_hex()
                .to_string(),
            file_id,
            pending_bytes: self.pending_bytes,
        }
    }

    /// Bytes of an incomplete last line held back.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }
}

impl<I: Iterator<Item = io::Result<Line>>> Iterator for TrackedLines<I> {
    type Item = io::Result<Line>;

    fn next(&mut self) -> Option<io::Result<Line>> {
        let line = match self.inner.next()? {
            Ok(line) => line,
            Err(e) => return Some(Err(e)),
        };
        if !line.terminated && !line.bytes.iter().all(u8::is_ascii_whitespace) {
            let complete = serde_json::from_slice::<serde::de::IgnoredAny>(&line.bytes).is_ok();
            if !complete {
                self.pending_bytes = line.len;
                return None;
            }
        }
        self.consume(&line.bytes);
        self.consume(line.terminator());
        self.offset += line.len;
        self.lines += 1;
        Some(Ok(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::Lines;

    fn consume(
        data: &[u8],
        previous: Option<&SourceCheckpoint>,
    ) -> (ReadPlan, Vec<Line>, SourceCheckpoint) {
        let mut reader = data;
        let (plan, hasher) = plan_read(&mut reader, previous).unwrap();
        let (offset, lines) = match &plan {
            ReadPlan::Resume { offset, lines } => (*offset, *lines),
            ReadPlan::Unchanged => (previous.unwrap().offset, previous.unwrap().lines),
            ReadPlan::FromStart { .. } => {
                reader = data;
                (0, 0)
            }
        };
        let mut tracked = TrackedLines::new(
            Lines::starting_at(reader, offset, lines),
            hasher,
            offset,
            lines,
        );
        let read: Vec<Line> = tracked.by_ref().map(|l| l.unwrap()).collect();
        (plan, read, tracked.checkpoint("file:///x", String::new()))
    }

    #[test]
    fn resumes_after_appends_and_holds_back_partial_lines() {
        let first = b"{\"a\":1}\n{\"b\":2}\n{\"c\":";
        let (plan, read, cp) = consume(first, None);
        assert_eq!(plan, ReadPlan::FromStart { reason: None });
        assert_eq!(read.len(), 2);
        assert_eq!(cp.offset, 16);
        assert_eq!(cp.pending_bytes, 5);

        let grown = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"d\":4}";
        let (plan, read, cp2) = consume(grown, Some(&cp));
        assert_eq!(
            plan,
            ReadPlan::Resume {
                offset: 16,
                lines: 2
            }
        );
        assert_eq!(
            read.len(),
            2,
            "the completed line and a complete unterminated one"
        );
        assert_eq!(read[0].number, 3);
        assert_eq!(read[0].offset, 16);
        assert_eq!(cp2.offset, grown.len() as u64);
        assert_eq!(cp2.pending_bytes, 0);
        // The incremental hash equals a hash of the whole consumed prefix.
        assert_eq!(cp2.prefix_blake3, blake3::hash(grown).to_hex().as_str());

        let (plan, read, _) = consume(grown, Some(&cp2));
        assert_eq!(plan, ReadPlan::Unchanged);
        assert!(read.is_empty());
    }

    #[test]
    fn the_prefix_hash_is_the_hash_of_the_bytes_across_hash_blocks() {
        // Lines of 1 byte to 3 hash blocks, CRLF and LF, so block edges fall
        // inside lines, between a line and its terminator, and on lines
        // longer than a block.
        let mut data = Vec::new();
        for (i, size) in [1, 700, 16_383, 16_384, 40_000, 5, 9_000, 16_385, 3]
            .iter()
            .enumerate()
        {
            data.push(b'"');
            data.extend(std::iter::repeat_n(b'a' + (i as u8), *size));
            data.push(b'"');
            data.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b"\n" });
        }
        let (_, read, cp) = consume(&data, None);
        assert_eq!(read.len(), 9);
        assert_eq!(cp.offset, data.len() as u64);
        assert_eq!(cp.prefix_blake3, blake3::hash(&data).to_hex().as_str());
        // Resumed after a cut in the middle, the hash still covers it all.
        let cut = read[4].offset as usize;
        let (_, _, first) = consume(&data[..cut], None);
        let (plan, _, resumed) = consume(&data, Some(&first));
        assert!(matches!(plan, ReadPlan::Resume { .. }), "{plan:?}");
        assert_eq!(resumed.prefix_blake3, cp.prefix_blake3);
    }

    #[test]
    fn rewritten_files_are_read_from_the_start() {
        let (_, _, cp) = consume(b"{\"a\":1}\n{\"b\":2}\n", None);
        let (plan, read, _) = consume(b"{\"A\":1}\n{\"b\":2}\n{\"c\":3}\n", Some(&cp));
        assert!(
            matches!(plan, ReadPlan::FromStart { reason: Some(_) }),
            "{plan:?}"
        );
        assert_eq!(read.len(), 3);
        let (plan, _, _) = consume(b"{\"a\":1}\n", Some(&cp));
        assert!(matches!(plan, ReadPlan::FromStart { reason: Some(r) } if r.contains("shorter")));
    }

    #[test]
    fn checkpoint_rows_round_trip() {
        let cp = SourceCheckpoint {
            source_uri: "file:///a.jsonl".into(),
            offset: 10,
            lines: 2,
            prefix_blake3: "ab".into(),
            file_id: "1:2".into(),
            pending_bytes: 3,
        };
        let event = cp.to_event("ing", Utc::now());
        let back = SourceCheckpoint::from_row(
            event.source_uri.as_deref().unwrap(),
            event.source_offset,
            event.source_line,
            event.attributes.as_deref(),
        )
        .unwrap();
        assert_eq!(back, cp);
    }
}
