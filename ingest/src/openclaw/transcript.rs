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

use std::borrow::Cow;
use std::io::{self, BufRead};
use std::ops::Range;

use chrono::{DateTime, Utc};
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Number;
use serde_json::{Map, Value};
use trajectory_schema::{Event, EventKind};

use crate::content::{
    image_free_json, image_free_object_json, plain_text, take_plain_text, without_image_bytes,
};
use crate::json_spans;
use crate::jsonl::{
    int_field, line_part_event, parse_time, read_jsonl, str_field, time_of_millis, time_of_text,
    LineParser, LineRecord, ReadStats, SourceContext,
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
    /// Whether message lines are read from their text when they can be
    /// ([`LineParser::parse_text`]); off only to compare the two paths.
    typed_messages: bool,
    /// Lines read from their text.
    typed_lines: u64,
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

    fn parse_text(&mut self, record: &LineRecord<'_>, out: &mut Vec<Event>) -> bool {
        if !self.seen_first_line || !self.typed_messages {
            return false;
        }
        let read = self.read_typed_message(record, out);
        self.typed_lines += u64::from(read);
        read
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
            typed_messages: true,
            typed_lines: 0,
        }
    }

    /// This parser reading every line through its JSON tree, as a reference
    /// for the text path ([`LineParser::parse_text`]) in tests and benches.
    pub fn tree_only(mut self) -> TranscriptParser<'a> {
        self.typed_messages = false;
        self
    }

    /// How many lines were read from their text without a JSON tree.
    pub fn typed_lines(&self) -> u64 {
        self.typed_lines
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
        let (entry_id, parent_id) = self.entry_ids(
            record,
            str_field(entry, "id"),
            entry
                .get("parentId")
                .and_then(Value::as_str)
                .map(str::to_string),
        );
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
        if let Some(role) = MessageRole::of(&role) {
            let parts = MessageParts::of_tree(role, message);
            self.push_message(facts, parts, out);
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

    /// Reads a user, assistant or tool-result `message` line from its text
    /// (see [`LineParser::parse_text`]): the entry's fields are deserialised
    /// into borrowed, typed structs and `content` (and each tool call's
    /// block and arguments) is copied from the line instead of parsed into
    /// a tree and serialised again, when that gives the same bytes
    /// ([`json_spans::serialises_unchanged`]) and it holds no image. The
    /// events are the ones [`Self::parse`] makes of the same line; any line
    /// this path does not cover exactly (another entry type or role, a field
    /// of an unexpected type, a repeated field, an image, whitespace or a
    /// fraction in `content`, no timestamp on the entry or message) is
    /// declined before anything changes.
    fn read_typed_message(&mut self, record: &LineRecord<'_>, out: &mut Vec<Event>) -> bool {
        let text = record.text;
        // The typed structs skip the fields they do not read, and skipping
        // checks less than the tree parse (lone surrogates, out-of-range
        // numbers, depth): such lines go to the tree path, which quarantines.
        if !text.starts_with('{') || !json_spans::within_tree_limits(text) {
            return false;
        }
        let Ok(TypedEntry {
            entry_type,
            id,
            parent_id,
            timestamp,
            message: Some(message),
        }) = serde_json::from_str::<TypedEntry<'_>>(text)
        else {
            return false;
        };
        let Some(role) = message.role.as_deref().and_then(MessageRole::of) else {
            return false;
        };
        if entry_type != "message" {
            return false;
        }
        let ts = timestamp
            .as_ref()
            .and_then(Time::utc)
            .or_else(|| message.timestamp.as_ref().and_then(Time::utc));
        if ts.is_none() {
            // The tree path would look at `data.timestamp` too.
            return false;
        }
        let Some(message_span) = json_spans::member(text, 0..text.len(), "message") else {
            return false;
        };
        let Some(parts) = MessageParts::of_text(role, message, text, message_span) else {
            return false;
        };
        let (entry_id, parent_id) = self.entry_ids(
            record,
            id.map(Cow::into_owned),
            parent_id.map(Cow::into_owned),
        );
        let facts = self.facts_at(record, ts, entry_id, parent_id);
        self.push_message(&facts, parts, out);
        true
    }

    /// The events of a user, assistant or tool-result message.
    fn push_message(&self, facts: &LineFacts<'_>, parts: MessageParts, out: &mut Vec<Event>) {
        match parts.role {
            MessageRole::User => {
                let mut event = self.event(EventKind::UserMessage, facts, "");
                event.role = Some("user".into());
                event.text = parts.text;
                event.content = Some(parts.content_json);
                out.push(event);
            }
            MessageRole::Assistant => self.push_assistant(facts, parts, out),
            MessageRole::ToolResult => {
                let mut event = self.event(EventKind::ToolResult, facts, "");
                event.role = Some("toolResult".into());
                event.tool_call_id = parts.tool_call_id;
                event.tool_name = parts.tool_name;
                let status = tool_status(&parts.details, parts.is_error, parts.text.as_deref());
                event.tool_is_error = Some(
                    parts.is_error.unwrap_or(false)
                        || FAILED_TOOL_STATUSES.contains(&status.as_str()),
                );
                event.error = parts.details.error;
                event.tool_status = Some(status);
                event.text = parts.text;
                event.content = Some(parts.content_json);
                out.push(event);
            }
        }
    }

    /// An `assistant` message: an `llm_call` (or `injected_message`) and one
    /// `tool_call` per `toolCall` block.
    fn push_assistant(&self, facts: &LineFacts<'_>, parts: MessageParts, out: &mut Vec<Event>) {
        let kind = if parts.provider.as_deref() == Some("openclaw") {
            EventKind::InjectedMessage
        } else {
            EventKind::LlmCall
        };
        let mut event = self.event(kind, facts, "");
        event.role = Some("assistant".into());
        event.locality = parts.provider.as_deref().map(locality_of_provider);
        event.provider = parts.provider;
        event.model = parts.model;
        event.api = parts.api;
        event.text = parts.text;
        event.content = Some(parts.content_json);
        event.stop_reason = parts.stop_reason;
        event.error = parts.error_message;
        if let Some(usage) = parts.usage {
            event.input_tokens = usage.input;
            event.output_tokens = usage.output;
            event.cache_read_tokens = usage.cache_read;
            event.cache_write_tokens = usage.cache_write;
            event.cost_usd = usage.cost;
        }
        // message.timestamp is the request start (epoch ms); the entry
        // timestamp is the append time, so their difference is the latency.
        event.latency_ms = parts
            .request_start_ms
            .and_then(|start| facts.ts.timestamp_millis().checked_sub(start as i64))
            .filter(|ms| *ms >= 0);
        let calls: Vec<Event> = parts
            .tool_calls
            .into_iter()
            .map(|part| {
                let mut call = self.part_event(
                    EventKind::ToolCall,
                    facts,
                    &format!("toolCall:{}", part.index),
                );
                call.role = Some("assistant".into());
                call.provider = event.provider.clone();
                call.model = event.model.clone();
                call.api = event.api.clone();
                call.locality = event.locality;
                call.tool_call_id = part.id;
                call.tool_name = part.name;
                call.tool_args = Some(part.arguments);
                call.content = Some(part.block_json);
                call
            })
            .collect();
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

    /// The entry id and parent id of an entry whose `id` and `parentId`
    /// are `id` and `parent` (strings): as written from version 2 on; in v1
    /// files `v1-<line number>` and the previous entry.
    fn entry_ids(
        &mut self,
        record: &LineRecord<'_>,
        id: Option<String>,
        parent: Option<String>,
    ) -> (Option<String>, Option<String>) {
        let (entry_id, parent_id) = if self.version >= 2 {
            (id, parent)
        } else {
            (
                Some(format!("v1-{}", record.line.number)),
                self.previous_entry_id.clone(),
            )
        };
        self.previous_entry_id = entry_id.clone();
        (entry_id, parent_id)
    }

    /// Facts shared by every event of a good line.
    fn facts<'l>(
        &mut self,
        record: &'l LineRecord<'l>,
        entry: &Map<String, Value>,
        entry_id: Option<String>,
        parent_id: Option<String>,
    ) -> LineFacts<'l> {
        self.facts_at(record, entry_time(entry), entry_id, parent_id)
    }

    /// [`Self::facts`] of an entry whose time is `entry_time`: the last good
    /// time when it has none, else the ingest's.
    fn facts_at<'l>(
        &mut self,
        record: &'l LineRecord<'l>,
        entry_time: Option<DateTime<Utc>>,
        entry_id: Option<String>,
        parent_id: Option<String>,
    ) -> LineFacts<'l> {
        let ts = entry_time
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

/// The three message roles whose events [`MessageParts`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageRole {
    User,
    Assistant,
    ToolResult,
}

impl MessageRole {
    fn of(role: &str) -> Option<MessageRole> {
        match role {
            "user" => Some(MessageRole::User),
            "assistant" => Some(MessageRole::Assistant),
            "toolResult" => Some(MessageRole::ToolResult),
            _ => None,
        }
    }
}

/// What the events of a user, assistant or tool-result message are made
/// of, read from the line's JSON tree ([`MessageParts::of_tree`]) or from its
/// text ([`MessageParts::of_text`]); fields other than the role's stay `None`.
struct MessageParts {
    role: MessageRole,
    /// Plain text of the content (text blocks joined by `\n`).
    text: Option<String>,
    /// `content` as compact JSON, image bytes replaced.
    content_json: String,
    provider: Option<String>,
    model: Option<String>,
    api: Option<String>,
    stop_reason: Option<String>,
    error_message: Option<String>,
    usage: Option<Usage>,
    /// `message.timestamp` (epoch ms) of an assistant message: the request start.
    request_start_ms: Option<f64>,
    tool_call_id: Option<String>,
    tool_name: Option<String>,
    is_error: Option<bool>,
    details: ToolDetails,
    tool_calls: Vec<ToolCallPart>,
}

/// An assistant message's `usage`.
struct Usage {
    input: Option<i64>,
    output: Option<i64>,
    cache_read: Option<i64>,
    cache_write: Option<i64>,
    /// `cost.total`, USD.
    cost: Option<f64>,
}

impl Usage {
    fn of(usage: &Map<String, Value>) -> Usage {
        Usage {
            input: int_field(usage, "input"),
            output: int_field(usage, "output"),
            cache_read: int_field(usage, "cacheRead"),
            cache_write: int_field(usage, "cacheWrite"),
            cost: usage
                .get("cost")
                .and_then(|c| c.get("total"))
                .and_then(Value::as_f64),
        }
    }
}

/// The parts of a tool result's `details` its event reads.
#[derive(Default)]
struct ToolDetails {
    status: Option<String>,
    exit_code: Option<i64>,
    error: Option<String>,
}

impl ToolDetails {
    fn of(details: Option<&Value>) -> ToolDetails {
        let string = |key: &str| {
            details
                .and_then(|d| d.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        ToolDetails {
            status: string("status"),
            exit_code: details
                .and_then(|d| d.get("exitCode"))
                .and_then(Value::as_i64),
            error: string("error"),
        }
    }
}

/// One `toolCall` block of an assistant message.
struct ToolCallPart {
    /// Position of the block in `content`.
    index: usize,
    id: Option<String>,
    name: Option<String>,
    /// `arguments`: a string as it is, anything else as JSON, `{}` when absent.
    arguments: String,
    /// The block as JSON.
    block_json: String,
}

impl MessageParts {
    fn new(role: MessageRole, text: Option<String>, content_json: String) -> MessageParts {
        MessageParts {
            role,
            text,
            content_json,
            provider: None,
            model: None,
            api: None,
            stop_reason: None,
            error_message: None,
            usage: None,
            request_start_ms: None,
            tool_call_id: None,
            tool_name: None,
            is_error: None,
            details: ToolDetails::default(),
            tool_calls: Vec::new(),
        }
    }

    /// The parts of a message object; its content's text is moved out.
    fn of_tree(role: MessageRole, message: &mut Map<String, Value>) -> MessageParts {
        let mut content = message
            .get_mut("content")
            .map(std::mem::take)
            .unwrap_or(Value::Null);
        let content_json = image_free_json(&content);
        let text = take_plain_text(&mut content);
        let message: &Map<String, Value> = message;
        let mut parts = MessageParts::new(role, text, content_json);
        match role {
            MessageRole::User => {}
            MessageRole::Assistant => {
                parts.provider = str_field(message, "provider");
                parts.model = str_field(message, "model");
                parts.api = str_field(message, "api");
                parts.stop_reason = str_field(message, "stopReason");
                parts.error_message = str_field(message, "errorMessage");
                if let Some(Value::Object(usage)) = message.get("usage") {
                    parts.usage = Some(Usage::of(usage));
                }
                parts.request_start_ms = message.get("timestamp").and_then(Value::as_f64);
                let blocks: &[Value] = content.as_array().map(Vec::as_slice).unwrap_or(&[]);
                for (index, block) in blocks.iter().enumerate() {
                    if block.get("type").and_then(Value::as_str) != Some("toolCall") {
                        continue;
                    }
                    let string =
                        |key: &str| block.get(key).and_then(Value::as_str).map(str::to_string);
                    parts.tool_calls.push(ToolCallPart {
                        index,
                        id: string("id"),
                        name: string("name"),
                        arguments: match block.get("arguments") {
                            Some(Value::String(s)) => s.clone(),
                            Some(args) => args.to_string(),
                            None => "{}".to_string(),
                        },
                        block_json: block.to_string(),
                    });
                }
            }
            MessageRole::ToolResult => {
                parts.tool_call_id = str_field(message, "toolCallId");
                parts.tool_name = str_field(message, "toolName");
                parts.is_error = message.get("isError").and_then(Value::as_bool);
                parts.details = ToolDetails::of(message.get("details"));
            }
        }
        parts
    }

    /// The parts of `message`, the typed view of the object spanning
    /// `message_span` in `line`, with `content` (and each tool call's block
    /// and arguments) copied from the line. `None` when the copy would not
    /// be what [`Self::of_tree`] writes: an image, bytes serde_json would
    /// write differently, content that is not a string, an array of
    /// objects or null.
    fn of_text(
        role: MessageRole,
        message: TypedMessage<'_>,
        line: &str,
        message_span: Range<usize>,
    ) -> Option<MessageParts> {
        if !line[message_span.clone()].starts_with('{') {
            return None;
        }
        let mut texts: Vec<Cow<'_, str>> = Vec::new();
        let mut tool_calls = Vec::new();
        let content_json = if message.content.0 {
            let span = json_spans::member(line, message_span, "content")?;
            let content = &line[span.clone()];
            if !json_spans::serialises_unchanged_without(content, Some("image")) {
                return None;
            }
            match content.as_bytes().first()? {
                b'"' => texts.push(Cow::Owned(serde_json::from_str::<String>(content).ok()?)),
                b'[' => {
                    for (index, span) in json_spans::elements(line, span)?.into_iter().enumerate() {
                        let json = &line[span.clone()];
                        if !json.starts_with('{') {
                            return None;
                        }
                        let block = serde_json::from_str::<TypedBlock<'_>>(json).ok()?;
                        match block.block_type.as_deref() {
                            Some("text") => texts.extend(block.text),
                            Some("toolCall") if role == MessageRole::Assistant => {
                                let arguments = if block.arguments.0 {
                                    let args = &line[json_spans::member(line, span, "arguments")?];
                                    if args.starts_with('"') {
                                        serde_json::from_str::<String>(args).ok()?
                                    } else {
                                        args.to_string()
                                    }
                                } else {
                                    "{}".to_string()
                                };
                                tool_calls.push(ToolCallPart {
                                    index,
                                    id: block.id.map(Cow::into_owned),
                                    name: block.name.map(Cow::into_owned),
                                    arguments,
                                    block_json: json.to_string(),
                                });
                            }
                            _ => {}
                        }
                    }
                }
                b'n' => {}
                _ => return None,
            }
            content.to_string()
        } else {
            "null".to_string()
        };
        let text = match texts.len() {
            0 => None,
            1 => texts.pop().map(Cow::into_owned),
            _ => Some(texts.join("\n")),
        };
        let owned = |s: Option<Cow<'_, str>>| s.map(Cow::into_owned);
        let mut parts = MessageParts::new(role, text, content_json);
        match role {
            MessageRole::User => {}
            MessageRole::Assistant => {
                parts.provider = owned(message.provider);
                parts.model = owned(message.model);
                parts.api = owned(message.api);
                parts.stop_reason = owned(message.stop_reason);
                parts.error_message = owned(message.error_message);
                parts.usage = message.usage.map(|ObjectOf(usage)| Usage {
                    input: usage.input.as_ref().and_then(whole_number),
                    output: usage.output.as_ref().and_then(whole_number),
                    cache_read: usage.cache_read.as_ref().and_then(whole_number),
                    cache_write: usage.cache_write.as_ref().and_then(whole_number),
                    cost: usage
                        .cost
                        .and_then(|ObjectOf(cost)| cost.total)
                        .and_then(|total| total.as_f64()),
                });
                parts.request_start_ms = match message.timestamp {
                    Some(Time::Millis(ms)) => Some(ms),
                    _ => None,
                };
                parts.tool_calls = tool_calls;
            }
            MessageRole::ToolResult => {
                parts.tool_call_id = owned(message.tool_call_id);
                parts.tool_name = owned(message.tool_name);
                parts.is_error = message.is_error;
                if let Some(ObjectOf(details)) = message.details {
                    parts.details = ToolDetails {
                        status: details.status.map(Cow::into_owned),
                        exit_code: details.exit_code.and_then(|code| code.as_i64()),
                        error: details.error.map(Cow::into_owned),
                    };
                }
            }
        }
        Some(parts)
    }
}

/// The fields of a line [`TranscriptParser::read_typed_message`] reads; the
/// others are skipped unread. A field of another type than declared, or
/// given twice, fails the deserialisation and the line takes the tree path.
#[derive(Deserialize)]
struct TypedEntry<'a> {
    #[serde(rename = "type", borrow)]
    entry_type: Cow<'a, str>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "parentId", borrow)]
    parent_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<Time<'a>>,
    #[serde(borrow)]
    message: Option<TypedMessage<'a>>,
}

/// The `message` of a [`TypedEntry`]; `content` is only noted (copied from
/// the line's text by [`MessageParts::of_text`]).
#[derive(Deserialize)]
struct TypedMessage<'a> {
    #[serde(borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default)]
    content: Seen,
    #[serde(borrow)]
    provider: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    api: Option<Cow<'a, str>>,
    #[serde(rename = "stopReason", borrow)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(rename = "errorMessage", borrow)]
    error_message: Option<Cow<'a, str>>,
    #[serde(rename = "toolCallId", borrow)]
    tool_call_id: Option<Cow<'a, str>>,
    #[serde(rename = "toolName", borrow)]
    tool_name: Option<Cow<'a, str>>,
    usage: Option<ObjectOf<TypedUsage>>,
    #[serde(borrow)]
    timestamp: Option<Time<'a>>,
    #[serde(rename = "isError")]
    is_error: Option<bool>,
    #[serde(borrow)]
    details: Option<ObjectOf<TypedDetails<'a>>>,
}

/// An assistant message's `usage`, as the tree path reads it: numbers only.
#[derive(Deserialize)]
struct TypedUsage {
    input: Option<Number>,
    output: Option<Number>,
    #[serde(rename = "cacheRead")]
    cache_read: Option<Number>,
    #[serde(rename = "cacheWrite")]
    cache_write: Option<Number>,
    cost: Option<ObjectOf<TypedCost>>,
}

/// `usage.cost`.
#[derive(Deserialize)]
struct TypedCost {
    total: Option<Number>,
}

/// A tool result's `details`, the fields its event reads.
#[derive(Deserialize)]
struct TypedDetails<'a> {
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(rename = "exitCode")]
    exit_code: Option<Number>,
    #[serde(borrow)]
    error: Option<Cow<'a, str>>,
}

/// [`int_field`] of a number: integers as they are, floats truncated.
fn whole_number(number: &Number) -> Option<i64> {
    number
        .as_i64()
        .or_else(|| number.as_f64().map(|f| f as i64))
}

/// A `timestamp` field without a tree: text (ISO-8601), epoch milliseconds,
/// or anything else (which [`parse_time`] reads as no time).
enum Time<'a> {
    Text(Cow<'a, str>),
    Millis(f64),
    Other,
}

impl Time<'_> {
    /// [`parse_time`] of the same value.
    fn utc(&self) -> Option<DateTime<Utc>> {
        match self {
            Time::Text(text) => time_of_text(text),
            Time::Millis(ms) => time_of_millis(*ms),
            Time::Other => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Time<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Time<'a>, D::Error> {
        struct TimeVisitor;
        impl<'de> Visitor<'de> for TimeVisitor {
            type Value = Time<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Time<'de>, E> {
                Ok(Time::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Time<'de>, E> {
                Ok(Time::Text(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Time<'de>, E> {
                Ok(Time::Millis(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Time<'de>, E> {
                Ok(Time::Millis(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Time<'de>, E> {
                Ok(Time::Millis(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Time<'de>, E> {
                Ok(Time::Other)
            }
            fn visit_unit<E>(self) -> Result<Time<'de>, E> {
                Ok(Time::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Time<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Time::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Time<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Time::Other)
            }
        }
        deserializer.deserialize_any(TimeVisitor)
    }
}

/// A struct read from a JSON object only: serde's derived structs also take
/// an array (fields by position), which the tree path reads as no object.
struct ObjectOf<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOf<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ObjectOf<T>, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectVisitor(std::marker::PhantomData))
            .map(ObjectOf)
    }
}

/// A content block as [`MessageParts::of_text`] reads it.
#[derive(Deserialize)]
struct TypedBlock<'a> {
    #[serde(rename = "type", borrow)]
    block_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    arguments: Seen,
}

/// Whether a field is present (`null` included); its value is skipped.
#[derive(Default)]
struct Seen(bool);

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Seen, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Seen(true))
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
fn tool_status(details: &ToolDetails, is_error: Option<bool>, text: Option<&str>) -> String {
    let exit_code = details.exit_code;
    if let Some(status) = details.status.as_deref() {
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

    /// Reads `data` through the text path and through the tree path only;
    /// asserts both give the same events and stats and returns how many
    /// lines the text path took.
    fn read_both_ways(data: &[u8], context: &SourceContext) -> u64 {
        let mut typed = TranscriptParser::new(context);
        let (events, stats) = read_jsonl(data, context, &mut typed).unwrap();
        let mut tree = TranscriptParser::new(context).tree_only();
        let (tree_events, tree_stats) = read_jsonl(data, context, &mut tree).unwrap();
        assert_eq!(tree.typed_lines(), 0);
        assert_eq!(stats, tree_stats, "{}", context.source_uri);
        assert_eq!(events.len(), tree_events.len(), "{}", context.source_uri);
        for (a, b) in events.iter().zip(&tree_events) {
            assert_eq!(a, b, "{} line {:?}", context.source_uri, a.source_line);
        }
        typed.typed_lines()
    }

    #[test]
    fn the_text_path_declines_what_it_cannot_copy_exactly_and_matches_the_tree_path() {
        let entry = |message: &str| {
            format!(
                r#"{{"type":"message","id":"m","parentId":"p","timestamp":"2026-01-01T00:00:01.000Z","message":{message}}}"#
            )
        };
        // (message, taken by the text path)
        let cases: &[(&str, bool)] = &[
            (
                r#"{"role":"user","content":[{"type":"text","text":"hi"}]}"#,
                true,
            ),
            (
                r#"{"role":"user","content":"a \"quoted\"\nline \\ \u0007"}"#,
                true,
            ),
            (r#"{"role":"user","content":null}"#, true),
            (r#"{"role":"user"}"#, true),
            (r#"{"role":"user","content":[]}"#, true),
            (
                r#"{"role":"user","content":[{"type":"text","text":"a"},{"type":"thinking","thinking":"t"},{"type":"text","text":"b"}]}"#,
                true,
            ),
            (
                r#"{"role":"assistant","content":[{"type":"toolCall","id":"c1","name":"exec","arguments":{"command":"ls","n":3}},{"type":"toolCall","id":"c2","name":"x","arguments":null},{"type":"toolCall","id":"c3","name":"y"},{"type":"toolCall","id":"c4","name":"z","arguments":"{\"raw\":true}"}],"provider":"ollama","model":"m","usage":{"input":3,"output":4.7,"cost":{"total":0.5}},"stopReason":"toolUse","timestamp":1767225600500}"#,
                true,
            ),
            (
                r#"{"role":"assistant","content":[{"type":"text","text":"x"}],"provider":"openclaw","errorMessage":null,"usage":null}"#,
                true,
            ),
            (
                r#"{"role":"assistant","content":"x","usage":"none"}"#,
                false,
            ),
            (
                r#"{"role":"assistant","content":"x","usage":[1,2,3,4]}"#,
                false,
            ),
            (
                r#"{"role":"assistant","content":"x","usage":{"input":"3"}}"#,
                false,
            ),
            (
                r#"{"role":"assistant","content":"x","usage":{"input":1e2,"cost":{"total":7}},"timestamp":1767225600000.5}"#,
                true,
            ),
            (
                r#"{"role":"toolResult","toolCallId":"c1","toolName":"exec","content":[{"type":"text","text":"{\"status\":\"error\"}"}],"details":{"status":"completed","exitCode":2,"error":"boom"},"isError":false}"#,
                true,
            ),
            (
                r#"{"role":"toolResult","toolCallId":"c1","content":[{"type":"text","text":"ok"}],"details":{"exitCode":1.5,"status":null},"isError":null}"#,
                true,
            ),
            (
                r#"{"role":"toolResult","toolCallId":"c1","content":"ok","details":[1,2]}"#,
                false,
            ),
            (
                r#"{"role":"user", "content" : [{"type":"text","text":"outside"}]}"#,
                true,
            ),
            (
                r#"{"role":"user","content":[{"type":"text", "text":"inside"}]}"#,
                false,
            ),
            (
                r#"{"role":"user","content":[{"type":"text","text":"a\/b"}]}"#,
                false,
            ),
            (
                r#"{"role":"user","content":[{"type":"text","text":"\u00e9 \ud83d\ude00"}]}"#,
                false,
            ),
            (
                r#"{"role":"assistant","content":[{"type":"toolCall","id":"c","name":"n","arguments":{"t":0.5}}]}"#,
                false,
            ),
            (
                r#"{"role":"user","content":[{"type":"image","data":"aGVsbG8=","mimeType":"image/png"}]}"#,
                false,
            ),
            (
                r#"{"role":"user","content":[{"type":"text","text":7}]}"#,
                false,
            ),
            (r#"{"role":"user","content":[["text","hi"]]}"#, false),
            (
                r#"{"role":"user","content":{"type":"text","text":"object"}}"#,
                false,
            ),
            (
                r#"{"role":"user","role":"assistant","content":"twice"}"#,
                false,
            ),
            (r#"["user","not an object"]"#, false),
            (
                r#"{"role":"bashExecution","command":"ls","output":"a","exitCode":0}"#,
                false,
            ),
            (
                r#"{"role":"toolResult","isError":"yes","content":"x"}"#,
                false,
            ),
            (r#"{"role":"assistant","provider":7,"content":"x"}"#, false),
        ];
        let context = context();
        for (message, taken) in cases {
            let data = format!("{HEADER_V3}\n{}\n", entry(message));
            let typed = read_both_ways(data.as_bytes(), &context);
            assert_eq!(typed, u64::from(*taken), "{message}");
        }
        // Entry-level cases: no time anywhere (the tree path looks at
        // `data.timestamp`), a repeated entry field, a line that is an array,
        // a non-string id.
        let lines = [
            (
                r#"{"type":"message","id":"m","data":{"timestamp":1767225600000},"message":{"role":"user","content":"x"}}"#,
                0,
            ),
            (
                r#"{"type":"message","id":"m","id":"n","timestamp":"2026-01-01T00:00:01.000Z","message":{"role":"user","content":"x"}}"#,
                0,
            ),
            (
                r#"["message",null,null,null,{"role":"user","content":"x"}]"#,
                0,
            ),
            (
                r#"{"type":"message","timestamp":"2026-01-01T00:00:01.000Z","message":{"role":"user","content":"x","timestamp":5}}"#,
                1,
            ),
            (
                r#"{"type":"message","id":5,"timestamp":"2026-01-01T00:00:01.000Z","message":{"role":"user","content":"x"}}"#,
                0,
            ),
            (
                r#"{"type":"message","x":"\ud800","timestamp":"2026-01-01T00:00:01.000Z","message":{"role":"user","content":"hi"}}"#,
                0,
            ),
            (
                r#"{"type":"message","timestamp":"2026-01-01T00:00:01.000Z","message":{"role":"user","content":"hi","x":1e400}}"#,
                0,
            ),
            (
                r#"{"type":"message","timestamp":"2026-01-01T00:00:01.000Z","message":{"role":"assistant","content":"x","timestamp":-1e300}}"#,
                0,
            ),
            (
                r#"{"type":"message","timestamp":"not a time","message":{"role":"user","content":"x","timestamp":1767225600000}}"#,
                1,
            ),
            (
                r#"{"type":"message","timestamp":{"at":1},"message":{"role":"user","content":"x","timestamp":"2026-01-01T00:00:01+02:00"}}"#,
                1,
            ),
            (
                r#"{"type":"message","timestamp":[1],"message":{"role":"assistant","content":"x","timestamp":true}}"#,
                0,
            ),
        ];
        for (line, typed) in lines {
            let data = format!("{HEADER_V3}\n{line}\n");
            assert_eq!(read_both_ways(data.as_bytes(), &context), typed, "{line}");
        }
        // v1: ids from line numbers, parents implicit.
        let v1 = concat!(
            r#"{"type":"session","id":"s1","timestamp":"2026-01-01T00:00:00.000Z"}"#,
            "\n",
            r#"{"type":"message","timestamp":"2026-01-01T00:00:01.000Z","message":{"role":"user","content":"x"}}"#,
            "\n",
            r#"{"type":"message","timestamp":"2026-01-01T00:00:02.000Z","message":{"role":"assistant","content":[{"type":"text","text":"y"}]}}"#,
            "\n",
        );
        assert_eq!(read_both_ways(v1.as_bytes(), &context), 2);
        let (events, _) = read(v1);
        assert_eq!(events[2].entry_id.as_deref(), Some("v1-3"));
        assert_eq!(events[2].parent_id.as_deref(), Some("v1-2"));
    }

    #[test]
    fn the_text_path_matches_the_tree_path_on_real_and_generated_transcripts() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let corpus = tempfile::tempdir().unwrap();
        trajectory_corpus::generate(corpus.path(), 7, 3_000_000).unwrap();
        let mut files = Vec::new();
        for dir in [
            root.join("examples"),
            root.join("tests/data"),
            corpus.path().to_path_buf(),
        ] {
            for entry in walkdir::WalkDir::new(dir)
                .into_iter()
                .filter_map(Result::ok)
            {
                let path = entry.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.ends_with(".jsonl") && !name.ends_with(".trajectory.jsonl") {
                    let data = std::fs::read(path).unwrap();
                    let first = data.split(|b| *b == b'\n').next().unwrap_or(&[]);
                    if is_session_header(first) {
                        files.push((path.display().to_string(), data));
                    }
                }
            }
        }
        assert!(files.len() > 20, "transcripts found: {}", files.len());
        let (mut typed, mut lines) = (0, 0);
        for (path, data) in &files {
            let mut context = context();
            context.source_uri = path.clone();
            context.max_line_bytes = DEFAULT_MAX_LINE_BYTES;
            typed += read_both_ways(data, &context);
            lines += data.iter().filter(|b| **b == b'\n').count() as u64;
        }
        // Most lines of pi's and the generator's files are messages written
        // by JSON.stringify / serde_json.
        assert!(typed * 2 > lines, "{typed} of {lines} lines read from text");
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
