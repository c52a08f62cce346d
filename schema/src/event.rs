//! [`Event`]: one row of the `events` table as a Rust value.

use chrono::{DateTime, Utc};

use crate::kind::{EventKind, Locality};

/// One event. Field names and meanings are those of the `events` columns
/// (`docs/schema.md`); every optional field is a nullable column.
///
/// Units: timestamps are UTC with microsecond precision, token counts are
/// tokens, `cost_usd` is US dollars as computed by the agent from its model
/// catalog, `latency_ms` is milliseconds, `source_offset` is a byte offset from
/// the start of the (decompressed) source file and `source_line` is 1-based.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Deterministic id (64 hex chars): the same input always yields the same id.
    pub event_id: String,
    /// When it happened.
    pub ts: DateTime<Utc>,
    /// What it is.
    pub kind: EventKind,
    /// Which reader produced it, e.g. `openclaw_transcript`.
    pub source: &'static str,
    pub agent_id: Option<String>,
    pub session_id: Option<String>,
    pub session_key: Option<String>,
    pub channel: Option<String>,
    /// Transcript tree: the entry's own id and its parent's.
    pub entry_id: Option<String>,
    pub parent_id: Option<String>,
    /// Position within the session file (0 = header).
    pub seq: Option<i64>,
    pub role: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub api: Option<String>,
    pub locality: Option<Locality>,
    /// Plain text of the content, thinking excluded.
    pub text: Option<String>,
    /// Content blocks as JSON, image bytes replaced by a sha256 reference.
    pub content: Option<String>,
    pub tool_call_id: Option<String>,
    pub tool_name: Option<String>,
    /// Tool arguments as a JSON object text.
    pub tool_args: Option<String>,
    pub tool_status: Option<String>,
    pub tool_is_error: Option<bool>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub stop_reason: Option<String>,
    pub error: Option<String>,
    pub latency_ms: Option<i64>,
    /// OpenClaw run id (custom entries, gateway logs, cron runs, trajectory events).
    pub run_id: Option<String>,
    /// Log subsystem or module (`agent/embedded`, `model-fallback/decision`, `cron`).
    pub subsystem: Option<String>,
    /// Log level (`DEBUG`, `INFO`, `WARN`, `ERROR`, ...).
    pub level: Option<String>,
    /// A decision taken by the gateway (`candidate_failed`, `fallback_model`, ...).
    pub decision: Option<String>,
    /// Status of a run or decision (`ok`, `error`, `skipped`, HTTP-ish statuses).
    pub status: Option<String>,
    /// For fallback decisions: the model that was asked for.
    pub requested_provider: Option<String>,
    pub requested_model: Option<String>,
    /// For fallback decisions: the candidate tried next.
    pub next_provider: Option<String>,
    pub next_model: Option<String>,
    /// For fallback decisions: 1-based attempt number.
    pub attempt: Option<i64>,
    /// Other structured fields of the record, as a JSON object.
    pub attributes: Option<String>,
    /// What ingest masked, as a JSON array.
    pub redactions: Option<String>,
    pub redaction_policy: Option<String>,
    pub source_uri: Option<String>,
    pub source_offset: Option<i64>,
    pub source_line: Option<i64>,
    /// sha256 of the source line's bytes (without the newline), hex.
    pub line_sha256: Option<String>,
    /// The original line. Set on the first event of a line only, so a line
    /// that yields several events is stored once.
    pub raw: Option<String>,
    pub ingest_id: String,
    pub ingested_at: DateTime<Utc>,
    pub schema_version: i32,
}

impl Event {
    /// A new event with every optional column empty.
    pub fn new(
        event_id: String,
        ts: DateTime<Utc>,
        kind: EventKind,
        source: &'static str,
        ingest_id: &str,
        ingested_at: DateTime<Utc>,
    ) -> Event {
        Event {
            event_id,
            ts,
            kind,
            source,
            agent_id: None,
            session_id: None,
            session_key: None,
            channel: None,
            entry_id: None,
            parent_id: None,
            seq: None,
            role: None,
            provider: None,
            model: None,
            api: None,
            locality: None,
            text: None,
            content: None,
            tool_call_id: None,
            tool_name: None,
            tool_args: None,
            tool_status: None,
            tool_is_error: None,
            input_tokens: None,
            output_tokens: None,
            cache_read_tokens: None,
            cache_write_tokens: None,
            cost_usd: None,
            stop_reason: None,
            error: None,
            latency_ms: None,
            run_id: None,
            subsystem: None,
            level: None,
            decision: None,
            status: None,
            requested_provider: None,
            requested_model: None,
            next_provider: None,
            next_model: None,
            attempt: None,
            attributes: None,
            redactions: None,
            redaction_policy: None,
            source_uri: None,
            source_offset: None,
            source_line: None,
            line_sha256: None,
            raw: None,
            ingest_id: ingest_id.to_string(),
            ingested_at,
            schema_version: crate::SCHEMA_VERSION,
        }
    }
}
