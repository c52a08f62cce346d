//! The reading loop every JSONL format shares, and the provenance every event
//! carries.
//!
//! A format implements [`LineParser`]: it gets each line that is a JSON object
//! and pushes events. Everything else (blank lines, the size cap, invalid
//! UTF-8, malformed JSON, non-objects, a parser's own refusal) is handled here
//! the same way for every format: the line becomes a `quarantined` event with
//! its file, byte offset, line sha256 and reason, and reading goes on.

use std::io::{self, BufRead};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use trajectory_schema::{Event, EventKind};

use crate::lines::{Line, Lines};

/// What a reader knows about the file besides its bytes.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// `file://` URI of the source, stored in `source_uri`.
    pub source_uri: String,
    /// Agent id from the path (`agents/<id>/…`), if any.
    pub agent_id: Option<String>,
    /// Session id to use when the records do not name one (e.g. the file stem).
    pub session_id_hint: Option<String>,
    pub ingest_id: String,
    pub ingested_at: DateTime<Utc>,
    /// Lines longer than this many bytes are quarantined unread.
    pub max_line_bytes: usize,
}

/// Counts from reading one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Physical lines (or records), blank ones included.
    pub lines: u64,
    /// Bytes read (decompressed).
    pub bytes: u64,
    /// Events produced, quarantined lines included.
    pub events: u64,
    /// Lines that could not be read.
    pub quarantined: u64,
    /// Records of an unknown type, kept as `unknown` (or generic) events.
    pub unknown_entries: u64,
    /// Format version found (header version, schema version), if the format has one.
    pub format_version: Option<i64>,
    /// Things the user should know about this source (newer version, missing header).
    pub notes: Vec<String>,
}

/// One good line, as a parser sees it.
pub struct LineRecord<'l> {
    pub line: &'l Line,
    /// The line as text (valid UTF-8).
    pub text: &'l str,
    /// sha256 of the line's bytes, hex.
    pub sha256: String,
}

impl LineRecord<'_> {
    /// What a parser puts in the `raw` of the event that stores the line:
    /// an empty placeholder, which [`read_lines`] replaces with the line's
    /// text once the parser is done with the line, moving the line's buffer
    /// instead of copying it (a copy of every line was ~90 MB of fresh
    /// memory per 100 MB ingested). A line is never empty (blank lines are
    /// skipped before parsing), so the placeholder is unambiguous.
    pub fn raw(&self) -> Option<String> {
        Some(String::new())
    }
}

/// A JSONL format: turns each JSON-object line into events.
pub trait LineParser {
    /// The `source` column value of this format's events.
    fn source(&self) -> &'static str;

    /// Pushes the events of one line. `Err(reason)` quarantines the line
    /// instead (e.g. a required field has the wrong type).
    fn parse(
        &mut self,
        record: &LineRecord<'_>,
        object: Map<String, Value>,
        out: &mut Vec<Event>,
    ) -> Result<(), String>;

    /// Reads a line straight from its text, without a JSON tree, when the
    /// format has a faster path for lines like it (`record.text` is valid
    /// UTF-8, not yet known to be JSON). Returns `false`, having pushed
    /// nothing and changed no state, to have the line parsed into a tree and
    /// given to [`Self::parse`]; a line read here must yield the events
    /// `parse` would make of it.
    fn parse_text(&mut self, _record: &LineRecord<'_>, _out: &mut Vec<Event>) -> bool {
        false
    }

    /// The session the format's quarantined lines belong to, if known.
    fn session_id(&self) -> Option<&str> {
        None
    }

    /// Called once at the end with the stats, to add format facts.
    fn finish(&mut self, _stats: &mut ReadStats) {}
}

/// Reads every line of `reader` with `parser`.
///
/// Errors: only an I/O error of `reader`.
pub fn read_jsonl<R: BufRead, P: LineParser + ?Sized>(
    reader: R,
    context: &SourceContext,
    parser: &mut P,
) -> io::Result<(Vec<Event>, ReadStats)> {
    read_lines(Lines::new(reader), context, parser)
}

/// Reads records that are not in a file of their own (e.g. rows of a SQLite
/// table holding one former JSONL line each) with the same rules as
/// [`read_jsonl`]: each [`Line`] carries the offset and number to record as
/// provenance.
///
/// Errors: the first `Err` the iterator yields.
pub fn read_lines<I, P>(
    lines: I,
    context: &SourceContext,
    parser: &mut P,
) -> io::Result<(Vec<Event>, ReadStats)>
where
    I: IntoIterator<Item = io::Result<Line>>,
    P: LineParser + ?Sized,
{
    let mut stats = ReadStats::default();
    let mut events = Vec::new();
    let mut last_ts: Option<DateTime<Utc>> = None;
    for line in lines {
        let line = line?;
        stats.lines += 1;
        stats.bytes += line.len;
        let before = events.len();
        let read = read_line(&line, context, parser, &mut events);
        if read.is_ok() {
            move_line_into_raw(line.bytes, &mut events[before..]);
        } else if let Err(reason) = read {
            events.truncate(before);
            stats.quarantined += 1;
            let session = parser
                .session_id()
                .map(str::to_string)
                .or_else(|| context.session_id_hint.clone());
            events.push(quarantined(
                context,
                parser.source(),
                &line,
                &reason,
                session,
                last_ts.unwrap_or(context.ingested_at),
            ));
        }
        if let Some(event) = events[before..].last() {
            last_ts = Some(event.ts);
        }
    }
    parser.finish(&mut stats);
    stats.events = events.len() as u64;
    Ok((events, stats))
}

fn read_line<P: LineParser + ?Sized>(
    line: &Line,
    context: &SourceContext,
    parser: &mut P,
    out: &mut Vec<Event>,
) -> Result<(), String> {
    if line.bytes.iter().all(u8::is_ascii_whitespace) {
        if !line.terminated && !line.bytes.is_empty() {
            return Err("truncated last line (whitespace without newline)".into());
        }
        return Ok(());
    }
    if line.bytes.len() > context.max_line_bytes {
        return Err(format!(
            "line of {} bytes exceeds the {}-byte cap",
            line.bytes.len(),
            context.max_line_bytes
        ));
    }
    let text = std::str::from_utf8(&line.bytes)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    let record = LineRecord {
        line,
        text,
        sha256: sha256_hex(&line.bytes),
    };
    if parser.parse_text(&record, out) {
        return Ok(());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        if line.terminated {
            format!("malformed JSON: {e}")
        } else {
            format!("truncated last line (no newline): {e}")
        }
    })?;
    let Value::Object(object) = value else {
        return Err("line is JSON but not an object".into());
    };
    parser.parse(&record, object, out)
}

/// Fills the `raw` placeholders ([`LineRecord::raw`]) of a line's events
/// with the line's text: the first by moving `bytes` (already checked to
/// be UTF-8 by [`read_line`]), any further one with a copy.
fn move_line_into_raw(bytes: Vec<u8>, events: &mut [Event]) {
    let mut placeholders = events
        .iter_mut()
        .filter(|e| e.raw.as_deref() == Some(""))
        .map(|e| &mut e.raw);
    let Some(first) = placeholders.next() else {
        return;
    };
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    for other in placeholders {
        *other = Some(text.clone());
    }
    *first = Some(text);
}

/// A `quarantined` event for a line that could not be read.
pub fn quarantined(
    context: &SourceContext,
    source: &'static str,
    line: &Line,
    reason: &str,
    session_id: Option<String>,
    ts: DateTime<Utc>,
) -> Event {
    let sha256 = sha256_hex(&line.bytes);
    let offset = line.offset.to_string();
    let id = event_id(&["quarantine", &context.source_uri, &offset, &sha256]);
    let mut event = Event::new(
        id,
        ts,
        EventKind::Quarantined,
        source,
        &context.ingest_id,
        context.ingested_at,
    );
    event.agent_id = context.agent_id.clone();
    event.session_id = session_id;
    event.seq = Some(line.number as i64 - 1);
    event.error = Some(reason.to_string());
    event.source_uri = Some(context.source_uri.clone());
    event.source_offset = Some(line.offset as i64);
    event.source_line = Some(line.number as i64);
    event.line_sha256 = Some(sha256);
    event.raw = Some(String::from_utf8_lossy(&line.bytes).into_owned());
    event
}

/// An event of a good line with its provenance filled: `source_uri`,
/// `source_offset`, `source_line`, `line_sha256`, `raw`, the ingest columns
/// and `agent_id`. The id is [`event_id`] of `id_parts`.
pub fn line_event(
    context: &SourceContext,
    source: &'static str,
    kind: EventKind,
    ts: DateTime<Utc>,
    record: &LineRecord<'_>,
    id_parts: &[&str],
) -> Event {
    let mut event = line_part_event(context, source, kind, ts, record, id_parts);
    event.raw = record.raw();
    event
}

/// [`line_event`] without `raw`: for the second and later events of one
/// line (the line is stored once, on its first event).
pub fn line_part_event(
    context: &SourceContext,
    source: &'static str,
    kind: EventKind,
    ts: DateTime<Utc>,
    record: &LineRecord<'_>,
    id_parts: &[&str],
) -> Event {
    let mut event = Event::new(
        event_id(id_parts),
        ts,
        kind,
        source,
        &context.ingest_id,
        context.ingested_at,
    );
    event.agent_id = context.agent_id.clone();
    event.source_uri = Some(context.source_uri.clone());
    event.source_offset = Some(record.line.offset as i64);
    event.source_line = Some(record.line.number as i64);
    event.line_sha256 = Some(record.sha256.clone());
    event
}

/// Lower-case hex of `bytes` (`hex::encode` went through a `char` iterator:
/// 3 % of a transcript reader's time for the line and id hashes).
pub fn lower_hex(bytes: &[u8]) -> String {
    let mut digits = vec![0u8; bytes.len() * 2];
    match hex::encode_to_slice(bytes, &mut digits) {
        Ok(()) => String::from_utf8(digits).unwrap_or_else(|_| hex::encode(bytes)),
        Err(_) => hex::encode(bytes),
    }
}

/// Deterministic event id: blake3 over the parts joined by NUL, first 128 bits as hex.
pub fn event_id(parts: &[&str]) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    lower_hex(&hasher.finalize().as_bytes()[..16])
}

/// sha256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    lower_hex(&Sha256::digest(bytes))
}

/// A string field of a JSON object.
pub fn str_field(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_string)
}

/// An integer field (integers or floats, floats truncated).
pub fn int_field(object: &Map<String, Value>, key: &str) -> Option<i64> {
    let value = object.get(key)?;
    value.as_i64().or_else(|| value.as_f64().map(|f| f as i64))
}

/// A time from an ISO-8601 string (any offset, normalised to UTC) or epoch
/// milliseconds (integer or fractional).
pub fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => time_of_text(s),
        Value::Number(n) => n.as_f64().and_then(time_of_millis),
        _ => None,
    }
}

/// [`parse_time`] of a string: ISO-8601 with any offset, normalised to UTC.
pub fn time_of_text(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// [`parse_time`] of a number: epoch milliseconds, fractions kept to the µs.
pub fn time_of_millis(ms: f64) -> Option<DateTime<Utc>> {
    Utc.timestamp_micros((ms * 1000.0) as i64).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl LineParser for Echo {
        fn source(&self) -> &'static str {
            "echo"
        }

        fn parse(
            &mut self,
            record: &LineRecord<'_>,
            object: Map<String, Value>,
            out: &mut Vec<Event>,
        ) -> Result<(), String> {
            let context = context();
            if object.get("bad").is_some() {
                out.push(line_event(
                    &context,
                    "echo",
                    EventKind::Custom,
                    Utc::now(),
                    record,
                    &["x"],
                ));
                return Err("bad field".into());
            }
            out.push(line_event(
                &context,
                "echo",
                EventKind::Custom,
                Utc::now(),
                record,
                &[record.text],
            ));
            if object.get("twice").is_some() {
                let part = |id: &str| {
                    line_part_event(
                        &context,
                        "echo",
                        EventKind::Custom,
                        Utc::now(),
                        record,
                        &[id],
                    )
                };
                out.push(part("part"));
                let mut again = part("again");
                again.raw = record.raw();
                out.push(again);
            }
            Ok(())
        }
    }

    fn context() -> SourceContext {
        SourceContext {
            source_uri: "file:///x.jsonl".into(),
            agent_id: None,
            session_id_hint: Some("hint".into()),
            ingest_id: "i".into(),
            ingested_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            max_line_bytes: 100,
        }
    }

    #[test]
    fn parser_errors_quarantine_the_whole_line() {
        let data = b"{\"a\":1}\n{\"bad\":1}\n\n{\"a\":2}\n";
        let (events, stats) = read_jsonl(&data[..], &context(), &mut Echo).unwrap();
        assert_eq!(stats.lines, 4);
        assert_eq!(stats.quarantined, 1);
        assert_eq!(events.len(), 3, "the bad line's partial events are dropped");
        assert_eq!(events[1].kind, EventKind::Quarantined);
        assert_eq!(events[1].error.as_deref(), Some("bad field"));
        assert_eq!(events[1].session_id.as_deref(), Some("hint"));
        assert_eq!(events[1].source_offset, Some(8));
    }

    #[test]
    fn every_event_that_stores_the_line_gets_its_exact_text() {
        let data = "{\"a\":\"é\"}\r\n{\"twice\":1}\n{\"bad\":1}\n{\"a\":3}";
        let (events, _) = read_jsonl(data.as_bytes(), &context(), &mut Echo).unwrap();
        let raws: Vec<Option<&str>> = events.iter().map(|e| e.raw.as_deref()).collect();
        assert_eq!(
            raws,
            [
                Some("{\"a\":\"é\"}"),
                Some("{\"twice\":1}"),
                None,
                Some("{\"twice\":1}"),
                Some("{\"bad\":1}"),
                Some("{\"a\":3}"),
            ]
        );
        assert_eq!(events[4].kind, EventKind::Quarantined);
    }

    #[test]
    fn times_parse_from_iso_with_offsets_and_epoch_ms() {
        let t = parse_time(&Value::String("2026-03-28T16:46:57.621-07:00".into())).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-28T23:46:57.621+00:00");
        let ms = parse_time(&serde_json::json!(1733234567891.25)).unwrap();
        assert_eq!(ms.timestamp_millis(), 1733234567891);
        assert!(parse_time(&Value::Bool(true)).is_none());
    }
}
