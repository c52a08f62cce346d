//! Reader for OpenClaw cron run logs (`~/.openclaw/cron/runs/<jobId>.jsonl`).
//!
//! Format source: OpenClaw's `CronRunLogEntry`, `shared/docs/openclaw-formats.md`
//! §3.6 and §8.2, checked against real files: a Moltbot 2026.1.x log
//! (`tests/data/records/moltbot-2026.1/…`) and the two logs written by
//! openclaw 2026.5.28 (`tests/data/records/openclaw-2026.5.28/cron/runs/`).
//! One line per finished run:
//! `{ts(ms), jobId, action:"finished", status?, error?, summary?, delivered?,
//! deliveryStatus?, deliveryError?, delivery?, diagnostics?, sessionId?, sessionKey?,
//! runAtMs?, durationMs?, nextRunAtMs?, model?, provider?, usage?{input_tokens,
//! output_tokens, total_tokens, cache_read_tokens, cache_write_tokens}}`.
//! OpenClaw 2026.9 moved run history into SQLite (`cron_run_receipts`); this
//! reader covers the JSONL era.
//!
//! Mapping (one `cron_run` event per line):
//!
//! | field | column |
//! |---|---|
//! | `ts` (epoch ms; else `runAtMs + durationMs`, else the previous line's time) | `ts` |
//! | `status` (as written) | `status` |
//! | `error`; else `summary` when `status` is `error`; else `summary` when it matches a failure pattern (below) | `error` |
//! | `summary` | `text` |
//! | `runId` (not written by the versions seen) | `run_id` |
//! | `sessionId`, `sessionKey` | `session_id`, `session_key` |
//! | `provider`, `model` | `provider`, `model`, `locality` |
//! | `usage.input_tokens` / `output_tokens` / `cache_read_tokens` / `cache_write_tokens` (camelCase `input`/`output`/`cacheRead`/`cacheWrite` accepted too) | token columns |
//! | `durationMs` | `latency_ms` |
//! | `jobId`, `action`, `runAtMs`, `nextRunAtMs`, delivery fields, `diagnostics`, `usage` (with `total_tokens`), unknown fields | `attributes` (the line minus the fields above) |
//! | (constant) | `subsystem` = `cron` |
//!
//! **Failures logged as `"ok"`.** Old versions (Moltbot 2026.1) record provider
//! failures with `status:"ok"` and the error only in `summary`. The status is
//! kept as written; `error` is set to the summary, and `attributes.errorInferredFrom`
//! to `"summary"`, when the summary's first line (of a summary at most
//! [`MAX_INFERRED_ERROR_CHARS`] long) *starts* with one of:
//! `HTTP 4xx/5xx`; `4xx/5xx {` (a status and a JSON body); an Anthropic/OpenAI
//! error type (`authentication_error`, `permission_error`, `rate_limit_error`,
//! `overloaded_error`, `api_error`, `invalid_request_error`, `not_found_error`);
//! `You have hit your … usage limit`; `All models failed` (optionally after
//! `FallbackSummaryError:`); or is exactly `fetch failed`, `terminated` or
//! `Request was aborted`. Only the start is matched, so a model reply that merely
//! mentions an error is not flagged. Tool failures reported in the summary
//! (`⚠️ … failed: …`) are not run failures and are not flagged.
//!
//! Event ids: blake3 of (source, jobId, ts in ms, line sha256), so the same run
//! line read from a pruned/rewritten copy of the log gives the same id.
//! Lines whose fields have the wrong JSON type (`ts`, `jobId`, `status`,
//! `durationMs`, `usage`, …) are quarantined with the reason.

use std::io::{self, BufRead};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde_json::{Map, Value};
use trajectory_schema::{Event, EventKind};

use crate::jsonl::{
    line_event, parse_time, read_jsonl, LineParser, LineRecord, ReadStats, SourceContext,
};
use crate::locality::locality_of_provider;

/// The `source` column value of events from this reader.
pub const SOURCE: &str = "openclaw_cron_run_log";

/// Summaries longer than this are never read as an inferred error.
pub const MAX_INFERRED_ERROR_CHARS: usize = 2000;

/// Fields mapped to columns and therefore left out of `attributes`.
const MAPPED_FIELDS: &[&str] = &[
    "ts",
    "status",
    "error",
    "summary",
    "runId",
    "sessionId",
    "sessionKey",
    "provider",
    "model",
    "durationMs",
];

/// Reads a whole cron run log.
///
/// Never fails on content: unreadable lines become `quarantined` events.
/// Errors: only an I/O error of `reader`.
pub fn read_cron_run_log<R: BufRead>(
    reader: R,
    context: &SourceContext,
) -> io::Result<(Vec<Event>, ReadStats)> {
    let mut parser = CronRunLogParser::new(context);
    read_jsonl(reader, context, &mut parser)
}

/// Whether `first_line` looks like a cron run log line: a JSON object with a
/// string `jobId`, a numeric `ts` and a string `action` or `status`.
pub fn looks_like_cron_run_log(first_line: &[u8]) -> bool {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(first_line) else {
        return false;
    };
    object.get("jobId").is_some_and(Value::is_string)
        && object.get("ts").is_some_and(Value::is_number)
        && (object.get("action").is_some_and(Value::is_string)
            || object.get("status").is_some_and(Value::is_string))
}

/// Whether a run summary reads as a failure (see the module doc for the rule).
pub fn summary_is_failure(summary: &str) -> bool {
    if summary.chars().count() > MAX_INFERRED_ERROR_CHARS {
        return false;
    }
    let first_line = summary.trim_start().lines().next().unwrap_or("").trim_end();
    failure_pattern().is_some_and(|re| re.is_match(first_line))
}

fn failure_pattern() -> Option<&'static Regex> {
    static PATTERN: OnceLock<Option<Regex>> = OnceLock::new();
    PATTERN
        .get_or_init(|| {
            Regex::new(concat!(
                r"^(?:",
                r"HTTP [45]\d\d\b",
                r"|[45]\d\d \{",
                r"|(?:error: )?(?:authentication|permission|rate_limit|overloaded|api|invalid_request|not_found)_error\b",
                r"|(?i:you have hit your .{0,80}usage limit)",
                r"|(?:FallbackSummaryError: )?All models failed\b",
                r"|(?:fetch failed|terminated|Request was aborted)\.?$",
                r")",
            ))
            .ok()
        })
        .as_ref()
}

/// The cron run log format as a [`LineParser`].
pub struct CronRunLogParser<'a> {
    context: &'a SourceContext,
    last_ts: Option<DateTime<Utc>>,
    inferred_errors: u64,
}

impl<'a> CronRunLogParser<'a> {
    /// A parser for one file.
    pub fn new(context: &'a SourceContext) -> CronRunLogParser<'a> {
        CronRunLogParser {
            context,
            last_ts: None,
            inferred_errors: 0,
        }
    }
}

/// An optional field that must be a string when present (null counts as absent).
fn opt_str(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("`{key}` is {}, not a string", type_name(other))),
    }
}

/// An optional field that must be a number when present (null counts as absent).
fn opt_num(object: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(format!("`{key}` is {}, not a number", type_name(other))),
    }
}

/// A string field that may also be written as another JSON value (kept as JSON text).
fn lenient_text(object: &Map<String, Value>, key: &str) -> Option<String> {
    match object.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// A token count: a non-negative integer (floats truncated), else `None`.
fn token(usage: &Map<String, Value>, keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|key| {
        let value = usage.get(*key)?;
        value
            .as_i64()
            .or_else(|| value.as_f64().map(|f| f as i64))
            .filter(|n| *n >= 0)
    })
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl LineParser for CronRunLogParser<'_> {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn parse(
        &mut self,
        record: &LineRecord<'_>,
        entry: Map<String, Value>,
        out: &mut Vec<Event>,
    ) -> Result<(), String> {
        let ts_ms = opt_num(&entry, "ts")?;
        let job_id = opt_str(&entry, "jobId")?;
        let status = opt_str(&entry, "status")?;
        let run_at_ms = opt_num(&entry, "runAtMs")?;
        let duration_ms = opt_num(&entry, "durationMs")?;
        opt_num(&entry, "nextRunAtMs")?;
        opt_str(&entry, "action")?;
        let session_id = opt_str(&entry, "sessionId")?;
        let session_key = opt_str(&entry, "sessionKey")?;
        let provider = opt_str(&entry, "provider")?;
        let model = opt_str(&entry, "model")?;
        let run_id = opt_str(&entry, "runId")?;
        let usage = match entry.get("usage") {
            None | Some(Value::Null) => None,
            Some(Value::Object(usage)) => Some(usage),
            Some(other) => return Err(format!("`usage` is {}, not an object", type_name(other))),
        };
        let summary = lenient_text(&entry, "summary");
        let written_error = lenient_text(&entry, "error");

        let ts = ts_ms
            .and_then(|ms| parse_time(&Value::from(ms)))
            .or_else(|| {
                run_at_ms
                    .map(|at| at + duration_ms.unwrap_or(0.0))
                    .and_then(|ms| parse_time(&Value::from(ms)))
            })
            .or(self.last_ts)
            .unwrap_or(self.context.ingested_at);
        self.last_ts = Some(ts);

        let mut inferred = false;
        let error = written_error.or_else(|| match (&status, &summary) {
            (Some(s), Some(summary)) if s == "error" => Some(summary.clone()),
            (_, Some(summary)) if summary_is_failure(summary) => {
                inferred = true;
                Some(summary.clone())
            }
            _ => None,
        });
        if inferred {
            self.inferred_errors += 1;
        }

        let job = job_id
            .clone()
            .or_else(|| self.context.session_id_hint.clone())
            .unwrap_or_default();
        let ts_part = ts.timestamp_millis().to_string();
        let mut event = line_event(
            self.context,
            SOURCE,
            EventKind::CronRun,
            ts,
            record,
            &[SOURCE, &job, &ts_part, &record.sha256],
        );
        event.seq = Some(record.line.number as i64 - 1);
        event.subsystem = Some("cron".into());
        event.status = status;
        event.error = error;
        event.text = summary;
        event.run_id = run_id;
        event.session_id = session_id;
        event.session_key = session_key;
        event.locality = provider.as_deref().map(locality_of_provider);
        event.provider = provider;
        event.model = model;
        event.latency_ms = duration_ms.map(|ms| ms as i64).filter(|ms| *ms >= 0);
        if let Some(usage) = usage {
            event.input_tokens = token(usage, &["input_tokens", "input"]);
            event.output_tokens = token(usage, &["output_tokens", "output"]);
            event.cache_read_tokens = token(usage, &["cache_read_tokens", "cacheRead"]);
            event.cache_write_tokens = token(usage, &["cache_write_tokens", "cacheWrite"]);
        }
        let mut attributes: Map<String, Value> = entry
            .into_iter()
            .filter(|(key, _)| !MAPPED_FIELDS.contains(&key.as_str()))
            .collect();
        if job_id.is_none() && !job.is_empty() {
            attributes.insert("jobIdFromFileName".into(), Value::String(job));
        }
        if inferred {
            attributes.insert("errorInferredFrom".into(), Value::String("summary".into()));
        }
        event.attributes = Some(Value::Object(attributes).to_string());
        out.push(event);
        Ok(())
    }

    fn finish(&mut self, stats: &mut ReadStats) {
        if self.inferred_errors > 0 {
            stats.notes.push(format!(
                "{} run(s) logged with a non-error status have a summary that reads as a failure; `error` set from `summary`",
                self.inferred_errors
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::TimeZone;
    use std::path::PathBuf;

    fn data_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/records")
    }

    fn context(hint: &str) -> SourceContext {
        SourceContext {
            source_uri: format!("file:///cron/runs/{hint}.jsonl"),
            agent_id: None,
            session_id_hint: Some(hint.into()),
            ingest_id: "ing".into(),
            ingested_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            max_line_bytes: 1 << 20,
        }
    }

    fn read_file(relative: &str) -> (Vec<u8>, Vec<Event>, ReadStats) {
        let bytes = std::fs::read(data_dir().join(relative)).unwrap();
        let (events, stats) = read_cron_run_log(&bytes[..], &context("job")).unwrap();
        (bytes, events, stats)
    }

    fn attrs(event: &Event) -> Map<String, Value> {
        match serde_json::from_str(event.attributes.as_deref().unwrap()).unwrap() {
            Value::Object(map) => map,
            _ => panic!("attributes not an object"),
        }
    }

    const MOLTBOT: &str =
        "moltbot-2026.1/cron/runs/1a9a1120-676f-4927-ae24-9884b97796bd.excerpt.jsonl";

    #[test]
    fn moltbot_log_one_cron_run_per_line_with_ok_status_failures_flagged() {
        let (bytes, events, stats) = read_file(MOLTBOT);
        let lines: Vec<Value> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert!(lines.len() > 10, "sanity");
        assert_eq!(events.len(), lines.len());
        assert_eq!(stats.quarantined, 0);
        assert!(events.iter().all(|e| e.kind == EventKind::CronRun));
        // Status is kept as written.
        for (event, line) in events.iter().zip(&lines) {
            assert_eq!(event.status.as_deref(), line["status"].as_str());
            assert_eq!(event.ts.timestamp_millis(), line["ts"].as_i64().unwrap());
            assert_eq!(event.latency_ms, line["durationMs"].as_i64());
            assert_eq!(event.text.as_deref(), line["summary"].as_str());
            assert_eq!(attrs(event)["jobId"], line["jobId"]);
            assert_eq!(attrs(event)["nextRunAtMs"], line["nextRunAtMs"]);
            assert!(event.session_id.is_none() && event.provider.is_none());
        }
        assert!(events.iter().all(|e| e.status.as_deref() == Some("ok")));
        let errors: Vec<&str> = events.iter().filter_map(|e| e.error.as_deref()).collect();
        let http401 = errors
            .iter()
            .filter(|e| e.starts_with("HTTP 401 authentication_error"))
            .count();
        let http403 = errors
            .iter()
            .filter(|e| e.starts_with("HTTP 403 permission_error"))
            .count();
        let limit = errors.iter().filter(|e| e.contains("usage limit")).count();
        assert_eq!((http401, http403, limit), (7, 1, 1), "{errors:#?}");
        assert_eq!(errors.len(), 9, "the ordinary summaries are not errors");
        for event in events.iter().filter(|e| e.error.is_some()) {
            assert_eq!(attrs(event)["errorInferredFrom"], "summary");
            assert_eq!(event.error, event.text);
        }
        assert!(
            stats.notes.iter().any(|n| n.contains("9 run(s)")),
            "{:?}",
            stats.notes
        );
        let ids: std::collections::HashSet<_> = events.iter().map(|e| &e.event_id).collect();
        assert_eq!(ids.len(), events.len());
        let (_, again, _) = read_file(MOLTBOT);
        assert_eq!(
            events.iter().map(|e| &e.event_id).collect::<Vec<_>>(),
            again.iter().map(|e| &e.event_id).collect::<Vec<_>>(),
            "ids are deterministic"
        );
    }

    #[test]
    fn openclaw_2026_5_error_run_keeps_error_and_diagnostics() {
        let (bytes, events, stats) =
            read_file("openclaw-2026.5.28/cron/runs/0d396c7e-364e-48d2-9bf1-c03ade8faba0.jsonl");
        let line: Value = serde_json::from_slice(bytes.trim_ascii_end()).unwrap();
        assert_eq!(stats.quarantined, 0);
        assert_eq!(events.len(), 1);
        let run = &events[0];
        assert_eq!(run.status.as_deref(), Some("error"));
        assert_eq!(run.error.as_deref(), line["error"].as_str());
        assert!(run
            .error
            .as_deref()
            .unwrap()
            .contains("All models failed (3)"));
        assert_eq!(run.session_id.as_deref(), line["sessionId"].as_str());
        assert_eq!(run.session_key.as_deref(), line["sessionKey"].as_str());
        assert_eq!(run.latency_ms, Some(6913));
        let attributes = attrs(run);
        assert_eq!(attributes["diagnostics"], line["diagnostics"]);
        assert_eq!(attributes["deliveryStatus"], "not-requested");
        assert!(!attributes.contains_key("errorInferredFrom"));
        assert!(!attributes.contains_key("error"), "mapped to the column");
    }

    #[test]
    fn openclaw_2026_5_ok_run_has_model_usage_and_delivery() {
        let (bytes, events, _) =
            read_file("openclaw-2026.5.28/cron/runs/f2e2b97d-61a5-4ff3-94dc-442e9d1411cc.jsonl");
        let line: Value = serde_json::from_slice(bytes.trim_ascii_end()).unwrap();
        let run = &events[0];
        assert_eq!(run.status.as_deref(), Some("ok"));
        assert_eq!(run.error, None);
        assert_eq!(run.provider.as_deref(), Some("ollama"));
        assert_eq!(run.model.as_deref(), line["model"].as_str());
        assert_eq!(run.locality, Some(trajectory_schema::Locality::Local));
        assert_eq!(run.input_tokens, line["usage"]["input_tokens"].as_i64());
        assert_eq!(run.output_tokens, line["usage"]["output_tokens"].as_i64());
        assert_eq!(run.cache_read_tokens, None, "not written by this version");
        let attributes = attrs(run);
        assert_eq!(attributes["delivery"], line["delivery"]);
        assert_eq!(
            attributes["usage"]["total_tokens"],
            line["usage"]["total_tokens"]
        );
        assert_eq!(attributes["runAtMs"], line["runAtMs"]);
    }

    #[test]
    fn wrong_types_are_quarantined_and_missing_ts_falls_back() {
        let data = concat!(
            r#"{"ts":"yesterday","jobId":"j","action":"finished","status":"ok"}"#,
            "\n",
            r#"{"ts":1,"jobId":7,"action":"finished"}"#,
            "\n",
            r#"{"ts":1,"jobId":"j","usage":[1]}"#,
            "\n",
            r#"{"jobId":"j","action":"finished","status":"error","summary":"boom","runAtMs":1000,"durationMs":500}"#,
            "\n",
            r#"{"ts":2000,"action":"finished","status":"ok","summary":"The HTTP 401 code means unauthorized."}"#,
            "\n",
        );
        let (events, stats) = read_cron_run_log(data.as_bytes(), &context("job-x")).unwrap();
        assert_eq!(stats.quarantined, 3);
        let reasons: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::Quarantined)
            .map(|e| e.error.clone().unwrap())
            .collect();
        assert!(reasons[0].contains("`ts`"), "{reasons:?}");
        assert!(reasons[1].contains("`jobId`"), "{reasons:?}");
        assert!(reasons[2].contains("`usage`"), "{reasons:?}");
        let runs: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::CronRun)
            .collect();
        assert_eq!(runs[0].ts.timestamp_millis(), 1500);
        assert_eq!(
            runs[0].error.as_deref(),
            Some("boom"),
            "status error: summary is the error"
        );
        assert_eq!(
            runs[1].error, None,
            "only the start of a summary is matched"
        );
        assert_eq!(attrs(runs[1])["jobIdFromFileName"], "job-x");
    }

    #[test]
    fn failure_patterns() {
        for failure in [
            "HTTP 401 authentication_error: invalid x-api-key (request_id: req_1)",
            "HTTP 529 overloaded",
            "429 {\"error\":\"rate\"}",
            "rate_limit_error: slow down",
            "You have hit your ChatGPT usage limit (free plan).",
            "FallbackSummaryError: All models failed (3): a | b",
            "fetch failed",
        ] {
            assert!(summary_is_failure(failure), "{failure}");
        }
        for fine in [
            "HTTP 200 OK is what the site returned",
            "⚠️ 🛠️ Exec: ls failed: exit 2",
            "哇，今天的新闻挺劲爆的",
            "fetch failed twice, then the retry worked and here is the report",
            "",
        ] {
            assert!(!summary_is_failure(fine), "{fine}");
        }
    }

    #[test]
    fn recognises_first_lines() {
        let bytes = std::fs::read(data_dir().join(MOLTBOT)).unwrap();
        let first = bytes.split(|b| *b == b'\n').next().unwrap();
        assert!(looks_like_cron_run_log(first));
        assert!(!looks_like_cron_run_log(
            br#"{"type":"session","version":3}"#
        ));
        assert!(!looks_like_cron_run_log(b"not json"));
    }
}
