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

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use trajectory_schema::{Event, EventKind};

use crate::lines::{Line, Lines};
use crate::locality::locality_of_provider;

/// The `source` column value of events from this reader.
pub const SOURCE: &str = "openclaw_transcript";

/// The newest header version whose shape this reader knows.
pub const NEWEST_KNOWN_VERSION: i64 = 4;

/// Default cap on one line's size; longer lines are quarantined unread.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Tool-result statuses that mean the tool failed, whatever `isError` says.
const FAILED_TOOL_STATUSES: &[&str] = &[
    "error",
    "failed",
    "approval-unavailable",
    "denied",
    "timeout",
    "timed_out",
];

/// What a reader needs to know about the file besides its bytes.
#[derive(Debug, Clone)]
pub struct TranscriptContext {
    /// `file://` URI of the source, stored in `source_uri`.
    pub source_uri: String,
    /// Agent id from the path (`agents/<id>/sessions/`), if any.
    pub agent_id: Option<String>,
    /// Session id to use when the header is missing or has no `id` (the file stem).
    pub session_id_hint: String,
    pub ingest_id: String,
    pub ingested_at: DateTime<Utc>,
    /// Lines longer than this many bytes are quarantined.
    pub max_line_bytes: usize,
}

/// Counts from reading one transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranscriptStats {
    /// Physical lines, blank ones included.
    pub lines: u64,
    /// Bytes read (decompressed).
    pub bytes: u64,
    /// Events produced, quarantined lines included.
    pub events: u64,
    /// Lines that could not be read.
    pub quarantined: u64,
    /// Entries of an unknown `type` or `role`, kept as `unknown` events.
    pub unknown_entries: u64,
    /// Header version (1 when the header has none); `None` without a header.
    pub header_version: Option<i64>,
    /// The header version is newer than [`NEWEST_KNOWN_VERSION`].
    pub newer_version: bool,
    /// The first line is not a session header.
    pub missing_header: bool,
}

/// Reads a whole transcript.
///
/// Never fails on content: unreadable lines become `quarantined` events.
/// Errors: only an I/O error of `reader` (the events read so far are lost
/// with it, so the caller can report the file as failed and move on).
pub fn read_transcript<R: BufRead>(
    reader: R,
    context: &TranscriptContext,
) -> io::Result<(Vec<Event>, TranscriptStats)> {
    let mut state = TranscriptState::new(context);
    let mut events = Vec::new();
    for line in Lines::new(reader) {
        state.read_line(&line?, &mut events);
    }
    state.stats.events = events.len() as u64;
    Ok((events, state.stats))
}

/// Whether the first line of `first_line` is a session header.
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

struct TranscriptState<'a> {
    context: &'a TranscriptContext,
    stats: TranscriptStats,
    session_id: String,
    version: i64,
    /// Entries seen so far (header excluded): the next line's `seq`.
    seen_first_line: bool,
    /// Previous entry id, for v1 files where `parentId` is implicit.
    previous_entry_id: Option<String>,
    /// Last good timestamp, used when an entry has none.
    last_ts: Option<DateTime<Utc>>,
}

/// The parts of a line every event of it shares.
struct LineFacts<'l> {
    line: &'l Line,
    sha256: String,
    entry_id: Option<String>,
    parent_id: Option<String>,
    ts: DateTime<Utc>,
    raw: String,
}

impl<'a> TranscriptState<'a> {
    fn new(context: &'a TranscriptContext) -> TranscriptState<'a> {
        TranscriptState {
            context,
            stats: TranscriptStats::default(),
            session_id: context.session_id_hint.clone(),
            version: 1,
            seen_first_line: false,
            previous_entry_id: None,
            last_ts: None,
        }
    }

    fn read_line(&mut self, line: &Line, out: &mut Vec<Event>) {
        self.stats.lines += 1;
        self.stats.bytes += line.bytes.len() as u64 + u64::from(line.terminated);
        if line.bytes.iter().all(u8::is_ascii_whitespace) {
            if !line.terminated && !line.bytes.is_empty() {
                self.quarantine(
                    line,
                    "truncated last line (whitespace without newline)",
                    out,
                );
            }
            return;
        }
        if line.bytes.len() > self.context.max_line_bytes {
            let reason = format!(
                "line of {} bytes exceeds the {}-byte cap",
                line.bytes.len(),
                self.context.max_line_bytes
            );
            self.quarantine(line, &reason, out);
            return;
        }
        let text = match std::str::from_utf8(&line.bytes) {
            Ok(text) => text,
            Err(e) => {
                let reason = format!("invalid UTF-8 at byte {}", e.valid_up_to());
                self.quarantine(line, &reason, out);
                return;
            }
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                let reason = if line.terminated {
                    format!("malformed JSON: {e}")
                } else {
                    format!("truncated last line (no newline): {e}")
                };
                self.quarantine(line, &reason, out);
                return;
            }
        };
        let Value::Object(entry) = value else {
            self.quarantine(line, "line is JSON but not an object", out);
            return;
        };
        let first_line = !self.seen_first_line;
        self.seen_first_line = true;
        let entry_type = entry.get("type").and_then(Value::as_str).unwrap_or("");
        if entry_type == "session" && first_line {
            self.read_header(line, text, &entry, out);
            return;
        }
        if first_line {
            self.stats.missing_header = true;
        }
        self.read_entry(line, text, entry_type, &entry, out);
    }

    fn read_header(
        &mut self,
        line: &Line,
        text: &str,
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
        self.stats.header_version = Some(self.version);
        self.stats.newer_version = self.version > NEWEST_KNOWN_VERSION;
        let facts = self.facts(line, text, header, Some("session".to_string()), None);
        let mut event = self.event(EventKind::SessionStart, &facts, "");
        event.provider = str_field(header, "provider");
        event.model = str_field(header, "modelId");
        event.content = Some(Value::Object(header.clone()).to_string());
        out.push(event);
    }

    fn read_entry(
        &mut self,
        line: &Line,
        text: &str,
        entry_type: &str,
        entry: &Map<String, Value>,
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
                Some(format!("v1-{}", line.number)),
                self.previous_entry_id.clone(),
            )
        };
        self.previous_entry_id = entry_id.clone();
        let facts = self.facts(line, text, entry, entry_id, parent_id);
        match entry_type {
            "message" => self.read_message(&facts, entry, out),
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
                let content = entry.get("content").cloned().unwrap_or(Value::Null);
                event.text = plain_text(&content);
                event.content =
                    Some(without_image_bytes(&Value::Object(entry.clone())).to_string());
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

    fn read_message(
        &mut self,
        facts: &LineFacts<'_>,
        entry: &Map<String, Value>,
        out: &mut Vec<Event>,
    ) {
        let Some(Value::Object(message)) = entry.get("message") else {
            out.push(self.unknown_event(facts, entry));
            return;
        };
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let content = message.get("content").cloned().unwrap_or(Value::Null);
        match role {
            "user" => {
                let mut event = self.event(EventKind::UserMessage, facts, "");
                event.role = Some("user".into());
                event.text = plain_text(&content);
                event.content = Some(without_image_bytes(&content).to_string());
                out.push(event);
            }
            "assistant" => self.read_assistant(facts, message, &content, out),
            "toolResult" => {
                let mut event = self.event(EventKind::ToolResult, facts, "");
                event.role = Some("toolResult".into());
                event.text = plain_text(&content);
                event.content = Some(without_image_bytes(&content).to_string());
                event.tool_call_id = str_field(message, "toolCallId");
                event.tool_name = str_field(message, "toolName");
                let is_error = message.get("isError").and_then(Value::as_bool);
                let status = tool_status(message, is_error, event.text.as_deref());
                event.tool_is_error = Some(
                    is_error.unwrap_or(false) || FAILED_TOOL_STATUSES.contains(&status.as_str()),
                );
                event.error = message
                    .get("details")
                    .and_then(|d| d.get("error"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                event.tool_status = Some(status);
                out.push(event);
            }
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
                event.text = plain_text(&content);
                event.content =
                    Some(without_image_bytes(&Value::Object(message.clone())).to_string());
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

    fn read_assistant(
        &mut self,
        facts: &LineFacts<'_>,
        message: &Map<String, Value>,
        content: &Value,
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
        event.text = plain_text(content);
        event.content = Some(without_image_bytes(content).to_string());
        event.stop_reason = str_field(message, "stopReason");
        event.error = str_field(message, "errorMessage");
        if let Some(Value::Object(usage)) = message.get("usage") {
            event.input_tokens = usage.get("input").and_then(as_tokens);
            event.output_tokens = usage.get("output").and_then(as_tokens);
            event.cache_read_tokens = usage.get("cacheRead").and_then(as_tokens);
            event.cache_write_tokens = usage.get("cacheWrite").and_then(as_tokens);
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
            let mut call = self.event(EventKind::ToolCall, facts, &format!("toolCall:{index}"));
            call.raw = None;
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
        self.stats.unknown_entries += 1;
        let mut event = self.event(EventKind::Unknown, facts, "");
        event.role = entry
            .get("message")
            .and_then(|m| m.get("role"))
            .and_then(Value::as_str)
            .map(str::to_string);
        event.content = Some(without_image_bytes(&Value::Object(entry.clone())).to_string());
        event
    }

    /// Facts shared by every event of a good line.
    fn facts<'l>(
        &mut self,
        line: &'l Line,
        text: &str,
        entry: &Map<String, Value>,
        entry_id: Option<String>,
        parent_id: Option<String>,
    ) -> LineFacts<'l> {
        let ts = entry_time(entry)
            .or(self.last_ts)
            .unwrap_or(self.context.ingested_at);
        self.last_ts = Some(ts);
        LineFacts {
            line,
            sha256: sha256_hex(&line.bytes),
            entry_id,
            parent_id,
            ts,
            raw: text.to_string(),
        }
    }

    /// An event of a good line; `part` tells apart the events of one line.
    fn event(&self, kind: EventKind, facts: &LineFacts<'_>, part: &str) -> Event {
        let agent = self.context.agent_id.as_deref().unwrap_or("");
        let entry = facts.entry_id.as_deref().unwrap_or("");
        let id = event_id(&[SOURCE, agent, &self.session_id, entry, &facts.sha256, part]);
        let mut event = Event::new(
            id,
            facts.ts,
            kind,
            SOURCE,
            &self.context.ingest_id,
            self.context.ingested_at,
        );
        event.agent_id = self.context.agent_id.clone();
        event.session_id = Some(self.session_id.clone());
        event.entry_id = facts.entry_id.clone();
        event.parent_id = facts.parent_id.clone();
        event.seq = Some(facts.line.number as i64 - 1);
        event.source_uri = Some(self.context.source_uri.clone());
        event.source_offset = Some(facts.line.offset as i64);
        event.source_line = Some(facts.line.number as i64);
        event.line_sha256 = Some(facts.sha256.clone());
        event.raw = Some(facts.raw.clone());
        event
    }

    fn quarantine(&mut self, line: &Line, reason: &str, out: &mut Vec<Event>) {
        self.stats.quarantined += 1;
        let sha256 = sha256_hex(&line.bytes);
        let offset = line.offset.to_string();
        let id = event_id(&["quarantine", &self.context.source_uri, &offset, &sha256]);
        let ts = self.last_ts.unwrap_or(self.context.ingested_at);
        let mut event = Event::new(
            id,
            ts,
            EventKind::Quarantined,
            SOURCE,
            &self.context.ingest_id,
            self.context.ingested_at,
        );
        event.agent_id = self.context.agent_id.clone();
        event.session_id = Some(self.session_id.clone());
        event.seq = Some(line.number as i64 - 1);
        event.error = Some(reason.to_string());
        event.source_uri = Some(self.context.source_uri.clone());
        event.source_offset = Some(line.offset as i64);
        event.source_line = Some(line.number as i64);
        event.line_sha256 = Some(sha256);
        event.raw = Some(String::from_utf8_lossy(&line.bytes).into_owned());
        out.push(event);
    }
}

/// Deterministic event id: blake3 over the parts joined by NUL, first 128 bits as hex.
pub fn event_id(parts: &[&str]) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    hex::encode(&hasher.finalize().as_bytes()[..16])
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn str_field(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_string)
}

fn as_tokens(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_f64().map(|f| f as i64))
}

/// The entry's time: ISO `timestamp`, else `message.timestamp` / `data.timestamp` (epoch ms).
fn entry_time(entry: &Map<String, Value>) -> Option<DateTime<Utc>> {
    if let Some(ts) = entry.get("timestamp").and_then(Value::as_str) {
        if let Ok(parsed) = DateTime::parse_from_rfc3339(ts) {
            return Some(parsed.with_timezone(&Utc));
        }
    }
    ["message", "data"]
        .iter()
        .filter_map(|key| entry.get(*key)?.get("timestamp")?.as_f64())
        .chain(entry.get("timestamp").and_then(Value::as_f64))
        .find_map(|ms| Utc.timestamp_micros((ms * 1000.0) as i64).single())
}

/// Plain text of a content value: a string, or the `text` blocks of an array
/// joined by newlines (thinking, tool calls and images excluded).
fn plain_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

/// A copy of `value` where every `{"type":"image","data":<base64>}` block has
/// its `data` replaced by `{"sha256": …, "bytes": …}` of the base64 text.
fn without_image_bytes(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(without_image_bytes).collect()),
        Value::Object(object) => {
            let is_image = object.get("type").and_then(Value::as_str) == Some("image");
            let mut copy = Map::with_capacity(object.len());
            for (key, item) in object {
                match (is_image, key.as_str(), item) {
                    (true, "data", Value::String(data)) => {
                        copy.insert(
                            "data".into(),
                            serde_json::json!({
                                "sha256": sha256_hex(data.as_bytes()),
                                "bytes": data.len(),
                            }),
                        );
                    }
                    _ => {
                        copy.insert(key.clone(), without_image_bytes(item));
                    }
                }
            }
            Value::Object(copy)
        }
        other => other.clone(),
    }
}

/// A tool result's status: `details.status` when present (OpenClaw reports
/// failures there with `isError:false`), else `error` when `isError` is true
/// or the text is a JSON object with `"status":"error"`, else `ok`.
fn tool_status(message: &Map<String, Value>, is_error: Option<bool>, text: Option<&str>) -> String {
    if let Some(status) = message
        .get("details")
        .and_then(|d| d.get("status"))
        .and_then(Value::as_str)
    {
        return status.to_string();
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

    fn context() -> TranscriptContext {
        TranscriptContext {
            source_uri: "file:///t/s.jsonl".into(),
            agent_id: Some("main".into()),
            session_id_hint: "s".into(),
            ingest_id: "ing".into(),
            ingested_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            max_line_bytes: 1024,
        }
    }

    fn read(data: &str) -> (Vec<Event>, TranscriptStats) {
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
        assert_eq!(stats.header_version, Some(3));
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
        assert_eq!(stats.header_version, Some(1));
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
    fn unknown_types_and_newer_versions_are_kept_and_reported() {
        let data = concat!(
            r#"{"type":"session","version":9,"id":"s9"}"#,
            "\n",
            r#"{"type":"hologram","id":"h","parentId":null,"timestamp":"2030-01-01T00:00:00Z"}"#,
            "\n"
        );
        let (events, stats) = read(data);
        assert!(stats.newer_version);
        assert_eq!(stats.unknown_entries, 1);
        assert_eq!(events[1].kind, EventKind::Unknown);
        assert!(events[1].content.as_deref().unwrap().contains("hologram"));
    }

    #[test]
    fn image_bytes_are_replaced_by_a_reference() {
        let value: Value =
            serde_json::json!([{"type":"image","data":"aGVsbG8=","mimeType":"image/png"}]);
        let clean = without_image_bytes(&value);
        assert_eq!(clean[0]["data"]["bytes"], 8);
        assert_eq!(clean[0]["data"]["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(clean[0]["mimeType"], "image/png");
    }
}
