//! Reader for the OpenClaw gateway file log (`/tmp/openclaw/openclaw-YYYY-MM-DD.log`,
//! rotated as `openclaw-YYYY-MM-DD.N.log`).
//!
//! Format source: `shared/docs/openclaw-formats.md` §3.1 (tslog records), §4
//! (fallback decisions) and §9 (real runs). Checked against two real files
//! written by openclaw 2026.9.6 (debug level, 1207 lines) and 2026.5.28 (786
//! lines) in `tests/data/logs/` (see its `SOURCES.md`).
//!
//! One JSON object per line, written by tslog with a file transport:
//! positional log arguments under `"0"`, `"1"`, `"2"`, …, the tslog header in
//! `_meta`, and `time`. Newer builds (2026.5.28 and 2026.9.6 both do) also
//! write a top-level `message` (the arguments joined as OpenClaw prints them),
//! `hostname`, and OpenTelemetry ids (`traceId`, `spanId`, `parentSpanId`,
//! `traceFlags`) and sometimes `session_id` / `agent_id`.
//!
//! Positional arguments are told apart **by type**, never by position:
//!
//! - `"0"` is the logger binding when it is a string holding a JSON object with
//!   `subsystem` or `module` (or equal to `_meta.name`), e.g.
//!   `"{\"subsystem\":\"gateway/ws\"}"` or `"{\"module\":\"cron\",\"storePath\":…}"`;
//! - of the remaining arguments, the first string is the message and the first
//!   object is the meta (v2026.4+ writes `meta, message`; other writers
//!   `message, meta`; both occur in the real 2026.9.6 file);
//! - root-logger / console-captured lines have only `"0"` = the message (in
//!   2026.9.6 also `"0"` = `{"message":…}`, `"1"` = `"verbose"`).
//!
//! Mapping (exactly one event per non-blank line):
//!
//! | record | kind | columns |
//! |---|---|---|
//! | meta `event:"model_fallback_decision"` (subsystem `model-fallback/decision`) | `fallback_decision` | `decision`, `run_id` (`runId`), `session_id` (`sessionId`), `requested_provider`/`requested_model` (`requestedProvider`/`requestedModel`), `provider`/`model` = the candidate (`candidateProvider`/`candidateModel`), `next_provider`/`next_model` (`nextCandidateProvider`/`nextCandidateModel`), `attempt`, `status` (`status`, e.g. `500`, as text), `error` = `reason`, else `errorPreview`, `locality` of the candidate provider |
//! | meta `event:"embedded_run_failover_decision"` (message `embedded run failover decision`, subsystem `agent/embedded`) | `fallback_decision` | `decision`, `run_id`, `provider`/`model` (the model that failed or answered), `requested_provider`/`requested_model` = `sourceProvider`/`sourceModel`, `attempt` = `attemptCount`, `status`, `error` = `failoverReason`, else `profileFailureReason`, else `rawErrorPreview`/`errorPreview`, `locality` |
//! | `agent/embedded` `embedded run <phase>: runId=… sessionId=… provider=… model=… tool=… toolCallId=…` | `log_record` | the `key=value` pairs fill `run_id`, `session_id`, `provider`, `model`, `api`, `tool_name`, `tool_call_id` (joins to transcript tool calls), and go to `attributes` |
//! | anything else | `log_record` | `run_id`, `session_id`, `session_key`, `provider`, `model`, `error` from meta fields of those names (`runId`, `sessionId`, `sessionKey`, `provider`, `model`, `error`) when they are strings |
//! | unreadable line, `_meta` not an object, neither `_meta` nor a positional key | `quarantined` | reason in `error` |
//!
//! Every event: `subsystem` = binding `subsystem` (else `module`; null for the
//! root logger), `level` = `_meta.logLevelName` (else from `logLevelId`),
//! `text` = top-level `message`, else the string arguments joined by a space,
//! `ts` = `_meta.date`, else `time` (local offsets normalised to UTC), else the
//! previous record's time (counted in a note), `session_id` also from the
//! top-level `session_id`, `agent_id` from the top-level `agent_id`, meta
//! `agentId` or the path. `attributes` = the meta object **whole**, as JSON;
//! what the record has besides message and meta (binding fields other than
//! `subsystem`/`module`, extra positional arguments, top-level trace ids,
//! `session_id`, `agent_id` and unknown top-level keys) is added under the key
//! `_log` (left out if the meta itself has a `_log` key; `raw` keeps it). The
//! `_meta` header (runtime, hostname, source path) is left to `raw`.
//!
//! Event ids: blake3 of (`openclaw_gateway_log`, line sha256, byte offset
//! of the line). No file name goes in: the file is renamed on rotation, and a
//! renamed or copied file keeps its bytes at the same offsets, so it dedupes;
//! re-reading a grown file from its checkpoint keeps the ids of its prefix.
//! The line already holds the record's time (ms) and its whole content. Two
//! byte-identical lines in one file are two records (different processes
//! logging the same thing in the same millisecond; the real 2026.9.6 log has
//! 3 such pairs), and their offsets keep them apart, also when the second one
//! is read by a later, resumed run.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde_json::{Map, Value};
use trajectory_schema::{Event, EventKind};

use crate::jsonl::{
    int_field, line_event, parse_time, read_jsonl, str_field, LineParser, LineRecord, ReadStats,
    SourceContext,
};
use crate::locality::locality_of_provider;

/// The `source` column value of events from this reader.
pub const SOURCE: &str = "openclaw_gateway_log";

/// Meta `event` of a model fallback decision (subsystem `model-fallback/decision`).
pub const MODEL_FALLBACK_DECISION: &str = "model_fallback_decision";

/// Meta `event` of an embedded-run failover decision (subsystem `agent/embedded`).
pub const EMBEDDED_RUN_FAILOVER_DECISION: &str = "embedded_run_failover_decision";

/// Subsystem of model fallback decisions.
const FALLBACK_SUBSYSTEM: &str = "model-fallback/decision";

/// Message of embedded-run failover decisions.
const FAILOVER_MESSAGE: &str = "embedded run failover decision";

/// Top-level keys that are not copied to `attributes._log` (they have columns
/// or are the tslog header).
const TOP_LEVEL_MAPPED: &[&str] = &["_meta", "time", "message", "hostname"];

/// Reads a whole gateway log file.
///
/// Never fails on content: unreadable lines become `quarantined` events.
/// Errors: only an I/O error of `reader`.
pub fn read_gateway_log<R: BufRead>(
    reader: R,
    context: &SourceContext,
) -> io::Result<(Vec<Event>, ReadStats)> {
    let mut parser = GatewayLogParser::new(context);
    read_jsonl(reader, context, &mut parser)
}

/// Whether `first_line` is a tslog record of the gateway file log: a JSON
/// object with a `_meta` object holding `date` or `logLevelId`, and a
/// positional `"0"` or a top-level `message`.
pub fn looks_like_gateway_log(first_line: &[u8]) -> bool {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(first_line) else {
        return false;
    };
    let Some(Value::Object(meta)) = object.get("_meta") else {
        return false;
    };
    (meta.contains_key("date") || meta.contains_key("logLevelId"))
        && (object.contains_key("0") || object.contains_key("message"))
}

/// The positional arguments of a tslog record, classified by type.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TslogArgs {
    /// The logger binding (`"0"` as a JSON object), if any.
    pub binding: Option<Map<String, Value>>,
    /// Binding `subsystem`, else `module`.
    pub subsystem: Option<String>,
    /// The first string argument after the binding.
    pub message: Option<String>,
    /// Every string argument after the binding, in order.
    pub strings: Vec<String>,
    /// The first object argument after the binding.
    pub meta: Option<Map<String, Value>>,
    /// Arguments that are neither the binding, the message nor the meta.
    pub extra: Vec<Value>,
}

/// Splits the positional keys (`"0"`, `"1"`, …) of a record by type.
/// `logger_name` is `_meta.name` (the binding string for child loggers).
pub fn split_positional(object: &Map<String, Value>, logger_name: Option<&str>) -> TslogArgs {
    let mut positional: Vec<(u64, &Value)> = object
        .iter()
        .filter_map(|(key, value)| positional_index(key).map(|i| (i, value)))
        .collect();
    positional.sort_by_key(|(i, _)| *i);
    let mut args = TslogArgs::default();
    for (index, value) in positional {
        if index == 0 {
            if let Some(binding) = binding_of(value, logger_name) {
                args.subsystem =
                    str_field(&binding, "subsystem").or_else(|| str_field(&binding, "module"));
                args.binding = Some(binding);
                continue;
            }
        }
        match value {
            Value::String(s) => {
                if args.message.is_none() {
                    args.message = Some(s.clone());
                } else {
                    args.extra.push(value.clone());
                }
                args.strings.push(s.clone());
            }
            Value::Object(map) if args.meta.is_none() => args.meta = Some(map.clone()),
            other => args.extra.push(other.clone()),
        }
    }
    args
}

/// `"0"`, `"1"`, … → the index; other keys → `None`.
fn positional_index(key: &str) -> Option<u64> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse().ok()
}

/// The logger binding held by a `"0"` string, if it is one.
fn binding_of(value: &Value, logger_name: Option<&str>) -> Option<Map<String, Value>> {
    let Value::String(text) = value else {
        return None;
    };
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    let named = logger_name == Some(text.as_str());
    (named || map.contains_key("subsystem") || map.contains_key("module")).then_some(map)
}

/// Parser state for one gateway log file.
pub struct GatewayLogParser<'a> {
    context: &'a SourceContext,
    last_ts: Option<DateTime<Utc>>,
    /// Records without a readable `_meta.date` / `time`.
    untimed: u64,
}

impl LineParser for GatewayLogParser<'_> {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn parse(
        &mut self,
        record: &LineRecord<'_>,
        object: Map<String, Value>,
        out: &mut Vec<Event>,
    ) -> Result<(), String> {
        let header = match object.get("_meta") {
            None => None,
            Some(Value::Object(header)) => Some(header),
            Some(_) => return Err("`_meta` is not an object".into()),
        };
        if header.is_none() && !object.keys().any(|k| positional_index(k).is_some()) {
            return Err("not a tslog record: no `_meta` and no positional arguments".into());
        }
        let logger_name = header.and_then(|h| h.get("name")).and_then(Value::as_str);
        let args = split_positional(&object, logger_name);
        let ts = self.record_time(header, &object);
        let occurrence = record.line.offset.to_string();
        let kind = if is_fallback_decision(&args) {
            EventKind::FallbackDecision
        } else {
            EventKind::LogRecord
        };
        let mut event = line_event(
            self.context,
            SOURCE,
            kind,
            ts,
            record,
            &[SOURCE, &record.sha256, &occurrence],
        );
        event.seq = Some(record.line.number as i64 - 1);
        event.subsystem = args.subsystem.clone();
        event.level = header.and_then(level_of);
        event.text = str_field(&object, "message")
            .or_else(|| (!args.strings.is_empty()).then(|| args.strings.join(" ")));

        let fields = args
            .message
            .as_deref()
            .and_then(embedded_run_fields)
            .unwrap_or_default();
        let mut attributes = match &args.meta {
            Some(meta) => meta.clone(),
            None => fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        };
        let extras = log_extras(&object, &args);
        if !extras.is_empty() && !attributes.contains_key("_log") {
            attributes.insert("_log".into(), Value::Object(extras));
        }
        if !attributes.is_empty() {
            event.attributes = Some(Value::Object(attributes).to_string());
        }

        let meta = args.meta.as_ref();
        let field = |key: &str| fields.get(key).cloned();
        let meta_str = |key: &str| meta.and_then(|m| str_field(m, key));
        let binding_str = |key: &str| args.binding.as_ref().and_then(|b| str_field(b, key));
        event.run_id = meta_str("runId")
            .or_else(|| field("runId"))
            .or_else(|| binding_str("runId"));
        event.session_id = meta_str("sessionId")
            .or_else(|| str_field(&object, "session_id"))
            .or_else(|| field("sessionId"));
        event.session_key = meta_str("sessionKey").or_else(|| field("sessionKey"));
        event.agent_id = str_field(&object, "agent_id")
            .or_else(|| meta_str("agentId"))
            .or_else(|| self.context.agent_id.clone());
        event.provider = meta_str("provider").or_else(|| field("provider"));
        event.model = meta_str("model").or_else(|| field("model"));
        event.api = field("api");
        event.tool_name = field("tool");
        event.tool_call_id = field("toolCallId");
        event.error = meta_str("error");

        if kind == EventKind::FallbackDecision {
            if let Some(meta) = meta {
                let is_failover = meta.get("event").and_then(Value::as_str)
                    == Some(EMBEDDED_RUN_FAILOVER_DECISION)
                    || args
                        .message
                        .as_deref()
                        .is_some_and(|m| m.starts_with(FAILOVER_MESSAGE));
                if is_failover {
                    fill_failover_decision(&mut event, meta);
                } else {
                    fill_model_fallback_decision(&mut event, meta);
                }
            }
        }
        event.locality = event.provider.as_deref().map(locality_of_provider);
        out.push(event);
        Ok(())
    }

    fn finish(&mut self, stats: &mut ReadStats) {
        if self.untimed > 0 {
            stats.notes.push(format!(
                "{} record(s) without a readable `_meta.date` or `time`: the previous record's time was used",
                self.untimed
            ));
        }
    }
}

impl<'a> GatewayLogParser<'a> {
    /// A parser for one file.
    pub fn new(context: &'a SourceContext) -> GatewayLogParser<'a> {
        GatewayLogParser {
            context,
            last_ts: None,
            untimed: 0,
        }
    }

    /// `_meta.date`, else `time`, else the previous record's time.
    fn record_time(
        &mut self,
        header: Option<&Map<String, Value>>,
        object: &Map<String, Value>,
    ) -> DateTime<Utc> {
        // Only ISO strings: tslog writes both as text, and a number here is
        // not epoch ms but a wrong type.
        let iso = |value: &Value| value.is_string().then(|| parse_time(value)).flatten();
        let ts = header
            .and_then(|h| h.get("date"))
            .and_then(iso)
            .or_else(|| object.get("time").and_then(iso));
        match ts {
            Some(ts) => {
                self.last_ts = Some(ts);
                ts
            }
            None => {
                self.untimed += 1;
                self.last_ts.unwrap_or(self.context.ingested_at)
            }
        }
    }
}

/// Whether the record is a fallback / failover decision.
fn is_fallback_decision(args: &TslogArgs) -> bool {
    let Some(meta) = &args.meta else {
        return false;
    };
    let event = meta.get("event").and_then(Value::as_str);
    matches!(
        event,
        Some(MODEL_FALLBACK_DECISION) | Some(EMBEDDED_RUN_FAILOVER_DECISION)
    ) || (event.is_none()
        && (args.subsystem.as_deref() == Some(FALLBACK_SUBSYSTEM)
            || args
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with(FAILOVER_MESSAGE))))
}

/// Columns of a `model_fallback_decision` meta.
fn fill_model_fallback_decision(event: &mut Event, meta: &Map<String, Value>) {
    event.decision = str_field(meta, "decision");
    event.requested_provider = str_field(meta, "requestedProvider");
    event.requested_model = str_field(meta, "requestedModel");
    event.provider = str_field(meta, "candidateProvider");
    event.model = str_field(meta, "candidateModel");
    event.next_provider = str_field(meta, "nextCandidateProvider");
    event.next_model = str_field(meta, "nextCandidateModel");
    event.attempt = int_field(meta, "attempt");
    event.status = meta.get("status").and_then(scalar_text);
    event.error = str_field(meta, "reason").or_else(|| str_field(meta, "errorPreview"));
}

/// Columns of an `embedded_run_failover_decision` meta.
fn fill_failover_decision(event: &mut Event, meta: &Map<String, Value>) {
    event.decision = str_field(meta, "decision");
    event.provider = str_field(meta, "provider");
    event.model = str_field(meta, "model");
    event.requested_provider = str_field(meta, "sourceProvider");
    event.requested_model = str_field(meta, "sourceModel");
    event.attempt = int_field(meta, "attemptCount");
    event.status = meta.get("status").and_then(scalar_text);
    event.error = str_field(meta, "failoverReason")
        .or_else(|| str_field(meta, "profileFailureReason"))
        .or_else(|| str_field(meta, "rawErrorPreview"))
        .or_else(|| str_field(meta, "errorPreview"));
}

/// A string, number or boolean as text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The level name: `logLevelName`, else tslog's name for `logLevelId`.
fn level_of(header: &Map<String, Value>) -> Option<String> {
    str_field(header, "logLevelName").or_else(|| {
        let name = match header.get("logLevelId").and_then(Value::as_i64)? {
            0 => "SILLY",
            1 => "TRACE",
            2 => "DEBUG",
            3 => "INFO",
            4 => "WARN",
            5 => "ERROR",
            6 => "FATAL",
            _ => return None,
        };
        Some(name.to_string())
    })
}

/// What the record holds besides message, meta and mapped header keys.
fn log_extras(object: &Map<String, Value>, args: &TslogArgs) -> Map<String, Value> {
    let mut extras = Map::new();
    if let Some(binding) = &args.binding {
        let rest: Map<String, Value> = binding
            .iter()
            .filter(|(k, _)| k.as_str() != "subsystem" && k.as_str() != "module")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !rest.is_empty() {
            extras.insert("binding".into(), Value::Object(rest));
        }
    }
    if !args.extra.is_empty() {
        extras.insert("args".into(), Value::Array(args.extra.clone()));
    }
    for (key, value) in object {
        if positional_index(key).is_none() && !TOP_LEVEL_MAPPED.contains(&key.as_str()) {
            extras.insert(key.clone(), value.clone());
        }
    }
    extras
}

/// The `key=value` pairs of an `embedded run <phase>: k=v …` message.
fn embedded_run_fields(message: &str) -> Option<BTreeMap<String, String>> {
    static PAIR: OnceLock<Option<Regex>> = OnceLock::new();
    let rest = message.strip_prefix("embedded run ")?;
    let (_, pairs) = rest.split_once(": ")?;
    let pair = PAIR
        .get_or_init(|| Regex::new(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=(\S+)").ok())
        .as_ref()?;
    let fields: BTreeMap<String, String> = pair
        .captures_iter(pairs)
        .filter_map(|c| {
            Some((
                c.get(1)?.as_str().to_string(),
                c.get(2)?.as_str().to_string(),
            ))
        })
        .collect();
    (!fields.is_empty()).then_some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::{BTreeMap, HashSet};

    use chrono::TimeZone;

    const NEW_LOG: &str = "openclaw-2026.9.6-2026-11-22.log.zst";
    const LEGACY_LOG: &str = "openclaw-2026.5.28-2026-11-22.log.zst";

    fn context() -> SourceContext {
        SourceContext {
            source_uri: "file:///tmp/openclaw/openclaw-2026-11-22.log".into(),
            agent_id: None,
            session_id_hint: None,
            ingest_id: "ing".into(),
            ingested_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            max_line_bytes: 1 << 20,
        }
    }

    fn test_data(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/logs")
            .join(name);
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        zstd::decode_all(file).unwrap()
    }

    fn read(data: &[u8]) -> (Vec<Event>, ReadStats) {
        read_gateway_log(data, &context()).unwrap()
    }

    /// The lines of a file as JSON objects, parsed without the reader.
    fn scan(data: &[u8]) -> Vec<Map<String, Value>> {
        data.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| match serde_json::from_slice(l).unwrap() {
                Value::Object(o) => o,
                other => panic!("not an object: {other}"),
            })
            .collect()
    }

    /// Independent count of decision records: a positional object argument
    /// whose `event` is one of the two decision markers.
    fn count_decisions(lines: &[Map<String, Value>]) -> usize {
        lines
            .iter()
            .filter(|o| {
                o.iter().any(|(k, v)| {
                    k.chars().all(|c| c.is_ascii_digit())
                        && matches!(
                            v.get("event").and_then(Value::as_str),
                            Some("model_fallback_decision" | "embedded_run_failover_decision")
                        )
                })
            })
            .count()
    }

    fn check_real_log(name: &str) -> Vec<Event> {
        let data = test_data(name);
        let lines = scan(&data);
        let (events, stats) = read(&data);
        assert_eq!(stats.quarantined, 0, "{name}");
        assert_eq!(stats.lines as usize, lines.len(), "{name}");
        assert_eq!(events.len(), lines.len(), "{name}: one event per line");
        let decisions = count_decisions(&lines);
        assert!(decisions > 0, "{name} has decision records");
        let found = events
            .iter()
            .filter(|e| e.kind == EventKind::FallbackDecision)
            .count();
        assert_eq!(found, decisions, "{name}");
        let ids: HashSet<_> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(
            ids.len(),
            events.len(),
            "{name}: ids are unique, duplicates included"
        );
        // Every event's time is `_meta.date` (UTC), and the `time` the file
        // transport stamped (with a `+00:00` offset) is the same instant to
        // within the few ms the write took.
        for (event, line) in events.iter().zip(&lines) {
            assert_eq!(Some(event.ts), parse_time(&line["_meta"]["date"]), "{name}");
            let time = parse_time(&line["time"]).unwrap();
            let delta = (event.ts - time).num_milliseconds().abs();
            assert!(delta <= 50, "{name} line {:?}", event.source_line);
        }
        events
    }

    #[test]
    fn real_2026_9_6_log_yields_every_fallback_decision_and_one_event_per_line() {
        let events = check_real_log(NEW_LOG);
        let model_fallback: Vec<&Event> = events
            .iter()
            .filter(|e| e.subsystem.as_deref() == Some("model-fallback/decision"))
            .collect();
        assert!(!model_fallback.is_empty());
        assert!(model_fallback
            .iter()
            .all(|e| e.kind == EventKind::FallbackDecision));
        let failed = model_fallback
            .iter()
            .find(|e| {
                e.decision.as_deref() == Some("candidate_failed")
                    && e.status.as_deref() == Some("500")
            })
            .expect("a candidate_failed decision with HTTP 500");
        assert_eq!(failed.requested_provider.as_deref(), Some("ollama"));
        assert_eq!(failed.provider.as_deref(), Some("ollama"));
        assert_eq!(failed.model.as_deref(), Some("qwen3:8b-stub"));
        assert_eq!(failed.next_provider.as_deref(), Some("cloudstub"));
        assert_eq!(failed.next_model.as_deref(), Some("stub-cloud-large"));
        assert_eq!(failed.attempt, Some(1));
        assert_eq!(failed.error.as_deref(), Some("server_error"));
        assert_eq!(failed.level.as_deref(), Some("WARN"));
        assert_eq!(failed.locality, Some(trajectory_schema::Locality::Local));
        assert!(failed.run_id.is_some() && failed.session_id.is_some());
        let attributes: Value =
            serde_json::from_str(failed.attributes.as_deref().unwrap()).unwrap();
        assert_eq!(attributes["event"], "model_fallback_decision");
        assert_eq!(
            attributes["fallbackStepToModel"],
            "cloudstub/stub-cloud-large"
        );
        assert!(attributes["_log"]["traceId"].is_string());

        let failover: Vec<&Event> = events
            .iter()
            .filter(|e| e.text.as_deref() == Some("embedded run failover decision"))
            .collect();
        assert!(!failover.is_empty());
        for e in &failover {
            assert_eq!(e.kind, EventKind::FallbackDecision);
            assert_eq!(e.subsystem.as_deref(), Some("agent/embedded"));
            assert!(e.decision.is_some() && e.run_id.is_some() && e.provider.is_some());
        }
        assert!(failover
            .iter()
            .any(|e| e.decision.as_deref() == Some("continue_normal")));
    }

    #[test]
    fn real_2026_5_28_log_yields_every_fallback_decision_and_one_event_per_line() {
        let events = check_real_log(LEGACY_LOG);
        let fallback_model = events
            .iter()
            .find(|e| e.decision.as_deref() == Some("fallback_model"))
            .expect("an embedded-run failover to the fallback model");
        assert_eq!(fallback_model.kind, EventKind::FallbackDecision);
        assert_eq!(fallback_model.status.as_deref(), Some("408"));
        assert_eq!(fallback_model.error.as_deref(), Some("timeout"));
        assert_eq!(fallback_model.requested_provider.as_deref(), Some("ollama"));
    }

    #[test]
    fn subsystems_match_an_independent_scan_of_the_bindings() {
        for name in [NEW_LOG, LEGACY_LOG] {
            let data = test_data(name);
            let mut expected: BTreeMap<String, usize> = BTreeMap::new();
            for line in scan(&data) {
                let binding = line["0"]
                    .as_str()
                    .and_then(|s| serde_json::from_str::<Value>(s).ok())
                    .filter(Value::is_object);
                let key = binding
                    .and_then(|b| {
                        b.get("subsystem")
                            .or_else(|| b.get("module"))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| "<root>".into());
                *expected.entry(key).or_default() += 1;
            }
            let (events, _) = read(&data);
            let mut found: BTreeMap<String, usize> = BTreeMap::new();
            for e in &events {
                let key = e.subsystem.clone().unwrap_or_else(|| "<root>".into());
                *found.entry(key).or_default() += 1;
            }
            assert_eq!(found, expected, "{name}");
            assert!(expected.contains_key("agent/embedded"));
            assert!(
                expected.contains_key("cron"),
                "module bindings count as subsystems"
            );
        }
    }

    #[test]
    fn embedded_run_lines_fill_run_session_provider_model_and_tool_ids() {
        let (events, _) = read(&test_data(NEW_LOG));
        let starts: Vec<&Event> = events
            .iter()
            .filter(|e| {
                e.text
                    .as_deref()
                    .is_some_and(|t| t.starts_with("embedded run start:"))
            })
            .collect();
        assert!(!starts.is_empty());
        for e in &starts {
            assert_eq!(e.kind, EventKind::LogRecord);
            assert!(e.run_id.is_some(), "{:?}", e.text);
            assert!(e.session_id.is_some(), "{:?}", e.text);
            assert!(e.provider.is_some() && e.model.is_some(), "{:?}", e.text);
            let text = e.text.as_deref().unwrap();
            assert!(text.contains(&format!("runId={} ", e.run_id.as_deref().unwrap())));
            assert!(text.contains(&format!("model={} ", e.model.as_deref().unwrap())));
        }
        let done = events
            .iter()
            .find(|e| {
                e.text
                    .as_deref()
                    .is_some_and(|t| t.starts_with("embedded run done:"))
            })
            .unwrap();
        let attributes: Value = serde_json::from_str(done.attributes.as_deref().unwrap()).unwrap();
        assert!(attributes["durationMs"].is_string());
        let tool = events
            .iter()
            .find(|e| {
                e.text
                    .as_deref()
                    .is_some_and(|t| t.starts_with("embedded run tool start:"))
            })
            .unwrap();
        assert!(tool.tool_name.is_some());
        assert!(tool.tool_call_id.as_deref().unwrap().starts_with("call_"));
    }

    const BINDING: &str = r#""0":"{\"subsystem\":\"model-fallback/decision\"}""#;
    const META: &str = r#"{"event":"model_fallback_decision","runId":"r1","decision":"candidate_failed","requestedProvider":"ollama","requestedModel":"q","candidateProvider":"ollama","candidateModel":"q","attempt":1,"total":2,"reason":"timeout","status":408,"nextCandidateProvider":"anthropic","nextCandidateModel":"claude"}"#;
    const HEADER: &str = r#""_meta":{"name":"{\"subsystem\":\"model-fallback/decision\"}","date":"2026-03-28T23:46:57.621Z","logLevelId":4,"logLevelName":"WARN"},"time":"2026-03-28T16:46:57.621-07:00""#;

    #[test]
    fn meta_and_message_are_found_by_type_in_either_order() {
        let meta_first =
            format!(r#"{{{BINDING},"1":{META},"2":"model fallback decision",{HEADER}}}"#);
        let message_first =
            format!(r#"{{{BINDING},"1":"model fallback decision","2":{META},{HEADER}}}"#);
        let data = format!("{meta_first}\n{message_first}\n");
        let (events, stats) = read(data.as_bytes());
        assert_eq!(stats.quarantined, 0);
        assert_eq!(events.len(), 2);
        for e in &events {
            assert_eq!(e.kind, EventKind::FallbackDecision);
            assert_eq!(e.subsystem.as_deref(), Some("model-fallback/decision"));
            assert_eq!(e.text.as_deref(), Some("model fallback decision"));
            assert_eq!(e.decision.as_deref(), Some("candidate_failed"));
            assert_eq!(e.status.as_deref(), Some("408"));
            assert_eq!(e.next_provider.as_deref(), Some("anthropic"));
            assert_eq!(e.locality, Some(trajectory_schema::Locality::Local));
            assert_eq!(e.run_id.as_deref(), Some("r1"));
        }
        assert_eq!(events[0].attributes, events[1].attributes);
        assert_ne!(events[0].event_id, events[1].event_id);
    }

    #[test]
    fn root_logger_lines_keep_their_message() {
        let line = r#"{"0":"Gateway failed to start: gateway already running (pid 1001)","_meta":{"name":"openclaw","date":"2026-02-17T00:00:01.331Z","logLevelId":5,"logLevelName":"ERROR"},"time":"2026-02-17T00:00:01.331Z"}"#;
        let (events, _) = read(format!("{line}\n").as_bytes());
        let e = &events[0];
        assert_eq!(e.kind, EventKind::LogRecord);
        assert_eq!(e.subsystem, None);
        assert_eq!(e.level.as_deref(), Some("ERROR"));
        assert_eq!(
            e.text.as_deref(),
            Some("Gateway failed to start: gateway already running (pid 1001)")
        );
        assert_eq!(e.attributes, None);
        // A root message that happens to be JSON is not taken for a binding.
        let json_message = r#"{"0":"{\"ok\":true}","_meta":{"name":"openclaw","date":"2026-02-17T00:00:01.331Z","logLevelId":3}}"#;
        let (events, _) = read(format!("{json_message}\n").as_bytes());
        assert_eq!(events[0].subsystem, None);
        assert_eq!(events[0].text.as_deref(), Some(r#"{"ok":true}"#));
        assert_eq!(events[0].level.as_deref(), Some("INFO"));
    }

    #[test]
    fn local_time_offsets_become_utc() {
        let line = r#"{"0":"{\"module\":\"cron\",\"storePath\":\"/x/jobs.json\"}","1":{"nextAt":1},"2":"cron: timer armed","time":"2026-03-28T16:46:57.621-07:00"}"#;
        let (events, stats) = read(format!("{line}\n").as_bytes());
        assert_eq!(stats.quarantined, 0);
        let e = &events[0];
        assert_eq!(e.ts.to_rfc3339(), "2026-03-28T23:46:57.621+00:00");
        assert_eq!(e.subsystem.as_deref(), Some("cron"));
        let attributes: Value = serde_json::from_str(e.attributes.as_deref().unwrap()).unwrap();
        assert_eq!(attributes["nextAt"], 1);
        assert_eq!(attributes["_log"]["binding"]["storePath"], "/x/jobs.json");
    }

    #[test]
    fn identical_lines_are_kept_apart_and_ids_do_not_depend_on_the_file() {
        let line = r#"{"0":"{\"subsystem\":\"plugins\"}","1":"[hooks] running session_end","_meta":{"date":"2026-11-22T02:28:41.825Z","logLevelName":"DEBUG"}}"#;
        let other = r#"{"0":"other","_meta":{"date":"2026-11-22T02:28:42.000Z"}}"#;
        let data = format!("{line}\n{other}\n{line}\n");
        let (events, _) = read(data.as_bytes());
        assert_eq!(events.len(), 3);
        assert_ne!(events[0].event_id, events[2].event_id);
        // The same bytes under another name (a rotated file) and with more
        // lines appended give the same ids.
        let mut rotated = context();
        rotated.source_uri = "file:///tmp/openclaw/openclaw-2026-11-22.1.log".into();
        let grown = format!("{data}{other}\n");
        let (again, _) = read_gateway_log(grown.as_bytes(), &rotated).unwrap();
        let ids: Vec<_> = events.iter().map(|e| &e.event_id).collect();
        let again_ids: Vec<_> = again.iter().take(3).map(|e| &e.event_id).collect();
        assert_eq!(ids, again_ids);
        assert_ne!(again[3].event_id, again[1].event_id);
    }

    #[test]
    fn wrong_shapes_are_quarantined_or_kept_never_dropped() {
        let data = concat!(
            r#"{"0":"x","_meta":"not an object"}"#,
            "\n",
            r#"{"level":"info","msg":"not tslog"}"#,
            "\n",
            r#"{"0":42,"1":[1,2],"_meta":{"date":"2026-01-01T00:00:00Z"}}"#,
            "\n",
            r#"{"0":"no time"}"#,
            "\n",
            r#"{"0":"{\"subsystem\":\"model-fallback/decision\"}","1":{"event":"model_fallback_decision","attempt":"one","status":{"x":1}},"2":"model fallback decision","_meta":{"date":7}}"#,
            "\n",
        );
        let (events, stats) = read(data.as_bytes());
        assert_eq!(events.len(), 5);
        assert_eq!(stats.quarantined, 2);
        assert_eq!(events[0].kind, EventKind::Quarantined);
        assert!(events[0].error.as_deref().unwrap().contains("_meta"));
        assert_eq!(events[1].kind, EventKind::Quarantined);
        assert_eq!(events[2].kind, EventKind::LogRecord);
        let attributes: Value =
            serde_json::from_str(events[2].attributes.as_deref().unwrap()).unwrap();
        assert_eq!(attributes["_log"]["args"], serde_json::json!([42, [1, 2]]));
        assert_eq!(events[3].text.as_deref(), Some("no time"));
        assert_eq!(events[3].ts, events[2].ts, "previous record's time");
        assert_eq!(events[4].kind, EventKind::FallbackDecision);
        assert_eq!(events[4].attempt, None);
        assert_eq!(events[4].status, None);
        assert!(stats.notes[0].contains("2 record(s)"), "{:?}", stats.notes);
    }

    #[test]
    fn looks_like_recognises_tslog_first_lines() {
        let data = test_data(NEW_LOG);
        let first = data.split(|b| *b == b'\n').next().unwrap();
        assert!(looks_like_gateway_log(first));
        let legacy = test_data(LEGACY_LOG);
        assert!(looks_like_gateway_log(
            legacy.split(|b| *b == b'\n').next().unwrap()
        ));
        assert!(!looks_like_gateway_log(
            br#"{"type":"session","version":3,"id":"s"}"#
        ));
        assert!(!looks_like_gateway_log(
            br#"{"ts":"2026-03-08T12:03:39.641Z","source":"config-io","event":"config.write"}"#
        ));
        assert!(!looks_like_gateway_log(b"not json"));
        assert!(!looks_like_gateway_log(br#"{"0":"x","_meta":"y"}"#));
    }

    #[test]
    fn embedded_run_fields_parse_key_value_text() {
        let fields = embedded_run_fields(
            "embedded run start: runId=r sessionId=s provider=ollama model=qwen3:8b thinking=off",
        )
        .unwrap();
        assert_eq!(fields["runId"], "r");
        assert_eq!(fields["model"], "qwen3:8b");
        assert!(embedded_run_fields("embedded run agent end").is_none());
        assert!(embedded_run_fields("lane enqueue: lane=x").is_none());
    }
}
