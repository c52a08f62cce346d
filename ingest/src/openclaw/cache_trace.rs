//! Reader for OpenClaw's cache trace (`~/.openclaw/logs/cache-trace.jsonl`):
//! what was actually sent to a model, stage by stage.
//!
//! Format source: `shared/docs/openclaw-formats.md` §3.5 and OpenClaw's
//! `src/agents/cache-trace.ts` (type `CacheTraceEvent`, v2026.4.x). The file is
//! opt-in (`OPENCLAW_CACHE_TRACE=1` or `diagnostics.cacheTrace.enabled`); **no
//! real cache trace was available** (none in the real-run fixtures of
//! openclaw 2026.9.6 / 2026.5.28, none in a permissively licensed repository),
//! so the tests build their lines from the documented shape:
//! `{ts (ISO), seq, stage, runId?, sessionId?, sessionKey?, provider?,
//! modelId?, modelApi?, workspaceDir?, prompt?, system?, options?,
//! model?{id,provider,api}, messages?[AgentMessage], messageCount?,
//! messageRoles?, messageFingerprints?, messagesDigest?, systemDigest?,
//! note?, error?}`. Stages: `session:loaded`, `session:sanitized`,
//! `session:limited`, `prompt:before` (the new `prompt` + history
//! `messages`), `prompt:images`, `stream:context` (the `system` + `messages`
//! handed to the provider stream), `session:after`, later also `cache:result`,
//! `cache:state`; unknown stages are read the same way.
//!
//! Mapping (one `custom` event per line):
//!
//! | field | column |
//! |---|---|
//! | `stage` (required string) | `role` |
//! | `ts` (required ISO time) | `ts` (normalised to UTC) |
//! | `runId`, `sessionId`, `sessionKey` | `run_id`, `session_id`, `session_key` |
//! | `provider` (else `model.provider`) | `provider`, and `locality` from it |
//! | `modelId` (else `model.id`) | `model` |
//! | `modelApi` (else `model.api`) | `api` |
//! | `messages` | `content`: the array as JSON, every image block's base64 `data` replaced by `{"sha256","bytes"}` |
//! | `messages` (+ `prompt` for `prompt:before`) | `text`, for `stream:context` and `prompt:before` only: the plain text of every message sent (string content, `text` blocks; thinking, tool calls and images excluded), one message per line, then the prompt. This is the text that left the machine, for `cloud_exposure` |
//! | `error` | `error` |
//! | the line minus `messages`, `system` and `prompt` | `attributes` (digests, fingerprints, roles, counts, options, `seq`, …) |
//! | `sessionKey` `agent:<id>:…` | `agent_id`, when the path gives none |
//!
//! The `system` prompt is not copied to a column (its `systemDigest` is in
//! `attributes`, its text in `raw`). `seq` is the line index, like every
//! reader's; the trace's own per-run `seq` stays in `attributes`.
//!
//! A line without a string `stage`, without a readable `ts`, or with a
//! `messages` that is not an array is quarantined. Other fields of the wrong
//! type are left out of their column and kept in `attributes`.
//!
//! Event ids: blake3 of (`openclaw_cache_trace`, line sha256, byte offset of
//! the line), as for the gateway log: a renamed or copied file dedupes, and
//! identical lines stay apart across resumed reads.

use std::io::{self, BufRead};

use serde_json::{Map, Value};
use trajectory_schema::{Event, EventKind};

use crate::content::{plain_text, without_image_bytes};
use crate::jsonl::{
    line_event, parse_time, read_jsonl, str_field, LineParser, LineRecord, ReadStats, SourceContext,
};
use crate::locality::locality_of_provider;
use crate::openclaw::commands_log::agent_id_from_session_key;

/// The `source` column value of events from this reader.
pub const SOURCE: &str = "openclaw_cache_trace";

/// Stages whose messages are what was sent to the model.
const SENT_STAGES: &[&str] = &["stream:context", "prompt:before"];

/// Fields left out of `attributes` (they go to `content`, `text` or `raw`).
const BIG_FIELDS: &[&str] = &["messages", "system", "prompt"];

/// Reads a whole cache trace.
///
/// Never fails on content: unreadable lines become `quarantined` events.
/// Errors: only an I/O error of `reader`.
pub fn read_cache_trace<R: BufRead>(
    reader: R,
    context: &SourceContext,
) -> io::Result<(Vec<Event>, ReadStats)> {
    let mut parser = CacheTraceParser::new(context);
    read_jsonl(reader, context, &mut parser)
}

/// Whether `first_line` is a cache-trace record: a JSON object with a string
/// `stage`, a string `ts` and a numeric `seq` (the Anthropic payload log has
/// `stage` but no `seq`; trajectory events have `type`).
pub fn looks_like_cache_trace(first_line: &[u8]) -> bool {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(first_line) else {
        return false;
    };
    object.get("stage").is_some_and(Value::is_string)
        && object.get("ts").is_some_and(Value::is_string)
        && object.get("seq").is_some_and(Value::is_number)
        && !object.contains_key("type")
}

/// Parser state for one cache-trace file.
pub struct CacheTraceParser<'a> {
    context: &'a SourceContext,
}

impl<'a> CacheTraceParser<'a> {
    /// A parser for one file.
    pub fn new(context: &'a SourceContext) -> CacheTraceParser<'a> {
        CacheTraceParser { context }
    }
}

impl LineParser for CacheTraceParser<'_> {
    fn source(&self) -> &'static str {
        SOURCE
    }

    fn parse(
        &mut self,
        record: &LineRecord<'_>,
        object: Map<String, Value>,
        out: &mut Vec<Event>,
    ) -> Result<(), String> {
        let stage = match object.get("stage") {
            Some(Value::String(stage)) => stage.clone(),
            Some(_) => return Err("`stage` is not a string".into()),
            None => return Err("no `stage`: not a cache-trace record".into()),
        };
        let ts = object
            .get("ts")
            .filter(|v| v.is_string())
            .and_then(parse_time)
            .ok_or("`ts` is missing or not an ISO time")?;
        let messages = match object.get("messages") {
            None | Some(Value::Null) => None,
            Some(Value::Array(messages)) => Some(messages.as_slice()),
            Some(_) => return Err("`messages` is not an array".into()),
        };
        let occurrence = record.line.offset.to_string();
        let mut event = line_event(
            self.context,
            SOURCE,
            EventKind::Custom,
            ts,
            record,
            &[SOURCE, &record.sha256, &occurrence],
        );
        let model = object.get("model").and_then(Value::as_object);
        let model_str = |key: &str| model.and_then(|m| str_field(m, key));
        event.seq = Some(record.line.number as i64 - 1);
        event.run_id = str_field(&object, "runId");
        event.session_id = str_field(&object, "sessionId");
        event.session_key = str_field(&object, "sessionKey");
        event.agent_id = self.context.agent_id.clone().or_else(|| {
            event
                .session_key
                .as_deref()
                .and_then(agent_id_from_session_key)
        });
        event.provider = str_field(&object, "provider").or_else(|| model_str("provider"));
        event.model = str_field(&object, "modelId").or_else(|| model_str("id"));
        event.api = str_field(&object, "modelApi").or_else(|| model_str("api"));
        event.locality = event.provider.as_deref().map(locality_of_provider);
        event.error = str_field(&object, "error");
        if let Some(messages) = messages {
            let clean: Vec<Value> = messages.iter().map(without_image_bytes).collect();
            event.content = Some(Value::Array(clean).to_string());
        }
        if SENT_STAGES.contains(&stage.as_str()) {
            let mut parts: Vec<String> = messages
                .unwrap_or(&[])
                .iter()
                .filter_map(|m| m.get("content").and_then(plain_text))
                .filter(|t| !t.is_empty())
                .collect();
            if let Some(prompt) = str_field(&object, "prompt").filter(|p| !p.is_empty()) {
                parts.push(prompt);
            }
            event.text = (!parts.is_empty()).then(|| parts.join("\n"));
        }
        event.role = Some(stage);
        let attributes: Map<String, Value> = object
            .into_iter()
            .filter(|(key, _)| !BIG_FIELDS.contains(&key.as_str()))
            .collect();
        event.attributes = Some(Value::Object(attributes).to_string());
        out.push(event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::{TimeZone, Utc};
    use trajectory_schema::Locality;

    fn context() -> SourceContext {
        SourceContext {
            source_uri: "file:///home/u/.openclaw/logs/cache-trace.jsonl".into(),
            agent_id: None,
            session_id_hint: None,
            ingest_id: "ing".into(),
            ingested_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            max_line_bytes: 1 << 20,
        }
    }

    fn read(data: &str) -> (Vec<Event>, ReadStats) {
        read_cache_trace(data.as_bytes(), &context()).unwrap()
    }

    /// Synthetic lines in the documented shape (no real trace exists).
    const STREAM_CONTEXT: &str = r#"{"runId":"run-1","sessionId":"sess-1","sessionKey":"agent:ops:main","provider":"anthropic","modelId":"claude-sonnet-4-5","modelApi":"anthropic-messages","workspaceDir":"/w","ts":"2026-04-10T08:00:01.500+02:00","seq":5,"stage":"stream:context","system":"You are a personal assistant running inside OpenClaw.","systemDigest":"abc","options":{"maxTokens":1024},"model":{"id":"claude-sonnet-4-5","provider":"anthropic","api":"anthropic-messages"},"messages":[{"role":"user","content":[{"type":"text","text":"read the contract"},{"type":"image","data":"aGVsbG8=","mimeType":"image/png"}],"timestamp":1}, {"role":"assistant","content":[{"type":"thinking","thinking":"secret plan"},{"type":"text","text":"reading it"},{"type":"toolCall","id":"c1","name":"read","arguments":{"path":"contract.md"}}]},{"role":"toolResult","toolCallId":"c1","toolName":"read","content":[{"type":"text","text":"CONTRACT TEXT"}],"isError":false}],"messageCount":3,"messageRoles":["user","assistant","toolResult"],"messageFingerprints":["f1","f2","f3"],"messagesDigest":"d"}"#;
    const PROMPT_BEFORE: &str = r#"{"runId":"run-1","sessionId":"sess-1","provider":"ollama","modelId":"qwen3:8b","ts":"2026-04-10T06:00:01.000Z","seq":4,"stage":"prompt:before","prompt":"summarise it","messages":[{"role":"user","content":"earlier question"}],"messageCount":1}"#;
    const SESSION_LOADED: &str = r#"{"runId":"run-1","ts":"2026-04-10T06:00:00.000Z","seq":1,"stage":"session:loaded","messages":[{"role":"user","content":"earlier question"}],"messageCount":1,"note":"loaded"}"#;

    #[test]
    fn stream_context_maps_to_a_custom_event_with_what_was_sent() {
        let (events, stats) = read(&format!("{STREAM_CONTEXT}\n"));
        assert_eq!(stats.quarantined, 0);
        let e = &events[0];
        assert_eq!(e.kind, EventKind::Custom);
        assert_eq!(e.source, SOURCE);
        assert_eq!(e.role.as_deref(), Some("stream:context"));
        assert_eq!(e.ts.to_rfc3339(), "2026-04-10T06:00:01.500+00:00");
        assert_eq!(e.run_id.as_deref(), Some("run-1"));
        assert_eq!(e.session_id.as_deref(), Some("sess-1"));
        assert_eq!(e.session_key.as_deref(), Some("agent:ops:main"));
        assert_eq!(e.agent_id.as_deref(), Some("ops"));
        assert_eq!(e.provider.as_deref(), Some("anthropic"));
        assert_eq!(e.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(e.api.as_deref(), Some("anthropic-messages"));
        assert_eq!(e.locality, Some(Locality::Cloud));
        assert_eq!(
            e.text.as_deref(),
            Some("read the contract\nreading it\nCONTRACT TEXT")
        );
        let content: Value = serde_json::from_str(e.content.as_deref().unwrap()).unwrap();
        assert_eq!(content.as_array().unwrap().len(), 3);
        let image = &content[0]["content"][1];
        assert_eq!(image["data"]["bytes"], 8);
        assert_eq!(image["data"]["sha256"].as_str().unwrap().len(), 64);
        assert!(!e.content.as_deref().unwrap().contains("aGVsbG8="));
        let attributes: Value = serde_json::from_str(e.attributes.as_deref().unwrap()).unwrap();
        for big in ["messages", "system", "prompt"] {
            assert!(attributes.get(big).is_none(), "{big} left out");
        }
        assert_eq!(attributes["messagesDigest"], "d");
        assert_eq!(attributes["systemDigest"], "abc");
        assert_eq!(attributes["seq"], 5);
        assert_eq!(e.raw.as_deref(), Some(STREAM_CONTEXT));
    }

    #[test]
    fn prompt_before_text_ends_with_the_prompt_and_other_stages_have_none() {
        let data = format!("{SESSION_LOADED}\n{PROMPT_BEFORE}\n");
        let (events, _) = read(&data);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].role.as_deref(), Some("session:loaded"));
        assert_eq!(events[0].text, None, "not a stage that is sent");
        assert!(events[0].content.as_deref().unwrap().contains("earlier"));
        assert_eq!(events[0].provider, None);
        assert_eq!(events[0].locality, None);
        assert_eq!(
            events[1].text.as_deref(),
            Some("earlier question\nsummarise it")
        );
        assert_eq!(events[1].locality, Some(Locality::Local));
        assert_ne!(events[0].event_id, events[1].event_id);
    }

    #[test]
    fn model_object_fills_provider_model_api_when_top_level_fields_are_absent() {
        let line = r#"{"ts":"2026-04-10T06:00:00Z","seq":2,"stage":"stream:context","model":{"id":"gpt-5","provider":"openai","api":"openai-responses"},"messages":[]}"#;
        let (events, _) = read(&format!("{line}\n"));
        assert_eq!(events[0].provider.as_deref(), Some("openai"));
        assert_eq!(events[0].model.as_deref(), Some("gpt-5"));
        assert_eq!(events[0].api.as_deref(), Some("openai-responses"));
        assert_eq!(events[0].text, None);
        assert_eq!(events[0].content.as_deref(), Some("[]"));
    }

    #[test]
    fn lines_with_wrong_required_types_are_quarantined() {
        let data = concat!(
            r#"{"ts":"2026-04-10T06:00:00Z","seq":1}"#,
            "\n",
            r#"{"ts":"2026-04-10T06:00:00Z","seq":1,"stage":7}"#,
            "\n",
            r#"{"ts":1,"seq":1,"stage":"session:loaded"}"#,
            "\n",
            r#"{"ts":"2026-04-10T06:00:00Z","seq":1,"stage":"session:loaded","messages":"oops"}"#,
            "\n",
            r#"{"ts":"2026-04-10T06:00:00Z","seq":1,"stage":"cache:state","runId":5,"error":"boom"}"#,
            "\n",
        );
        let (events, stats) = read(data);
        assert_eq!(events.len(), 5);
        assert_eq!(stats.quarantined, 4);
        let reasons: Vec<&str> = events[..4]
            .iter()
            .map(|e| e.error.as_deref().unwrap())
            .collect();
        assert!(reasons[0].contains("stage"), "{reasons:?}");
        assert!(reasons[1].contains("stage"), "{reasons:?}");
        assert!(reasons[2].contains("ts"), "{reasons:?}");
        assert!(reasons[3].contains("messages"), "{reasons:?}");
        assert_eq!(events[4].kind, EventKind::Custom);
        assert_eq!(events[4].run_id, None, "a number is not a run id");
        assert_eq!(events[4].error.as_deref(), Some("boom"));
        assert!(events[4]
            .attributes
            .as_deref()
            .unwrap()
            .contains("\"runId\":5"));
    }

    #[test]
    fn looks_like_recognises_cache_trace_lines_only() {
        assert!(looks_like_cache_trace(STREAM_CONTEXT.as_bytes()));
        assert!(looks_like_cache_trace(SESSION_LOADED.as_bytes()));
        // Anthropic payload log: stage without seq.
        assert!(!looks_like_cache_trace(
            br#"{"ts":"2026-04-10T06:00:00Z","stage":"request","runId":"r"}"#
        ));
        assert!(!looks_like_cache_trace(
            br#"{"traceSchema":"openclaw-trajectory","type":"session.started","ts":"x","seq":1,"stage":"x"}"#
        ));
        assert!(!looks_like_cache_trace(
            br#"{"timestamp":"2026-01-16T14:30:00.000Z","action":"new"}"#
        ));
        assert!(!looks_like_cache_trace(b"{"));
    }
}
