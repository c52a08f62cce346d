//! Reader for pi / OpenClaw session transcripts (`<sessionId>.jsonl`).
//!
//! Format source: pi's `SessionManager` (`packages/coding-agent/src/core/
//! session-manager.ts`, pi-mono) and OpenClaw's additions, summarised in
//! `shared/docs/openclaw-formats.md` §1 and §9. Header versions: absent (v1,
//! linear, no ids), 2 (tree via `id`/`parentId`), 3 (current pi), 4 (OpenClaw
//! ≥ 2026.7, UUID ids). A newer version is read as far as the entries match the
//! known shapes and reported through [`TranscriptStats::newer_version`].
//!
//! Mapping (one line may yield several events):
//!
//! | line | events |
//! |---|---|
//! | header `type:"session"` | `session_start` |
//! | `message` role `user` | `user_message` |
//! | `message` role `assistant`, provider ≠ `openclaw` | `llm_call` + one `tool_call` per `toolCall` block |
//! | `message` role `assistant`, provider `openclaw` | `injected_message` (+ `tool_call`s) |
//! | `message` role `toolResult` | `tool_result` |
//! | `message` role `bashExecution` | `bash_execution` |
//! | `message` role `custom` / `hookMessage`, `custom_message` | `custom_message` |
//! | `model_change`, `thinking_level_change`, `compaction`, `branch_summary`, `custom`, `label`, `session_info` | the kind of the same name |
//! | anything else | `unknown` (kept whole in `raw` and `content`) |
//! | unreadable line | `quarantined` (reason in `error`, bytes in `raw`) |
//!
//! Event ids: blake3 of (source, agent, session, entry id, line sha256, part),
//! so re-reading the same bytes gives the same ids, an archived copy of a
//! transcript (`*.jsonl.deleted.<ts>`) dedupes against the original, and two
//! different lines that share an entry id are both kept. v1 lines have no ids:
//! `v1-<line number>` is used, with `parentId` the previous entry, as pi's own
//! migration does.

use std::io::{self, BufRead};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use trajectory_schema::{Event, EventKind};

use crate::content::{
    image_free_json, image_free_object_json, plain_text, take_plain_text, without_image_bytes,
};
use crate::jsonl::{
    int_field, line_part_event, parse_time, read_jsonl, str_field, LineParser, LineRecord,
    ReadStats, SourceContext,
};
use crate::locality::locality_of_provider;

/// The `source` column value of events from this reader.
pub const SOURCE: &str = "openclaw_transcript";

/// The newest header version whose shape this reader knows.
pub const NEWEST_KNOWN_VERSION: i64 = 4;

/// Default cap on one line's size; longer lines are quarantined unread.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// What a missing `content` reads as.
static NULL: Value = Value::Null;

/// Tool-result statuses that mean the tool failed, whatever `isError` says.
const FAILED_TOOL_STATUSES: &[&str] = &[
    "error",
    "failed",
    "approval-unavailable",
    "denied",
    "timeout",
    "timed_out",
];

/// Reads a whole transcript.
///
/// Never fails on content: unreadable lines become `quarantined` events.
/// `stats.format_version` is the header version (1 when the header has none).
/// Errors: only an I/O error of `reader`.
pub fn read_transcript<R: BufRead>(
    reader: R,
    context: &SourceContext,
) -> io::Result<(Vec<Event>, ReadStats)> {
    let mut parser = TranscriptParser::new(context);
    read_jsonl(reader, context, &mut parser)
}

/// Whether `first_line` is a session header.
pub fn is_session_header(first_line: &[u8]) -> bool {
    serde_json::from_slice::<Value>(first_line)
        .ok()
        .and_then(|v| {
            v.get("type")
                .and_then(Value::as_str)
                .map(|t| t == "session")
        })
        .unwrap_or(false)
}

/// The transcript format as a [`LineParser`]: the tree state across lines.
pub struct TranscriptParser<'a> {
    context: &'a SourceContext,
    session_id: String,
    version: i64,
    header_version: Option<i64>,
    seen_first_line: bool,
    missing_header: bool,
    unknown_entries: u64,
    /// Previous entry id, for v1 files where `parentId` is implicit.
    previous_entry_id: Option<String>,
    /// Last good timestamp, used when an entry has none.
    last_ts: Option<DateTime<Utc>>,
}

/// The parts of a line every event of it shares.
struct LineFacts<'l> {
    record: &'l LineRecord<'l>,
    entry_id: Option<String>,
    parent_id: Option<String>,
    ts: DateTime<Utc>,
}

impl LineParser for TranscriptParser<'_> {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn parse(
        &mut self,
        record: &LineRecord<'_>,
        entry: Map<String, Value>,
        out: &mut Vec<Event>,
    ) -> Result<(), String> {
        let first_line = !self.seen_first_line;
        self.seen_first_line = true;
        let mut entry = entry;
        let entry_type = entry
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if entry_type == "session" && first_line {
            self.read_header(record, &entry, out);
            return Ok(());
        }
        if first_line {
            self.missing_header = true;
        }
        self.read_entry(record, &entry_type, &mut entry, out);
        Ok(())
    }

    fn session_id(&self) -> Option<&str> {
        Some(&self.session_id)
    }

    fn finish(&mut self, stats: &mut ReadStats) {
        stats.format_version = self.header_version;
        stats.unknown_entries = self.unknown_entries;
        if self.version > NEWEST_KNOWN_VERSION {
            stats.notes.push(format!(
                "header version {} is newer than {NEWEST_KNOWN_VERSION}; read as far as entries match known shapes",
                self.version
            ));
        }
        if self.missing_header {
            stats
                .notes
                .push("no session header on line 1; session id taken from the file name".into());
        }
    }
}

impl<'a> TranscriptParser<'a> {
    /// A parser for one file.
    pub fn new(context: &'a SourceContext) -> TranscriptParser<'a> {
        TranscriptParser {
            context,
            session_id: context.session_id_hint.clone().unwrap_or_default(),
            version: 1,
            header_version: None,
            seen_first_line: false,
            missing_header: false,
            unknown_entries: 0,
            previous_entry_id: None,
            last_ts: None,
        }
    }

    fn read_header(
        &mut self,
        record: &LineRecord<'_>,
        header: &Map<String, Value>,
        out: &mut Vec<Event>,
    ) {
        if let Some(id) = header
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            self.session_id = id.to_string();
        }
        self.version = header.get("version").and_then(Value::as_i64).unwrap_or(1);
        self.header_version = Some(self.version);
        let facts = self.facts(record, header, Some("session".to_string()), None);
        let mut event = self.event(EventKind::SessionStart, &facts, "");
        event.provider = str_field(header, "provider");
        event.model = str_field(header, "modelId");
        event.content = Some(Value::Object(header.clone()).to_string());
        out.push(event);
    }

    fn read_entry(
        &mut self,
        record: &LineRecord<'_>,
        entry_type: &str,
        entry: &mut Map<String, Value>,
        out: &mut Vec<Event>,
    ) {
        let (entry_id, parent_id) = if self.version >= 2 {
            (
                str_field(entry, "id"),
                entry
                    .get("parentId")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )
        } else {
            (
                Some(format!("v1-{}", record.line.number)),
                self.previous_entry_id.clone(),
            )
        };
        self.previous_entry_id = entry_id.clone();
        let facts = self.facts(record, entry, entry_id, parent_id);
        if entry_type == "message" {
            self.read_message(&facts, entry, out);
            return;
        }
        let entry: &Map<String, Value> = entry;
        match entry_type {
            "model_change" => {
                let mut event = self.event(EventKind::ModelChange, &facts, "");
                event.provider = str_field(entry, "provider");
                event.model = str_field(entry, "modelId");
                event.locality = event.provider.as_deref().map(locality_of_provider);
                out.push(event);
            }
            "thinking_level_change" => {
                let mut event = self.event(EventKind::ThinkingLevelChange, &facts, "");
                event.text = str_field(entry, "thinkingLevel");
                out.push(event);
            }
            "compaction" => {
                let mut event = self.event(EventKind::Compaction, &facts, "");
                event.text = str_field(entry, "summary");
                let mut details = entry.clone();
                details.remove("summary");
                if let Some(index) = entry.get("firstKeptEntryIndex").and_then(Value::as_i64) {
                    // v1: an index into the file's entries counting the header,
                    // i.e. line `index + 1`.
                    details.insert(
                        "firstKeptEntryId".into(),
                        Value::String(format!("v1-{}", index + 1)),
                    );
                }
                event.content = Some(Value::Object(details).to_string());
                event.input_tokens = entry.get("tokensBefore").and_then(Value::as_i64);
                out.push(event);
            }
            "branch_summary" => {
                let mut event = self.event(EventKind::BranchSummary, &facts, "");
                event.text = str_field(entry, "summary");
                event.content = Some(Value::Object(entry.clone()).to_string());
                out.push(event);
            }
            "custom" => out.push(self.custom_event(&facts, entry)),
            "custom_message" => {
                let mut event = self.event(EventKind::CustomMessage, &facts, "");
                event.role = Some("custom".into());
                let content = entry.get("content").unwrap_or(&NULL);
                event.text = plain_text(content);
                event.content = Some(image_free_object_json(entry));
                out.push(event);
            }
            "label" => {
                let mut event = self.event(EventKind::Label, &facts, "");
                event.text = str_field(entry, "label");
                event.content = Some(Value::Object(entry.clone()).to_string());
                out.push(event);
            }
            "session_info" => {
                let mut event = self.event(EventKind::SessionInfo, &facts, "");
                event.text = str_field(entry, "name");
                out.push(event);
            }
            _ => out.push(self.unknown_event(&facts, entry)),
        }
    }

    /// A `message` entry. The text of user, assistant and tool-result
    /// content is moved out of `entry` once the content is serialised.
    fn read_message(
        &mut self,
        facts: &LineFacts<'_>,
        entry: &mut Map<String, Value>,
        out: &mut Vec<Event>,
    ) {
        let role = match entry.get("message") {
            Some(Value::Object(message)) => message
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            _ => {
                out.push(self.unknown_event(facts, entry));
                return;
            }
        };
        let Some(Value::Object(message)) = entry.get_mut("message") else {
            return;
        };
        if let "user" | "assistant" | "toolResult" = role.as_str() {
            let mut content = message
                .get_mut("content")
                .map(std::mem::take)
                .unwrap_or(Value::Null);
            let content_json = image_free_json(&content);
            let text = take_plain_text(&mut content);
            match role.as_str() {
                "user" => {
                    let mut event = self.event(EventKind::UserMessage, facts, "");
                    event.role = Some("user".into());
                    event.text = text;
                    event.content = Some(content_json);
                    out.push(event);
                }
                "assistant" => {
                    self.read_assistant(facts, message, &content, text, content_json, out)
                }
                _ => {
                    let mut event = self.event(EventKind::ToolResult, facts, "");
                    event.role = Some("toolResult".into());
                    event.text = text;
                    event.content = Some(content_json);
                    self.read_tool_result(message, &mut event);
                    out.push(event);
                }
            }
            return;
        }
        let message: &Map<String, Value> = message;
        let role = role.as_str();
        let content = message.get("content").unwrap_or(&NULL);
        match role {
            "bashExecution" => {
                let mut event = self.event(EventKind::BashExecution, facts, "");
                event.role = Some("bashExecution".into());
                event.tool_name = Some("bash".into());
                let command = message.get("command").cloned().unwrap_or(Value::Null);
                event.tool_args = Some(serde_json::json!({ "command": command }).to_string());
                event.text = str_field(message, "output");
                let exit_code = message.get("exitCode").and_then(Value::as_i64);
                let cancelled = message
                    .get("cancelled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let status = if cancelled {
                    "cancelled"
                } else {
                    match exit_code {
                        Some(0) => "completed",
                        Some(_) => "failed",
                        None => "unknown",
                    }
                };
                event.tool_status = Some(status.into());
                event.tool_is_error = Some(cancelled || exit_code.is_some_and(|c| c != 0));
                let mut details = message.clone();
                details.remove("output");
                event.content = Some(Value::Object(details).to_string());
                out.push(event);
            }
            "custom" | "hookMessage" => {
                let mut event = self.event(EventKind::CustomMessage, facts, "");
                event.role = Some(role.into());
                event.text = plain_text(content);
                event.content = Some(image_free_object_json(message));
                out.push(event);
            }
            "branchSummary" | "compactionSummary" => {
                let kind = if role == "branchSummary" {
                    EventKind::BranchSummary
                } else {
                    EventKind::Compaction
                };
                let mut event = self.event(kind, facts, "");
                event.role = Some(role.into());
                event.text = str_field(message, "summary");
                out.push(event);
            }
            _ => out.push(self.unknown_event(facts, entry)),
        }
    }

    /// The tool fields of a `toolResult` message's `event` (its text set).
    fn read_tool_result(&self, message: &Map<String, Value>, event: &mut Event) {
        event.tool_call_id = str_field(message, "toolCallId");
        event.tool_name = str_field(message, "toolName");
        let is_error = message.get("isError").and_then(Value::as_bool);
        let status = tool_status(message, is_error, event.text.as_deref());
        event.tool_is_error =
            Some(is_error.unwrap_or(false) || FAILED_TOOL_STATUSES.contains(&status.as_str()));
        event.error = message
            .get("details")
            .and_then(|d| d.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string);
        event.tool_status = Some(status);
    }

    /// An `assistant` message: its `text` and `content_json` taken from
    /// `content` already.
    fn read_assistant(
        &mut self,
        facts: &LineFacts<'_>,
        message: &Map<String, Value>,
        content: &Value,
        text: Option<String>,
        content_json: String,
        out: &mut Vec<Event>,
    ) {
        let provider = str_field(message, "provider");
        let kind = if provider.as_deref() == Some("openclaw") {
            EventKind::InjectedMessage
        } else {
            EventKind::LlmCall
        };
        let mut event = self.event(kind, facts, "");
        event.role = Some("assistant".into());
        event.locality = provider.as_deref().map(locality_of_provider);
        event.provider = provider;
        event.model = str_field(message, "model");
        event.api = str_field(message, "api");
        event.text = text;
        event.content = Some(content_json);
        event.stop_reason = str_field(message, "stopReason");
        event.error = str_field(message, "errorMessage");
        if let Some(Value::Object(usage)) = message.get("usage") {
            event.input_tokens = int_field(usage, "input");
            event.output_tokens = int_field(usage, "output");
            event.cache_read_tokens = int_field(usage, "cacheRead");
            event.cache_write_tokens = int_field(usage, "cacheWrite");
            event.cost_usd = usage
                .get("cost")
                .and_then(|c| c.get("total"))
                .and_then(Value::as_f64);
        }
        // message.timestamp is the request start (epoch ms); the entry
        // timestamp is the append time, so their difference is the latency.
        event.latency_ms = message
            .get("timestamp")
            .and_then(Value::as_f64)
            .map(|start| facts.ts.timestamp_millis() - start as i64)
            .filter(|ms| *ms >= 0);
        let blocks: &[Value] = content.as_array().map(Vec::as_slice).unwrap_or(&[]);
        let mut calls = Vec::new();
        for (index, block) in blocks.iter().enumerate() {
            if block.get("type").and_then(Value::as_str) != Some("toolCall") {
                continue;
            }
            let mut call =
                self.part_event(EventKind::ToolCall, facts, &format!("toolCall:{index}"));
            call.role = Some("assistant".into());
            call.provider = event.provider.clone();
            call.model = event.model.clone();
            call.api = event.api.clone();
            call.locality = event.locality;
            call.tool_call_id = block.get("id").and_then(Value::as_str).map(str::to_string);
            call.tool_name = block
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string);
            call.tool_args = Some(match block.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(args) => args.to_string(),
                None => "{}".to_string(),
            });
            call.content = Some(block.to_string());
            calls.push(call);
        }
        out.push(event);
        out.extend(calls);
    }

    fn custom_event(&self, facts: &LineFacts<'_>, entry: &Map<String, Value>) -> Event {
        let mut event = self.event(EventKind::Custom, facts, "");
        let custom_type = entry
            .get("customType")
            .and_then(Value::as_str)
            .unwrap_or("");
        let data = entry.get("data").cloned().unwrap_or(Value::Null);
        event.role = Some(custom_type.to_string()).filter(|s| !s.is_empty());
        if let Value::Object(data) = &data {
            match custom_type {
                "model-snapshot" => {
                    event.provider = str_field(data, "provider");
                    event.model = str_field(data, "modelId");
                    event.api = str_field(data, "modelApi");
                    event.locality = event.provider.as_deref().map(locality_of_provider);
                }
                "openclaw:prompt-error" => {
                    event.provider = str_field(data, "provider");
                    event.model = str_field(data, "model");
                    event.api = str_field(data, "api");
                    event.error = str_field(data, "error");
                    event.locality = event.provider.as_deref().map(locality_of_provider);
                }
                _ => {}
            }
        }
        event.content = Some(
            serde_json::json!({ "customType": custom_type, "data": without_image_bytes(&data) })
                .to_string(),
        );
        event
    }

    fn unknown_event(&mut self, facts: &LineFacts<'_>, entry: &Map<String, Value>) -> Event {
        self.unknown_entries += 1;
        let mut event = self.event(EventKind::Unknown, facts, "");
        event.role = entry
            .get("message")
            .and_then(|m| m.get("role"))
            .and_then(Value::as_str)
            .map(str::to_string);
        event.content = Some(image_free_object_json(entry));
        event
    }

    /// Facts shared by every event of a good line.
    fn facts<'l>(
        &mut self,
        record: &'l LineRecord<'l>,
        entry: &Map<String, Value>,
        entry_id: Option<String>,
        parent_id: Option<String>,
    ) -> LineFacts<'l> {
        let ts = entry_time(entry)
            .or(self.last_ts)
            .unwrap_or(self.context.ingested_at);
        self.last_ts = Some(ts);
        LineFacts {
            record,
            entry_id,
            parent_id,
            ts,
        }
    }

    /// An event of a good line, carrying the line in `raw`; `part` tells
    /// apart the events of one line.
    fn event(&self, kind: EventKind, facts: &LineFacts<'_>, part: &str) -> Event {
        let mut event = self.part_event(kind, facts, part);
        event.raw = facts.record.raw();
        event
    }

    /// [`Self::event`] without `raw` (a later event of the same line).
    fn part_event(&self, kind: EventKind, facts: &LineFacts<'_>, part: &str) -> Event {
        let agent = self.context.agent_id.as_deref().unwrap_or("");
        let entry = facts.entry_id.as_deref().unwrap_or("");
        let record = facts.record;
        let mut event = line_part_event(
            self.context,
            SOURCE,
            kind,
            facts.ts,
            record,
            &[SOURCE, agent, &self.session_id, entry, &record.sha256, part],
        );
        event.session_id = Some(self.session_id.clone());
        event.entry_id = facts.entry_id.clone();
        event.parent_id = facts.parent_id.clone();
        event.seq = Some(record.line.number as i64 - 1);
        event
    }
}

/// The entry's time: ISO `timestamp`, else `message.timestamp` / `data.timestamp` (epoch ms).
fn entry_time(entry: &Map<String, Value>) -> Option<DateTime<Utc>> {
    entry
        .get("timestamp")
        .and_then(parse_time)
        .or_else(|| {
            entry
                .get("message")
                .and_then(|m| m.get("timestamp"))
                .and_then(parse_time)
        })
        .or_else(|| {
            entry
                .get("data")
                .and_then(|d| d.get("timestamp"))
                .and_then(parse_time)
        })
}

/// A tool result's status: `details.status` when present (OpenClaw reports
/// failures there with `isError:false`), but `failed` when `details.exitCode`
/// is non-zero (exec says `completed` for a command that exited 3); else
/// `error` when `isError` is true or the text is a JSON object with
/// `"status":"error"`, else `ok`.
fn tool_status(message: &Map<String, Value>, is_error: Option<bool>, text: Option<&str>) -> String {
    let details = message.get("details");
    let exit_code = details
        .and_then(|d| d.get("exitCode"))
        .and_then(Value::as_i64);
    if let Some(status) = details
        .and_then(|d| d.get("status"))
        .and_then(Value::as_str)
    {
        // OpenClaw's exec reports a command that exited non-zero as
        // `status:"completed"` with `isError:false`; the exit code tells.
        if exit_code.is_some_and(|code| code != 0) && matches!(status, "completed" | "ok") {
            return "failed".into();
        }
        return status.to_string();
    }
    if exit_code.is_some_and(|code| code != 0) {
        return "failed".into();
    }
    if is_error == Some(true) {
        return "error".into();
    }
    let sniffed = text
        .filter(|t| t.trim_start().starts_with('{'))
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_string));
    match sniffed.as_deref() {
        Some(s) if FAILED_TOOL_STATUSES.contains(&s) => s.to_string(),
        _ => "ok".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::TimeZone;

    fn context() -> SourceContext {
        SourceContext {
            source_uri: "file:///t/s.jsonl".into(),
            agent_id: Some("main".into()),
            session_id_hint: Some("s".into()),
            ingest_id: "ing".into(),
            ingested_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            max_line_bytes: 1024,
        }
    }

    fn read(data: &str) -> (Vec<Event>, ReadStats) {
        read_transcript(data.as_bytes(), &context()).unwrap()
    }

    const HEADER_V3: &str = r#"{"type":"session","version":3,"id":"sess-1","timestamp":"2026-01-01T00:00:00.000Z","cwd":"/w"}"#;

    #[test]
    fn assistant_with_tool_calls_yields_call_events_and_usage() {
        let data = format!(
            "{HEADER_V3}\n{}\n",
            r#"{"type":"message","id":"a1","parentId":null,"timestamp":"2026-01-01T00:00:02.000Z","message":{"role":"assistant","content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"ok"},{"type":"toolCall","id":"c1","name":"read","arguments":{"path":"x"}},{"type":"toolCall","id":"c2","name":"exec","arguments":{"command":"ls"}}],"api":"anthropic-messages","provider":"anthropic","model":"claude","usage":{"input":10,"output":5,"cacheRead":1,"cacheWrite":2,"cost":{"total":0.25}},"stopReason":"toolUse","timestamp":1767225601500}}"#
        );
        let (events, stats) = read(&data);
        assert_eq!(stats.format_version, Some(3));
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::SessionStart,
                EventKind::LlmCall,
                EventKind::ToolCall,
                EventKind::ToolCall
            ]
        );
        let call = &events[1];
        assert_eq!(call.session_id.as_deref(), Some("sess-1"));
        assert_eq!(call.text.as_deref(), Some("ok"));
        assert_eq!(call.output_tokens, Some(5));
        assert_eq!(call.cost_usd, Some(0.25));
        assert_eq!(call.latency_ms, Some(500));
        assert_eq!(call.locality, Some(trajectory_schema::Locality::Cloud));
        assert_eq!(events[3].tool_args.as_deref(), Some(r#"{"command":"ls"}"#));
        assert!(events[3].raw.is_none(), "raw is stored once per line");
        let ids: std::collections::HashSet<_> = events.iter().map(|e| &e.event_id).collect();
        assert_eq!(ids.len(), 4, "every event of a line has its own id");
    }

    #[test]
    fn tool_status_trusts_details_over_is_error() {
        let data = format!(
            "{HEADER_V3}\n{}\n",
            r#"{"type":"message","id":"r1","parentId":"a1","timestamp":"2026-01-01T00:00:03.000Z","message":{"role":"toolResult","toolCallId":"c1","toolName":"read","content":[{"type":"text","text":"{\"status\":\"error\"}"}],"details":{"status":"error","tool":"read","error":"ENOENT"},"isError":false}}"#
        );
        let (events, _) = read(&data);
        assert_eq!(events[1].tool_status.as_deref(), Some("error"));
        assert_eq!(events[1].tool_is_error, Some(true));
        assert_eq!(events[1].error.as_deref(), Some("ENOENT"));
    }

    #[test]
    fn a_non_zero_exit_code_fails_the_tool_even_when_status_says_completed() {
        let data = format!(
            "{HEADER_V3}\n{}\n",
            r#"{"type":"message","id":"r1","parentId":null,"timestamp":"2026-01-01T00:00:03.000Z","message":{"role":"toolResult","toolCallId":"c1","toolName":"exec","content":[{"type":"text","text":"boom"}],"details":{"status":"completed","exitCode":3,"durationMs":5},"isError":false}}"#
        );
        let (events, _) = read(&data);
        assert_eq!(events[1].tool_status.as_deref(), Some("failed"));
        assert_eq!(events[1].tool_is_error, Some(true));
    }

    #[test]
    fn v1_entries_get_line_ids_and_implicit_parents() {
        let data = concat!(
            r#"{"type":"session","id":"old","timestamp":"2025-12-09T00:53:29.825Z","provider":"anthropic","modelId":"m"}"#,
            "\n",
            r#"{"type":"message","timestamp":"2025-12-08T22:41:05.306Z","message":{"role":"user","content":"hi","timestamp":1765233665292}}"#,
            "\n",
            r#"{"type":"model_change","timestamp":"2025-12-08T22:41:06.306Z","provider":"ollama","modelId":"q"}"#,
            "\n"
        );
        let (events, stats) = read(data);
        assert_eq!(stats.format_version, Some(1));
        assert_eq!(events[1].entry_id.as_deref(), Some("v1-2"));
        assert_eq!(events[1].parent_id, None);
        assert_eq!(events[2].entry_id.as_deref(), Some("v1-3"));
        assert_eq!(events[2].parent_id.as_deref(), Some("v1-2"));
        assert_eq!(events[2].locality, Some(trajectory_schema::Locality::Local));
    }

    #[test]
    fn bad_lines_are_quarantined_with_reasons_and_reading_goes_on() {
        let mut data = format!("{HEADER_V3}\n").into_bytes();
        data.extend_from_slice(b"{not json\n");
        data.extend_from_slice(b"{\"type\":\"label\",\"id\":\"l\xff\"}\n");
        data.extend_from_slice(b"[1,2]\n");
        data.extend_from_slice(format!("\"{}\"\n", "x".repeat(2000)).as_bytes());
        data.extend_from_slice(br#"{"type":"session_info","id":"i1","parentId":null,"name":"n"}"#);
        data.push(b'\n');
        data.extend_from_slice(br#"{"type":"label","id":"l2""#);
        let (events, stats) = read_transcript(&data[..], &context()).unwrap();
        assert_eq!(stats.quarantined, 5);
        let reasons: Vec<&str> = events
            .iter()
            .filter(|e| e.kind == EventKind::Quarantined)
            .map(|e| e.error.as_deref().unwrap())
            .collect();
        assert!(reasons[0].starts_with("malformed JSON"), "{reasons:?}");
        assert!(reasons[1].starts_with("invalid UTF-8"), "{reasons:?}");
        assert!(reasons[2].contains("not an object"), "{reasons:?}");
        assert!(reasons[3].contains("exceeds"), "{reasons:?}");
        assert!(reasons[4].starts_with("truncated last line"), "{reasons:?}");
        assert!(events.iter().any(|e| e.kind == EventKind::SessionInfo));
    }

    #[test]
    fn lines_sharing_an_entry_id_are_both_kept() {
        let data = format!(
            "{HEADER_V3}\n{}\n{}\n",
            r#"{"type":"label","id":"dup","parentId":null,"timestamp":"2026-01-01T00:00:01.000Z","label":"a"}"#,
            r#"{"type":"label","id":"dup","parentId":null,"timestamp":"2026-01-01T00:00:02.000Z","label":"b"}"#
        );
        let (events, stats) = read(&data);
        assert_eq!(stats.quarantined, 0);
        let labels: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::Label)
            .collect();
        assert_eq!(labels.len(), 2);
        assert_ne!(
            labels[0].event_id, labels[1].event_id,
            "duplicate ids never merge two lines"
        );
    }

    #[test]
    fn unknown_types_and_newer_versions_are_kept_and_reported() {
        let data = concat!(
            r#"{"type":"session","version":9,"id":"s9"}"#,
            "\n",
            r#"{"type":"hologram","id":"h","parentId":null,"timestamp":"2030-01-01T00:00:00Z"}"#,
            "\n"
        );
        let (events, stats) = read(data);
        assert!(stats.notes[0].contains("newer"), "{:?}", stats.notes);
        assert_eq!(stats.unknown_entries, 1);
        assert_eq!(events[1].kind, EventKind::Unknown);
        assert!(events[1].content.as_deref().unwrap().contains("hologram"));
    }

    mod conservation {
        use super::*;
        use proptest::prelude::*;

        /// One generated line and the events it must yield.
        #[derive(Debug, Clone)]
        enum Spec {
            User(String),
            Assistant {
                provider: &'static str,
                tool_calls: usize,
            },
            ToolResult {
                is_error: bool,
            },
            ModelChange,
            Custom,
            UnknownType,
            Malformed(String),
            NotUtf8(Vec<u8>),
            Blank,
        }

        impl Spec {
            fn expected(&self) -> (usize, usize) {
                // (events, quarantined)
                match self {
                    Spec::Assistant { tool_calls, .. } => (1 + tool_calls, 0),
                    Spec::Malformed(_) | Spec::NotUtf8(_) => (1, 1),
                    Spec::Blank => (0, 0),
                    _ => (1, 0),
                }
            }

            fn render(&self, n: usize) -> Vec<u8> {
                let id = format!("e{n}");
                let base = format!(
                    r#""id":"{id}","parentId":null,"timestamp":"2026-01-01T00:00:{:02}.000Z""#,
                    n % 60
                );
                match self {
                    Spec::User(text) => serde_json::json!({"type":"message","id":id,"parentId":null,
                        "message":{"role":"user","content":text}}).to_string().into_bytes(),
                    Spec::Assistant { provider, tool_calls } => {
                        let mut content = vec![serde_json::json!({"type":"text","text":"ok"})];
                        for i in 0..*tool_calls {
                            content.push(serde_json::json!({"type":"toolCall","id":format!("c{n}-{i}"),"name":"read","arguments":{"i":i}}));
                        }
                        serde_json::json!({"type":"message","id":id,"parentId":null,
                            "message":{"role":"assistant","provider":provider,"model":"m","content":content,
                            "usage":{"input":1,"output":2},"stopReason":"stop"}}).to_string().into_bytes()
                    }
                    Spec::ToolResult { is_error } => serde_json::json!({"type":"message","id":id,"parentId":null,
                        "message":{"role":"toolResult","toolCallId":"c","toolName":"read","content":[],"isError":is_error}})
                        .to_string().into_bytes(),
                    Spec::ModelChange => format!(r#"{{"type":"model_change",{base},"provider":"ollama","modelId":"q"}}"#).into_bytes(),
                    Spec::Custom => format!(r#"{{"type":"custom","customType":"x","data":{{"n":{n}}},{base}}}"#).into_bytes(),
                    Spec::UnknownType => format!(r#"{{"type":"future_thing",{base}}}"#).into_bytes(),
                    Spec::Malformed(tail) => format!("{{\"type\":\"message\",{tail}").into_bytes(),
                    Spec::NotUtf8(bytes) => {
                        let mut line = b"{\"type\":\"label\",\"label\":\"".to_vec();
                        line.push(0xff);
                        line.extend(bytes);
                        line.extend(b"\"}");
                        line
                    }
                    Spec::Blank => Vec::new(),
                }
            }
        }

        fn spec() -> impl Strategy<Value = Spec> {
            prop_oneof![
                any::<String>().prop_map(Spec::User),
                (
                    prop::sample::select(vec!["ollama", "anthropic", "openclaw", "custom-x"]),
                    0usize..6
                )
                    .prop_map(|(provider, tool_calls)| Spec::Assistant {
                        provider,
                        tool_calls
                    }),
                any::<bool>().prop_map(|is_error| Spec::ToolResult { is_error }),
                Just(Spec::ModelChange),
                Just(Spec::Custom),
                Just(Spec::UnknownType),
                "[a-z0-9:,\"]{0,40}".prop_map(Spec::Malformed),
                prop::collection::vec(b'a'..=b'z', 0..10).prop_map(Spec::NotUtf8),
                Just(Spec::Blank),
            ]
        }

        proptest! {
            #[test]
            fn every_line_is_accounted_for(specs in prop::collection::vec(spec(), 0..40)) {
                let mut data = HEADER_V3.as_bytes().to_vec();
                data.push(b'\n');
                for (n, spec) in specs.iter().enumerate() {
                    data.extend(spec.render(n));
                    data.push(b'\n');
                }
                let (events, stats) = read_transcript(&data[..], &context()).unwrap();
                let expected_events: usize = 1 + specs.iter().map(|s| s.expected().0).sum::<usize>();
                let expected_quarantined: usize = specs.iter().map(|s| s.expected().1).sum();
                prop_assert_eq!(events.len(), expected_events);
                prop_assert_eq!(stats.quarantined as usize, expected_quarantined);
                prop_assert_eq!(stats.lines as usize, specs.len() + 1);
                prop_assert_eq!(stats.bytes as usize, data.len());
                let ids: std::collections::HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
                prop_assert_eq!(ids.len(), events.len(), "ids are unique");
                let unknown = specs.iter().filter(|s| matches!(s, Spec::UnknownType)).count();
                prop_assert_eq!(stats.unknown_entries as usize, unknown);
                // Reading the same bytes again gives the same ids.
                let (again, _) = read_transcript(&data[..], &context()).unwrap();
                let again_ids: Vec<&str> = again.iter().map(|e| e.event_id.as_str()).collect();
                let first_ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
                prop_assert_eq!(first_ids, again_ids);
            }
        }
    }
}
