//! Reader for OpenClaw's command log (`~/.openclaw/logs/commands.log`), one
//! JSON line per slash command (`/new`, `/reset`, `/stop`, …).
//!
//! Format source: `shared/docs/openclaw-formats.md` §3.5 and the bundled hook
//! `command-logger` (`src/hooks/bundled/command-logger/handler.ts`, OpenClaw
//! 2026.1–2026.4), which appends
//! `JSON.stringify({timestamp, action, sessionKey, senderId, source})` where
//! `senderId` and `source` (the command source) default to `"unknown"`. The
//! hook is off unless enabled; **no real `commands.log` was available** (the
//! real-run fixtures of openclaw 2026.9.6 / 2026.5.28 have none), so the tests
//! use lines in the documented shape.
//!
//! Mapping (one `custom` event per line):
//!
//! | field | column |
//! |---|---|
//! | — | `role` = `command` |
//! | `timestamp` (required ISO time) | `ts` (normalised to UTC) |
//! | `action` (required string) | `text` |
//! | `sessionKey` | `session_key`; `agent_id` from `agent:<id>:…` when the path gives none |
//! | the whole line (`senderId`, `source`, …) | `attributes` |
//!
//! A line without a string `action` or a readable `timestamp` is quarantined.
//! Event ids: blake3 of (`openclaw_commands_log`, line sha256, byte offset of
//! the line): two identical lines (the same command twice in one millisecond)
//! stay two events; a copy of the file dedupes.

use std::io::{self, BufRead};

use serde_json::{Map, Value};
use trajectory_schema::{Event, EventKind};

use crate::jsonl::{
    line_event, parse_time, read_jsonl, str_field, LineParser, LineRecord, ReadStats, SourceContext,
};

/// The `source` column value of events from this reader.
pub const SOURCE: &str = "openclaw_commands_log";

/// The `role` of command events.
pub const ROLE: &str = "command";

/// Reads a whole command log.
///
/// Never fails on content: unreadable lines become `quarantined` events.
/// Errors: only an I/O error of `reader`.
pub fn read_commands_log<R: BufRead>(
    reader: R,
    context: &SourceContext,
) -> io::Result<(Vec<Event>, ReadStats)> {
    let mut parser = CommandsLogParser::new(context);
    read_jsonl(reader, context, &mut parser)
}

/// Whether `first_line` is a command-log record: a JSON object with string
/// `timestamp` and `action` and a `sessionKey` key, and no `type`.
pub fn looks_like_commands_log(first_line: &[u8]) -> bool {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(first_line) else {
        return false;
    };
    object.get("timestamp").is_some_and(Value::is_string)
        && object.get("action").is_some_and(Value::is_string)
        && object.contains_key("sessionKey")
        && !object.contains_key("type")
}

/// The agent id of a session key `agent:<agentId>:<rest>`.
pub fn agent_id_from_session_key(session_key: &str) -> Option<String> {
    let mut parts = session_key.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("agent"), Some(id), Some(_)) if !id.is_empty() => Some(id.to_string()),
        _ => None,
    }
}

/// Parser state for one command log.
pub struct CommandsLogParser<'a> {
    context: &'a SourceContext,
}

impl<'a> CommandsLogParser<'a> {
    /// A parser for one file.
    pub fn new(context: &'a SourceContext) -> CommandsLogParser<'a> {
        CommandsLogParser { context }
    }
}

impl LineParser for CommandsLogParser<'_> {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn parse(
        &mut self,
        record: &LineRecord<'_>,
        object: Map<String, Value>,
        out: &mut Vec<Event>,
    ) -> Result<(), String> {
        let action = match object.get("action") {
            Some(Value::String(action)) => action.clone(),
            Some(_) => return Err("`action` is not a string".into()),
            None => return Err("no `action`: not a command-log record".into()),
        };
        let ts = object
            .get("timestamp")
            .filter(|v| v.is_string())
            .and_then(parse_time)
            .ok_or("`timestamp` is missing or not an ISO time")?;
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
        event.role = Some(ROLE.to_string());
        event.text = Some(action);
        event.session_key = str_field(&object, "sessionKey");
        event.agent_id = self.context.agent_id.clone().or_else(|| {
            event
                .session_key
                .as_deref()
                .and_then(agent_id_from_session_key)
        });
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
            source_uri: "file:///home/u/.openclaw/logs/commands.log".into(),
            agent_id: None,
            session_id_hint: None,
            ingest_id: "ing".into(),
            ingested_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            max_line_bytes: 1 << 20,
        }
    }

    fn read(data: &str) -> (Vec<Event>, ReadStats) {
        read_commands_log(data.as_bytes(), &context()).unwrap()
    }

    /// Synthetic lines in the shape the `command-logger` hook writes.
    const NEW: &str = r#"{"timestamp":"2026-01-16T14:30:00.000Z","action":"new","sessionKey":"agent:main:main","senderId":"+1234567890","source":"telegram"}"#;
    const STOP: &str = r#"{"timestamp":"2026-01-16T15:45:22.000Z","action":"stop","sessionKey":"agent:main:main","senderId":"unknown","source":"unknown"}"#;

    #[test]
    fn command_lines_map_to_custom_command_events() {
        let (events, stats) = read(&format!("{NEW}\n{STOP}\n"));
        assert_eq!(stats.quarantined, 0);
        assert_eq!(events.len(), 2);
        let e = &events[0];
        assert_eq!(e.kind, EventKind::Custom);
        assert_eq!(e.source, SOURCE);
        assert_eq!(e.role.as_deref(), Some("command"));
        assert_eq!(e.text.as_deref(), Some("new"));
        assert_eq!(e.session_key.as_deref(), Some("agent:main:main"));
        assert_eq!(e.agent_id.as_deref(), Some("main"));
        assert_eq!(e.ts.to_rfc3339(), "2026-01-16T14:30:00+00:00");
        assert_eq!(e.seq, Some(0));
        let attributes: Value = serde_json::from_str(e.attributes.as_deref().unwrap()).unwrap();
        assert_eq!(attributes["senderId"], "+1234567890");
        assert_eq!(attributes["source"], "telegram");
        assert_eq!(events[1].text.as_deref(), Some("stop"));
    }

    #[test]
    fn repeated_commands_stay_apart_and_bad_lines_are_quarantined() {
        let data = format!(
            "{NEW}\n{NEW}\n{}\n{}\n{}\n",
            r#"{"timestamp":"2026-01-16T14:30:00.000Z","sessionKey":"k"}"#,
            r#"{"timestamp":"2026-01-16T14:30:00.000Z","action":["new"]}"#,
            r#"{"timestamp":"yesterday","action":"reset","sessionKey":null}"#,
        );
        let (events, stats) = read(&data);
        assert_eq!(events.len(), 5);
        assert_eq!(stats.quarantined, 3);
        assert_ne!(events[0].event_id, events[1].event_id);
        assert!(events[2].error.as_deref().unwrap().contains("action"));
        assert!(events[3].error.as_deref().unwrap().contains("action"));
        assert!(events[4].error.as_deref().unwrap().contains("timestamp"));
    }

    #[test]
    fn timestamps_with_offsets_become_utc() {
        let line = r#"{"timestamp":"2026-01-16T09:30:00.000-05:00","action":"reset","sessionKey":"agent:ops:telegram:123","senderId":"u","source":"text"}"#;
        let (events, _) = read(&format!("{line}\n"));
        assert_eq!(events[0].ts.to_rfc3339(), "2026-01-16T14:30:00+00:00");
        assert_eq!(events[0].agent_id.as_deref(), Some("ops"));
    }

    #[test]
    fn looks_like_recognises_command_lines_only() {
        assert!(looks_like_commands_log(NEW.as_bytes()));
        assert!(!looks_like_commands_log(
            br#"{"ts":"2026-03-08T12:03:39.641Z","source":"config-io","event":"config.write"}"#
        ));
        assert!(!looks_like_commands_log(
            br#"{"ts":1,"jobId":"j","action":"finished","status":"ok"}"#
        ));
        assert!(!looks_like_commands_log(b"[1]"));
    }

    #[test]
    fn session_keys_name_their_agent() {
        assert_eq!(
            agent_id_from_session_key("agent:main:main").as_deref(),
            Some("main")
        );
        assert_eq!(
            agent_id_from_session_key("agent:ops:cron:job:run:x").as_deref(),
            Some("ops")
        );
        assert_eq!(agent_id_from_session_key("main"), None);
        assert_eq!(agent_id_from_session_key("agent::x"), None);
        assert_eq!(agent_id_from_session_key("agent:main"), None);
    }
}
