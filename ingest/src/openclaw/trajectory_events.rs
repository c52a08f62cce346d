//! Reader for OpenClaw trajectory events (`openclaw-trajectory` v1): runtime
//! sidecars `agents/<id>/sessions/<sessionId>.trajectory.jsonl` (maybe `.zst`) and
//! the `events.jsonl` of export bundles (`<workspace>/.openclaw/trajectory-exports/<name>/`).
//!
//! Format source: `TrajectoryEvent`, `shared/docs/openclaw-formats.md` §3.7, §8.1
//! and §9, checked against files written by openclaw 2026.5.28
//! (`tests/data/records/openclaw-2026.5.28/`):
//! `{traceSchema:"openclaw-trajectory", schemaVersion:1, traceId, source:"runtime"|"transcript"|"export",
//! type, ts(ISO), seq, sourceSeq?, sessionId, sessionKey?, runId?, workspaceDir?, provider?,
//! modelId?, modelApi?, entryId?, parentEntryId?, data?}`. The
//! `<id>.trajectory-path.json` pointer (`openclaw-trajectory-pointer`) is not an
//! event file and is not read. OpenClaw 2026.7+ keeps the same events in the
//! `trajectory_runtime_events` table; `TrajectoryParser` reads those rows too
//! through [`crate::jsonl::read_lines`].
//!
//! Mapping (one event per line):
//!
//! | line | event |
//! |---|---|
//! | `type:"model.fallback_step"` | `fallback_decision`: `decision` = `data.decision`, else `fallbackStepFinalOutcome` (`next_fallback`, `succeeded`, `chain_exhausted`); `requested_*` = `fallbackStepFromModel`; `next_*` = `fallbackStepToModel` (refs split at the first `/`); `attempt` = `fallbackStepChainPosition`; `status` = `fallbackStepFromFailureReason`; `error` = `fallbackStepFromFailureDetail` |
//! | `model.completed` | `custom`, role `model.completed` (not `llm_call`: the transcript holds the assistant message); tokens from `data.usage` (run totals), `text` = `assistantTexts` joined, `error` = `terminalError` |
//! | `session.started`, `session.ended`, `trace.metadata`, `context.compiled`, `prompt.submitted`, `trace.artifacts`, any other type | `custom`, role = type; `status` = `data.status` / `data.finalStatus`, `error` = `data.error` / `data.terminalError` |
//! | `source:"transcript"` (exports: `user.message`, `assistant.message`, `tool.call`, `tool.result`, `session.*`) | `custom`, role = type; `entry_id`/`parent_id` = `entryId`/`parentEntryId`; `text` from the message content; tool fields for `tool.call`/`tool.result` |
//! | no `type`, or a `traceSchema` other than `openclaw-trajectory` | `unknown` |
//! | unreadable line, or a field of the wrong JSON type | `quarantined` |
//!
//! Every event: `run_id` = `runId`, `session_id` = `sessionId` (else the file
//! name before `.trajectory.jsonl`), `session_key`, `provider` / `model` / `api`
//! = `provider` / `modelId` / `modelApi` (with `locality`), `role` = `type`.
//! `attributes` = `data`, where the bulky fields (`prompt`, `systemPrompt`,
//! `messages`, `messagesSnapshot`, `tools`, `finalPromptText`, and any field whose
//! JSON exceeds [`MAX_INLINE_FIELD_BYTES`]) are replaced by
//! `{"summarized":true,"sha256","bytes",("chars"|"items"|"keys")}`, plus a `_trace`
//! object with the envelope fields that have no column (`traceId`, `source`,
//! `seq`, `sourceSeq`, `schemaVersion`, `workspaceDir`, unknown keys). `raw` keeps
//! the whole line.
//!
//! **`seq` (departure from "seq = the event's seq").** In runtime sidecars the
//! event's `seq` restarts at 1 for every model attempt of a run (a fallback
//! chain writes 1…7 per attempt, and the `model.fallback_step` events count
//! 1, 2, 3 on their own), while `sourceSeq` counts the file. In exports it is the
//! other way round: `seq` counts the bundle and `sourceSeq` is the position in the
//! runtime file or the transcript. The `seq` column is the counter that orders
//! the file: `sourceSeq` (else `seq`) for sidecars, `seq` (else `sourceSeq`) for
//! exports; both raw values stay in `attributes._trace`.
//!
//! Exports repeat the sidecar's runtime events, redacted (`$WORKSPACE_DIR`), so
//! their bytes and ids differ: export events carry the source
//! [`EXPORT_SOURCE`] so they can be told apart from [`SOURCE`].
//!
//! Event ids: blake3 of (source, agent, session id, run id, seq, sourceSeq, line sha256).

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use thiserror::Error;
use trajectory_schema::{Event, EventKind};

use crate::content::plain_text;
use crate::jsonl::{
    event_id, line_event, parse_time, read_jsonl, sha256_hex, str_field, LineParser, LineRecord,
    ReadStats, SourceContext,
};
use crate::locality::locality_of_provider;
use crate::openclaw::cron_run_log::type_name;
use crate::openclaw::session_store::split_model_ref;

/// The `source` column value of events from runtime sidecars.
pub const SOURCE: &str = "openclaw_trajectory";

/// The `source` column value of events from export bundles.
pub const EXPORT_SOURCE: &str = "openclaw_trajectory_export";

/// The `traceSchema` value of trajectory events.
pub const TRACE_SCHEMA: &str = "openclaw-trajectory";

/// The newest `schemaVersion` this reader knows.
pub const NEWEST_KNOWN_VERSION: i64 = 1;

/// `data` fields whose JSON is longer than this are summarised in `attributes`.
pub const MAX_INLINE_FIELD_BYTES: usize = 4096;

/// `data` fields always summarised (prompts, contexts, message snapshots).
const ALWAYS_SUMMARIZED: &[&str] = &[
    "prompt",
    "systemPrompt",
    "messages",
    "messagesSnapshot",
    "tools",
    "finalPromptText",
];

/// Envelope fields mapped to columns (the rest go to `attributes._trace`).
const MAPPED_ENVELOPE: &[&str] = &[
    "traceSchema",
    "type",
    "ts",
    "sessionId",
    "sessionKey",
    "runId",
    "provider",
    "modelId",
    "modelApi",
    "entryId",
    "parentEntryId",
    "data",
];

/// Reads a runtime sidecar (`<sessionId>.trajectory.jsonl`, decompressed).
///
/// Never fails on content: unreadable lines become `quarantined` events.
/// `stats.format_version` is the highest `schemaVersion` seen.
/// Errors: only an I/O error of `reader`.
pub fn read_trajectory_events<R: BufRead>(
    reader: R,
    context: &SourceContext,
) -> io::Result<(Vec<Event>, ReadStats)> {
    let mut parser = TrajectoryParser::runtime(context);
    read_jsonl(reader, context, &mut parser)
}

/// Whether `first_line` is a trajectory event (`traceSchema == "openclaw-trajectory"`).
pub fn looks_like_trajectory_events(first_line: &[u8]) -> bool {
    serde_json::from_slice::<Value>(first_line)
        .ok()
        .and_then(|v| {
            v.get("traceSchema")
                .and_then(Value::as_str)
                .map(|s| s == TRACE_SCHEMA)
        })
        .unwrap_or(false)
}

/// Why an export bundle could not be read.
#[derive(Debug, Error)]
pub enum BundleError {
    /// The directory has no `manifest.json`: not an export bundle.
    #[error("not a trajectory export bundle: {0} is missing")]
    NoManifest(PathBuf),
    /// A bundle file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Whether `dir` holds a trajectory export bundle: a `manifest.json` whose
/// `traceSchema` is `openclaw-trajectory`.
pub fn is_export_bundle(dir: &Path) -> bool {
    std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| {
            v.get("traceSchema")
                .and_then(Value::as_str)
                .map(|s| s == TRACE_SCHEMA)
        })
        .unwrap_or(false)
}

/// Reads an export bundle directory: `manifest.json` becomes one `custom`
/// event (role `trajectory.export`, the manifest as `attributes`) and
/// `events.jsonl` (or `events.jsonl.zst`) is read like a sidecar, with the
/// source [`EXPORT_SOURCE`]. The other bundle files (`session-branch.json`,
/// `tools.json`, `metadata.json`, …) are not read.
///
/// `context.source_uri` names the directory; events get the URI of their file
/// inside it. A manifest that is not a JSON object is quarantined and the events
/// are still read; a missing `events.jsonl` is reported in `stats.notes`, as is
/// an event count that differs from the manifest's `eventCount`.
///
/// Errors: no `manifest.json`, or an I/O error on a bundle file.
pub fn read_export_bundle(
    dir: &Path,
    context: &SourceContext,
) -> Result<(Vec<Event>, ReadStats), BundleError> {
    let manifest_path = dir.join("manifest.json");
    let manifest_bytes = match std::fs::read(&manifest_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BundleError::NoManifest(manifest_path))
        }
        Err(source) => {
            return Err(BundleError::Io {
                path: manifest_path,
                source,
            })
        }
    };
    let base = context.source_uri.trim_end_matches('/');
    let manifest_context = SourceContext {
        source_uri: format!("{base}/manifest.json"),
        ..context.clone()
    };
    let mut stats = ReadStats {
        lines: 1,
        bytes: manifest_bytes.len() as u64,
        ..ReadStats::default()
    };
    let (manifest_event, manifest) = manifest_event(&manifest_context, &manifest_bytes);
    if manifest_event.kind == EventKind::Quarantined {
        stats.quarantined += 1;
    }
    let mut events = vec![manifest_event];

    let candidates = [("events.jsonl", false), ("events.jsonl.zst", true)];
    let found = candidates
        .iter()
        .map(|(name, zst)| (dir.join(name), *name, *zst))
        .find(|(path, _, _)| path.is_file());
    match found {
        None => stats
            .notes
            .push("export bundle has no events.jsonl".to_string()),
        Some((path, name, zst)) => {
            let io_error = |source| BundleError::Io {
                path: path.clone(),
                source,
            };
            let file = File::open(&path).map_err(io_error)?;
            let reader: Box<dyn BufRead> = if zst {
                Box::new(BufReader::new(zstd::Decoder::new(file).map_err(io_error)?))
            } else {
                Box::new(BufReader::new(file))
            };
            let events_context = SourceContext {
                source_uri: format!("{base}/{name}"),
                session_id_hint: manifest
                    .as_ref()
                    .and_then(|m| str_field(m, "sessionId"))
                    .or_else(|| context.session_id_hint.clone()),
                ..context.clone()
            };
            let mut parser = TrajectoryParser::export(&events_context);
            let (read, read_stats) =
                read_jsonl(reader, &events_context, &mut parser).map_err(io_error)?;
            let expected = manifest
                .as_ref()
                .and_then(|m| m.get("eventCount"))
                .and_then(Value::as_u64);
            let good = read
                .iter()
                .filter(|e| e.kind != EventKind::Quarantined)
                .count() as u64;
            if let Some(expected) = expected.filter(|n| *n != good) {
                stats.notes.push(format!(
                    "manifest eventCount is {expected} but {good} events were read"
                ));
            }
            stats.lines += read_stats.lines;
            stats.bytes += read_stats.bytes;
            stats.quarantined += read_stats.quarantined;
            stats.unknown_entries += read_stats.unknown_entries;
            stats.format_version = read_stats.format_version;
            stats.notes.extend(read_stats.notes);
            events.extend(read);
        }
    }
    stats.events = events.len() as u64;
    Ok((events, stats))
}

/// The manifest as an event, and as an object when it is one.
fn manifest_event(context: &SourceContext, bytes: &[u8]) -> (Event, Option<Map<String, Value>>) {
    let sha256 = sha256_hex(bytes);
    let agent = context.agent_id.as_deref().unwrap_or("");
    let text = String::from_utf8_lossy(bytes).into_owned();
    let parsed = serde_json::from_slice::<Value>(bytes);
    let (manifest, problem) = match parsed {
        Ok(Value::Object(m)) => (Some(m), None),
        Ok(other) => (
            None,
            Some(format!("manifest is {}, not an object", type_name(&other))),
        ),
        Err(e) => (None, Some(format!("malformed JSON: {e}"))),
    };
    let ts = manifest
        .as_ref()
        .and_then(|m| m.get("generatedAt"))
        .and_then(parse_time)
        .unwrap_or(context.ingested_at);
    let session_id = manifest
        .as_ref()
        .and_then(|m| str_field(m, "sessionId"))
        .or_else(|| context.session_id_hint.clone());
    let kind = if problem.is_some() {
        EventKind::Quarantined
    } else {
        EventKind::Custom
    };
    let mut event = Event::new(
        event_id(&[
            EXPORT_SOURCE,
            agent,
            session_id.as_deref().unwrap_or(""),
            "manifest",
            &sha256,
        ]),
        ts,
        kind,
        EXPORT_SOURCE,
        &context.ingest_id,
        context.ingested_at,
    );
    event.agent_id = context.agent_id.clone();
    event.session_id = session_id;
    event.source_uri = Some(context.source_uri.clone());
    event.source_offset = Some(0);
    event.line_sha256 = Some(sha256);
    event.raw = Some(text);
    match &manifest {
        Some(m) => {
            event.role = Some("trajectory.export".into());
            event.session_key = str_field(m, "sessionKey");
            event.run_id = str_field(m, "runId");
            event.entry_id = str_field(m, "leafId");
            event.attributes = Some(Value::Object(m.clone()).to_string());
        }
        None => event.error = problem,
    }
    (event, manifest)
}

/// Which counter orders the file (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqField {
    /// Runtime sidecars: `sourceSeq`, else `seq`.
    SourceSeq,
    /// Export bundles: `seq`, else `sourceSeq`.
    Seq,
}

/// The trajectory format as a [`LineParser`].
pub struct TrajectoryParser<'a> {
    context: &'a SourceContext,
    source: &'static str,
    seq_field: SeqField,
    session_hint: String,
    last_ts: Option<DateTime<Utc>>,
    last_session: Option<String>,
    newest_version: Option<i64>,
    unknown_entries: u64,
}

impl<'a> TrajectoryParser<'a> {
    /// A parser for a runtime sidecar (or `trajectory_runtime_events` rows).
    pub fn runtime(context: &'a SourceContext) -> TrajectoryParser<'a> {
        TrajectoryParser::new(context, SOURCE, SeqField::SourceSeq)
    }

    /// A parser for an export bundle's `events.jsonl`.
    pub fn export(context: &'a SourceContext) -> TrajectoryParser<'a> {
        TrajectoryParser::new(context, EXPORT_SOURCE, SeqField::Seq)
    }

    fn new(
        context: &'a SourceContext,
        source: &'static str,
        seq_field: SeqField,
    ) -> TrajectoryParser<'a> {
        let hint = context.session_id_hint.clone().unwrap_or_default();
        let hint = hint
            .strip_suffix(".trajectory")
            .map(str::to_string)
            .unwrap_or(hint);
        TrajectoryParser {
            context,
            source,
            seq_field,
            session_hint: hint,
            last_ts: None,
            last_session: None,
            newest_version: None,
            unknown_entries: 0,
        }
    }
}

/// An optional string field (null counts as absent); another type is an error.
fn opt_str(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("`{key}` is {}, not a string", type_name(other))),
    }
}

/// An optional integer field (null counts as absent); another type is an error.
fn opt_int(object: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("`{key}` is {}, not an integer", type_name(value))),
    }
}

impl LineParser for TrajectoryParser<'_> {
    fn source(&self) -> &'static str {
        self.source
    }

    fn session_id(&self) -> Option<&str> {
        self.last_session
            .as_deref()
            .or(Some(self.session_hint.as_str()).filter(|s| !s.is_empty()))
    }

    fn parse(
        &mut self,
        record: &LineRecord<'_>,
        line: Map<String, Value>,
        out: &mut Vec<Event>,
    ) -> Result<(), String> {
        let schema = opt_str(&line, "traceSchema")?;
        let version = opt_int(&line, "schemaVersion")?;
        let event_type = opt_str(&line, "type")?;
        let seq = opt_int(&line, "seq")?;
        let source_seq = opt_int(&line, "sourceSeq")?;
        let session_id = opt_str(&line, "sessionId")?;
        let session_key = opt_str(&line, "sessionKey")?;
        let run_id = opt_str(&line, "runId")?;
        let provider = opt_str(&line, "provider")?;
        let model = opt_str(&line, "modelId")?;
        let api = opt_str(&line, "modelApi")?;
        let entry_id = opt_str(&line, "entryId")?;
        let parent_id = opt_str(&line, "parentEntryId")?;
        opt_str(&line, "traceId")?;
        opt_str(&line, "source")?;
        let ts = match line.get("ts") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                parse_time(value)
                    .ok_or_else(|| format!("`ts` ({}) is not a time", type_name(value)))?,
            ),
        };
        let ts = ts.or(self.last_ts).unwrap_or(self.context.ingested_at);
        self.last_ts = Some(ts);
        if let Some(v) = version {
            self.newest_version = Some(self.newest_version.map_or(v, |n| n.max(v)));
        }
        let session_id =
            session_id.or_else(|| Some(self.session_hint.clone()).filter(|s| !s.is_empty()));
        self.last_session.clone_from(&session_id);

        let foreign = schema.as_deref().is_some_and(|s| s != TRACE_SCHEMA);
        let kind = match event_type.as_deref() {
            _ if foreign => EventKind::Unknown,
            None => EventKind::Unknown,
            Some("model.fallback_step") => EventKind::FallbackDecision,
            Some(_) => EventKind::Custom,
        };
        if kind == EventKind::Unknown {
            self.unknown_entries += 1;
        }

        let order = match self.seq_field {
            SeqField::SourceSeq => source_seq.or(seq),
            SeqField::Seq => seq.or(source_seq),
        };
        let agent = self.context.agent_id.as_deref().unwrap_or("");
        let seq_part = seq.map(|s| s.to_string()).unwrap_or_default();
        let source_seq_part = source_seq.map(|s| s.to_string()).unwrap_or_default();
        let mut event = line_event(
            self.context,
            self.source,
            kind,
            ts,
            record,
            &[
                self.source,
                agent,
                session_id.as_deref().unwrap_or(""),
                run_id.as_deref().unwrap_or(""),
                &seq_part,
                &source_seq_part,
                &record.sha256,
            ],
        );
        event.seq = order.or(Some(record.line.number as i64 - 1));
        event.session_id = session_id;
        event.session_key = session_key;
        event.run_id = run_id;
        event.role = event_type.clone();
        event.locality = provider.as_deref().map(locality_of_provider);
        event.provider = provider;
        event.model = model;
        event.api = api;
        event.entry_id = entry_id;
        event.parent_id = parent_id;

        let data = line.get("data").cloned().unwrap_or(Value::Null);
        let empty = Map::new();
        let data_object = data.as_object().unwrap_or(&empty);
        let trace_source = str_field(&line, "source");
        match (kind, event_type.as_deref()) {
            (EventKind::FallbackDecision, _) => fallback_step(&mut event, data_object),
            (_, Some("model.completed")) => model_completed(&mut event, data_object),
            _ if trace_source.as_deref() == Some("transcript") => {
                transcript_event(&mut event, event_type.as_deref(), data_object)
            }
            _ => {
                event.status = str_field(data_object, "status")
                    .or_else(|| str_field(data_object, "finalStatus"));
                event.error = str_field(data_object, "error")
                    .or_else(|| str_field(data_object, "terminalError"));
            }
        }

        let mut attributes = match &data {
            Value::Object(object) => summarized(object),
            Value::Null => Map::new(),
            other => Map::from_iter([("value".to_string(), other.clone())]),
        };
        let trace: Map<String, Value> = line
            .iter()
            .filter(|(key, _)| !MAPPED_ENVELOPE.contains(&key.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !trace.is_empty() {
            attributes.insert("_trace".into(), Value::Object(trace));
        }
        if foreign {
            attributes.insert("traceSchema".into(), Value::from(schema));
        }
        event.attributes = Some(Value::Object(attributes).to_string());
        out.push(event);
        Ok(())
    }

    fn finish(&mut self, stats: &mut ReadStats) {
        stats.format_version = self.newest_version;
        stats.unknown_entries = self.unknown_entries;
        if let Some(v) = self.newest_version.filter(|v| *v > NEWEST_KNOWN_VERSION) {
            stats.notes.push(format!(
                "trajectory schemaVersion {v} is newer than {NEWEST_KNOWN_VERSION}; read as far as events match known shapes"
            ));
        }
    }
}

fn fallback_step(event: &mut Event, data: &Map<String, Value>) {
    event.decision =
        str_field(data, "decision").or_else(|| str_field(data, "fallbackStepFinalOutcome"));
    match str_field(data, "fallbackStepFromModel") {
        Some(from) => (event.requested_provider, event.requested_model) = split_model_ref(&from),
        None => {
            event.requested_provider.clone_from(&event.provider);
            event.requested_model.clone_from(&event.model);
        }
    }
    if let Some(to) = str_field(data, "fallbackStepToModel") {
        (event.next_provider, event.next_model) = split_model_ref(&to);
    }
    event.attempt = data
        .get("fallbackStepChainPosition")
        .or_else(|| data.get("attempt"))
        .and_then(Value::as_i64);
    event.status = str_field(data, "fallbackStepFromFailureReason");
    event.error = str_field(data, "fallbackStepFromFailureDetail")
        .or_else(|| str_field(data, "errorPreview"));
}

fn model_completed(event: &mut Event, data: &Map<String, Value>) {
    if let Some(Value::Object(usage)) = data.get("usage") {
        let count = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| usage.get(*k).and_then(Value::as_i64))
                .filter(|n| *n >= 0)
        };
        event.input_tokens = count(&["input", "input_tokens"]);
        event.output_tokens = count(&["output", "output_tokens"]);
        event.cache_read_tokens = count(&["cacheRead", "cache_read_tokens"]);
        event.cache_write_tokens = count(&["cacheWrite", "cache_write_tokens"]);
    }
    if let Some(Value::Array(texts)) = data.get("assistantTexts") {
        let texts: Vec<&str> = texts.iter().filter_map(Value::as_str).collect();
        event.text = (!texts.is_empty()).then(|| texts.join("\n"));
    }
    event.error = str_field(data, "terminalError").or_else(|| str_field(data, "promptErrorSource"));
    event.status = str_field(data, "status");
}

fn transcript_event(event: &mut Event, event_type: Option<&str>, data: &Map<String, Value>) {
    match event_type {
        Some("tool.call") => {
            event.tool_call_id = str_field(data, "toolCallId");
            event.tool_name = str_field(data, "name");
            event.tool_args = data.get("arguments").map(|a| match a {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        _ => {
            let Some(Value::Object(message)) = data.get("message") else {
                return;
            };
            event.text = message.get("content").and_then(plain_text);
            event.tool_call_id = str_field(message, "toolCallId");
            event.tool_name = str_field(message, "toolName");
            event.tool_is_error = message.get("isError").and_then(Value::as_bool);
            event.stop_reason = str_field(message, "stopReason");
            event.error = str_field(message, "errorMessage");
            if event.provider.is_none() {
                event.provider = str_field(message, "provider");
                event.model = str_field(message, "model");
                event.api = str_field(message, "api");
                event.locality = event.provider.as_deref().map(locality_of_provider);
            }
        }
    }
}

/// `data` with bulky fields replaced by `{summarized, sha256, bytes, chars|items|keys}`.
fn summarized(data: &Map<String, Value>) -> Map<String, Value> {
    data.iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let bulky = (ALWAYS_SUMMARIZED.contains(&key.as_str()) && !value.is_null())
                || text.len() > MAX_INLINE_FIELD_BYTES;
            if !bulky {
                return (key.clone(), value.clone());
            }
            let mut summary = Map::new();
            summary.insert("summarized".into(), Value::Bool(true));
            summary.insert("sha256".into(), Value::String(sha256_hex(text.as_bytes())));
            summary.insert("bytes".into(), Value::from(text.len()));
            match value {
                Value::String(s) => summary.insert("chars".into(), Value::from(s.chars().count())),
                Value::Array(items) => summary.insert("items".into(), Value::from(items.len())),
                Value::Object(map) => summary.insert("keys".into(), Value::from(map.len())),
                _ => None,
            };
            (key.clone(), Value::Object(summary))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::TimeZone;

    fn records() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/records/openclaw-2026.5.28")
    }

    fn context(hint: &str) -> SourceContext {
        SourceContext {
            source_uri: format!("file:///sessions/{hint}.jsonl"),
            agent_id: Some("main".into()),
            session_id_hint: Some(hint.into()),
            ingest_id: "ing".into(),
            ingested_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            max_line_bytes: 64 << 20,
        }
    }

    fn sidecar(id: &str) -> (Vec<Value>, Vec<Event>, ReadStats) {
        let path = records().join(format!("agents/main/sessions/{id}.trajectory.jsonl.zst"));
        let bytes = zstd::decode_all(&std::fs::read(path).unwrap()[..]).unwrap();
        let lines = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let (events, stats) =
            read_trajectory_events(&bytes[..], &context(&format!("{id}.trajectory"))).unwrap();
        (lines, events, stats)
    }

    fn attrs(event: &Event) -> Map<String, Value> {
        match serde_json::from_str(event.attributes.as_deref().unwrap()).unwrap() {
            Value::Object(map) => map,
            _ => panic!("attributes not an object"),
        }
    }

    const FALLBACK_500: &str = "db128180-c674-46a5-8475-ee6cf27cc0d8";
    const ALL_FAIL: &str = "d0eede08-bc2a-4199-8597-96a2b7f0baa0";

    #[test]
    fn sidecar_lines_map_one_to_one_with_envelope_columns() {
        let (lines, events, stats) = sidecar(FALLBACK_500);
        assert!(lines.len() > 10, "sanity");
        assert_eq!(events.len(), lines.len());
        assert_eq!(stats.quarantined, 0);
        assert_eq!(stats.unknown_entries, 0);
        assert_eq!(stats.format_version, Some(1));
        for (event, line) in events.iter().zip(&lines) {
            assert_eq!(event.source, SOURCE);
            assert_eq!(event.role.as_deref(), line["type"].as_str());
            assert_eq!(event.session_id.as_deref(), Some(FALLBACK_500));
            assert_eq!(event.session_key.as_deref(), line["sessionKey"].as_str());
            assert_eq!(event.run_id.as_deref(), line["runId"].as_str());
            assert_eq!(event.provider.as_deref(), line["provider"].as_str());
            assert_eq!(event.model.as_deref(), line["modelId"].as_str());
            assert_eq!(
                event.seq,
                line["sourceSeq"].as_i64(),
                "sidecars order by sourceSeq"
            );
            let trace = &attrs(event)["_trace"];
            assert_eq!(trace["seq"], line["seq"]);
            assert_eq!(trace["traceId"], line["traceId"]);
            let expected = if line["type"] == "model.fallback_step" {
                EventKind::FallbackDecision
            } else {
                EventKind::Custom
            };
            assert_eq!(event.kind, expected);
        }
        let seqs: Vec<i64> = events.iter().map(|e| e.seq.unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let ids: std::collections::HashSet<_> = events.iter().map(|e| &e.event_id).collect();
        assert_eq!(ids.len(), events.len());
        // Bulky fields are summarised, not copied.
        let compiled = events
            .iter()
            .find(|e| e.role.as_deref() == Some("context.compiled"))
            .unwrap();
        let attributes = attrs(compiled);
        assert_eq!(attributes["systemPrompt"]["summarized"], true);
        assert_eq!(
            attributes["systemPrompt"]["sha256"].as_str().unwrap().len(),
            64
        );
        assert!(attributes["messages"]["items"].is_u64());
        assert!(
            compiled.attributes.as_deref().unwrap().len() * 4
                < compiled.raw.as_deref().unwrap().len()
        );
        // model.completed is a custom event with the run's usage.
        let completed: Vec<&Event> = events
            .iter()
            .filter(|e| e.role.as_deref() == Some("model.completed"))
            .collect();
        assert!(completed.iter().all(|e| e.kind == EventKind::Custom));
        let with_usage = completed
            .iter()
            .zip(lines.iter().filter(|l| l["type"] == "model.completed"))
            .filter(|(_, l)| l["data"]["usage"].is_object())
            .map(|(e, l)| {
                assert_eq!(e.input_tokens, l["data"]["usage"]["input"].as_i64());
                assert_eq!(e.output_tokens, l["data"]["usage"]["output"].as_i64());
            })
            .count();
        assert!(with_usage > 0);
        assert!(completed
            .iter()
            .any(|e| e.error.as_deref() == Some("non_deliverable_terminal_turn")));
        let ended: Vec<_> = events
            .iter()
            .filter(|e| e.role.as_deref() == Some("session.ended"))
            .filter_map(|e| e.status.as_deref())
            .collect();
        assert!(
            ended.contains(&"error") && ended.contains(&"success"),
            "{ended:?}"
        );
    }

    #[test]
    fn sidecar_fallback_steps_become_fallback_decisions() {
        let (lines, events, _) = sidecar(FALLBACK_500);
        let steps: Vec<&Event> = events
            .iter()
            .filter(|e| e.kind == EventKind::FallbackDecision)
            .collect();
        let expected = lines
            .iter()
            .filter(|l| l["type"] == "model.fallback_step")
            .count();
        assert_eq!(steps.len(), expected);
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].decision.as_deref(), Some("next_fallback"));
        assert_eq!(steps[1].decision.as_deref(), Some("succeeded"));
        for (n, step) in steps.iter().enumerate() {
            assert_eq!(step.attempt, Some(n as i64 + 1));
            assert_eq!(step.requested_provider.as_deref(), Some("ollama"));
            assert_eq!(step.requested_model.as_deref(), Some("qwen3:8b-stub"));
            assert_eq!(step.next_provider.as_deref(), Some("cloudstub"));
            assert_eq!(step.next_model.as_deref(), Some("stub-cloud-large"));
            assert_eq!(step.status.as_deref(), Some("timeout"));
            assert!(step.error.as_deref().unwrap().starts_with("500 "));
            assert_eq!(step.locality, Some(trajectory_schema::Locality::Local));
        }

        let (_, events, _) = sidecar(ALL_FAIL);
        let steps: Vec<&Event> = events
            .iter()
            .filter(|e| e.kind == EventKind::FallbackDecision)
            .collect();
        assert_eq!(steps.len(), 3);
        let last = steps[2];
        assert_eq!(last.decision.as_deref(), Some("chain_exhausted"));
        assert_eq!(last.requested_model.as_deref(), Some("stub-cloud-mini"));
        assert_eq!(last.next_provider, None, "nothing left to try");
        assert_eq!(last.attempt, Some(3));
    }

    #[test]
    fn export_bundle_reads_manifest_and_events() {
        let dir = records().join("workspace/.openclaw/trajectory-exports/tools-demo");
        assert!(is_export_bundle(&dir));
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let bytes =
            zstd::decode_all(&std::fs::read(dir.join("events.jsonl.zst")).unwrap()[..]).unwrap();
        let lines: Vec<Value> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let mut ctx = context("tools-demo");
        ctx.source_uri = "file:///ws/.openclaw/trajectory-exports/tools-demo".into();
        let (events, stats) = read_export_bundle(&dir, &ctx).unwrap();
        assert_eq!(stats.quarantined, 0);
        assert!(stats.notes.is_empty(), "{:?}", stats.notes);
        assert_eq!(events.len(), lines.len() + 1);
        assert_eq!(manifest["eventCount"].as_u64(), Some(lines.len() as u64));
        let head = &events[0];
        assert_eq!(head.kind, EventKind::Custom);
        assert_eq!(head.role.as_deref(), Some("trajectory.export"));
        assert_eq!(head.session_id.as_deref(), manifest["sessionId"].as_str());
        assert_eq!(head.session_key.as_deref(), Some("agent:main:tools-demo"));
        assert_eq!(
            serde_json::from_str::<Value>(head.attributes.as_deref().unwrap()).unwrap(),
            manifest
        );
        assert!(head
            .source_uri
            .as_deref()
            .unwrap()
            .ends_with("/tools-demo/manifest.json"));
        for (event, line) in events[1..].iter().zip(&lines) {
            assert_eq!(event.source, EXPORT_SOURCE);
            assert_eq!(event.seq, line["seq"].as_i64(), "exports order by seq");
            assert_eq!(event.entry_id.as_deref(), line["entryId"].as_str());
            assert_eq!(event.parent_id.as_deref(), line["parentEntryId"].as_str());
            assert!(event
                .source_uri
                .as_deref()
                .unwrap()
                .ends_with("/events.jsonl.zst"));
        }
        let transcript = lines.iter().filter(|l| l["source"] == "transcript").count();
        assert_eq!(
            transcript as u64,
            manifest["transcriptEventCount"].as_u64().unwrap()
        );
        let calls: Vec<&Event> = events
            .iter()
            .filter(|e| e.role.as_deref() == Some("tool.call"))
            .collect();
        assert_eq!(
            calls.len(),
            lines.iter().filter(|l| l["type"] == "tool.call").count()
        );
        assert!(calls.iter().all(|c| c.kind == EventKind::Custom
            && c.tool_call_id.is_some()
            && c.tool_args.as_deref().is_some_and(|a| a.starts_with('{'))));
        let result = events
            .iter()
            .find(|e| e.role.as_deref() == Some("tool.result"))
            .unwrap();
        assert_eq!(result.tool_is_error, Some(false));
        assert!(result
            .text
            .as_deref()
            .unwrap()
            .contains("Successfully wrote"));
        assert!(!events.iter().any(|e| e.kind == EventKind::LlmCall));

        let missing = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_export_bundle(missing.path(), &ctx),
            Err(BundleError::NoManifest(_))
        ));
        assert!(!is_export_bundle(missing.path()));
    }

    #[test]
    fn bad_lines_and_foreign_records() {
        let data = concat!(
            r#"{"traceSchema":"openclaw-trajectory","schemaVersion":1,"type":"session.started","ts":"2026-11-22T02:29:21.076Z","seq":1,"sessionId":7}"#,
            "\n",
            r#"{"traceSchema":"openclaw-trajectory","schemaVersion":1,"type":"x","ts":"soon","seq":2}"#,
            "\n",
            r#"{"traceSchema":"openclaw-trajectory","schemaVersion":1,"type":"x","ts":"2026-11-22T02:29:21Z","seq":"3"}"#,
            "\n",
            r#"{"traceSchema":"other","type":"x","seq":4}"#,
            "\n",
            r#"{"traceSchema":"openclaw-trajectory","schemaVersion":2,"type":"tool.call","seq":5,"data":"text"}"#,
            "\n",
        );
        let (events, stats) =
            read_trajectory_events(data.as_bytes(), &context("s1.trajectory")).unwrap();
        assert_eq!(stats.quarantined, 3);
        let reasons: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::Quarantined)
            .map(|e| e.error.clone().unwrap())
            .collect();
        assert!(reasons[0].contains("sessionId"), "{reasons:?}");
        assert!(reasons[1].contains("`ts`"), "{reasons:?}");
        assert!(reasons[2].contains("`seq`"), "{reasons:?}");
        assert_eq!(events[3].kind, EventKind::Unknown);
        assert_eq!(
            events[3].session_id.as_deref(),
            Some("s1"),
            "hint without .trajectory"
        );
        assert_eq!(stats.unknown_entries, 1);
        assert_eq!(attrs(&events[4])["value"], "text");
        assert!(
            stats.notes.iter().any(|n| n.contains("newer")),
            "{:?}",
            stats.notes
        );
        assert_eq!(stats.format_version, Some(2));
    }

    #[test]
    fn recognises_first_lines() {
        let (_, events, _) = sidecar(ALL_FAIL);
        let first = events[0].raw.as_deref().unwrap();
        assert!(looks_like_trajectory_events(first.as_bytes()));
        assert!(!looks_like_trajectory_events(
            br#"{"traceSchema":"openclaw-trajectory-pointer","schemaVersion":1}"#
        ));
        assert!(!looks_like_trajectory_events(br#"{"type":"session"}"#));
    }
}
