//! Reader for OpenClaw's config audit log (`~/.openclaw/logs/config-audit.jsonl`),
//! one JSON line per write of `openclaw.json`.
//!
//! Format source: `shared/docs/openclaw-formats.md` §3.5, checked against a
//! real file (`tests/data/logs/config-audit.jsonl`, OpenClaw 2026.3.x on
//! Windows, from the openclaw/openclaw contributor commit
//! `017d76e850429e2f7548e643efff11ec500eec8e`, MIT):
//! `{ts, source:"config-io", event:"config.write", configPath, pid, ppid, cwd,
//! argv[], execArgv[], watchMode, watchSession, watchCommand, existsBefore,
//! previousHash, nextHash, previousBytes, nextBytes, changedPathCount,
//! hasMetaBefore, hasMetaAfter, gatewayModeBefore, gatewayModeAfter,
//! suspicious[], result}`.
//!
//! Mapping (one `custom` event per line):
//!
//! | field | column |
//! |---|---|
//! | `event` (required string, e.g. `config.write`) | `role` |
//! | `ts` (required ISO time) | `ts` (normalised to UTC) |
//! | `result` (e.g. `rename`) | `status` |
//! | `configPath` | `text` |
//! | the whole line | `attributes` |
//!
//! Nothing is dropped from `attributes`: the record holds hashes and sizes,
//! not the config itself. `argv` can hold secrets passed on a command line
//! (`--token …`); masking them is the redaction pass's job, not this reader's.
//!
//! A line without a string `event` or a readable `ts` is quarantined. Event
//! ids: blake3 of (`openclaw_config_audit`, line sha256, byte offset of the
//! line).

use std::io::{self, BufRead};

use serde_json::{Map, Value};
use trajectory_schema::{Event, EventKind};

use crate::jsonl::{
    line_event, parse_time, read_jsonl, str_field, LineParser, LineRecord, ReadStats, SourceContext,
};

/// The `source` column value of events from this reader.
pub const SOURCE: &str = "openclaw_config_audit";

/// Reads a whole config audit log.
///
/// Never fails on content: unreadable lines become `quarantined` events.
/// Errors: only an I/O error of `reader`.
pub fn read_config_audit<R: BufRead>(
    reader: R,
    context: &SourceContext,
) -> io::Result<(Vec<Event>, ReadStats)> {
    let mut parser = ConfigAuditParser::new(context);
    read_jsonl(reader, context, &mut parser)
}

/// Whether `first_line` is a config-audit record: a JSON object with a string
/// `ts` and an `event` starting with `config.`.
pub fn looks_like_config_audit(first_line: &[u8]) -> bool {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(first_line) else {
        return false;
    };
    object.get("ts").is_some_and(Value::is_string)
        && object
            .get("event")
            .and_then(Value::as_str)
            .is_some_and(|e| e.starts_with("config."))
}

/// Parser state for one config audit log.
pub struct ConfigAuditParser<'a> {
    context: &'a SourceContext,
}

impl<'a> ConfigAuditParser<'a> {
    /// A parser for one file.
    pub fn new(context: &'a SourceContext) -> ConfigAuditParser<'a> {
        ConfigAuditParser { context }
    }
}

impl LineParser for ConfigAuditParser<'_> {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn parse(
        &mut self,
        record: &LineRecord<'_>,
        object: Map<String, Value>,
        out: &mut Vec<Event>,
    ) -> Result<(), String> {
        let event_name = match object.get("event") {
            Some(Value::String(name)) => name.clone(),
            Some(_) => return Err("`event` is not a string".into()),
            None => return Err("no `event`: not a config-audit record".into()),
        };
        let ts = object
            .get("ts")
            .filter(|v| v.is_string())
            .and_then(parse_time)
            .ok_or("`ts` is missing or not an ISO time")?;
        let occurrence = record.line.offset.to_string();
        let mut event = line_event(
            self.context,
            SOURCE,
            EventKind::Custom,
            ts,
            record,
            &[SOURCE, &record.sha256, &occurrence],
        );
        event.seq = Some(record.line.number as i64 - 1);
        event.role = Some(event_name);
        event.status = str_field(&object, "result");
        event.text = str_field(&object, "configPath");
        event.attributes = Some(Value::Object(object).to_string());
        out.push(event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::{TimeZone, Utc};

    fn context() -> SourceContext {
        SourceContext {
            source_uri: "file:///home/u/.openclaw/logs/config-audit.jsonl".into(),
            agent_id: None,
            session_id_hint: None,
            ingest_id: "ing".into(),
            ingested_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            max_line_bytes: 1 << 20,
        }
    }

    fn fixture() -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/logs/config-audit.jsonl");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
    }

    #[test]
    fn real_fixture_yields_one_event_per_record() {
        let data = fixture();
        let records: Vec<Value> = data
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let (events, stats) = read_config_audit(&data[..], &context()).unwrap();
        assert_eq!(stats.quarantined, 0);
        assert_eq!(events.len(), records.len());
        for (event, record) in events.iter().zip(&records) {
            assert_eq!(event.kind, EventKind::Custom);
            assert_eq!(event.source, SOURCE);
            assert_eq!(event.role.as_deref(), record["event"].as_str());
            assert_eq!(event.status.as_deref(), record["result"].as_str());
            assert_eq!(Some(event.ts), parse_time(&record["ts"]));
            let attributes: Value =
                serde_json::from_str(event.attributes.as_deref().unwrap()).unwrap();
            assert_eq!(&attributes, record, "attributes keep the whole line");
        }
        let e = &events[0];
        assert_eq!(e.role.as_deref(), Some("config.write"));
        assert_eq!(e.status.as_deref(), Some("rename"));
        assert_eq!(e.ts.to_rfc3339(), "2026-03-08T12:03:39.641+00:00");
        assert!(e.text.as_deref().unwrap().ends_with("openclaw.json"));
    }

    #[test]
    fn offsets_become_utc_and_bad_lines_are_quarantined() {
        let data = concat!(
            r#"{"ts":"2026-03-08T13:03:39.641+01:00","source":"config-io","event":"config.write","result":"copy","argv":["node","openclaw","--token","t"]}"#,
            "\n",
            r#"{"ts":"2026-03-08T12:03:39.641Z","source":"config-io"}"#,
            "\n",
            r#"{"ts":1741435419641,"event":"config.write"}"#,
            "\n",
            r#"{"ts":"2026-03-08T12:03:39.641Z","event":"config.write","result":7}"#,
            "\n",
        );
        let (events, stats) = read_config_audit(data.as_bytes(), &context()).unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(stats.quarantined, 2);
        assert_eq!(events[0].ts.to_rfc3339(), "2026-03-08T12:03:39.641+00:00");
        assert_eq!(events[0].status.as_deref(), Some("copy"));
        assert!(events[0].attributes.as_deref().unwrap().contains("--token"));
        assert!(events[1].error.as_deref().unwrap().contains("event"));
        assert!(events[2].error.as_deref().unwrap().contains("ts"));
        assert_eq!(events[3].kind, EventKind::Custom);
        assert_eq!(events[3].status, None, "a number is not a result");
        assert_eq!(events[3].text, None);
    }

    #[test]
    fn looks_like_recognises_the_fixture_only() {
        let data = fixture();
        let first = data.split(|b| *b == b'\n').next().unwrap();
        assert!(looks_like_config_audit(first));
        assert!(!looks_like_config_audit(
            br#"{"timestamp":"2026-01-16T14:30:00.000Z","action":"new","sessionKey":"k"}"#
        ));
        assert!(!looks_like_config_audit(
            br#"{"ts":"2026-04-10T06:00:00Z","seq":1,"stage":"session:loaded"}"#
        ));
        assert!(!looks_like_config_audit(b""));
    }
}
