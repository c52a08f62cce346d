//! Reader for the OpenClaw session store
//! (`~/.openclaw/agents/<agentId>/sessions/sessions.json`).
//!
//! Format source: OpenClaw's `SessionEntry` (`src/config/sessions/types.ts`),
//! `shared/docs/openclaw-formats.md` §2 and §8.2, checked against a real store of
//! OpenClaw 2026.3.x (Windows, `tests/data/records/openclaw-2026.3/…`) and the one
//! written by openclaw 2026.5.28 (`tests/data/records/openclaw-2026.5.28/…`).
//! The file is **one JSON object** `{ "<sessionKey>": SessionEntry, … }`, pretty
//! or compact, rewritten whole on every change; it is not JSONL. (OpenClaw 2026.7
//! moved it into `session_nodes.entry_json` of the agent SQLite store, same shape.)
//!
//! Mapping (per session key):
//!
//! | field | column |
//! |---|---|
//! | the key | `session_key` |
//! | `sessionId` | `session_id` |
//! | `updatedAt` (ms; else `lastInteractionAt`, `sessionStartedAt`, `startedAt`, else the ingest time) | `ts` |
//! | `deliveryContext.channel`, else `channel`, else `lastChannel`, else `origin.provider` | `channel` |
//! | `modelProvider`, `model` | `provider`, `model`, `locality` |
//! | `inputTokens`, `outputTokens`, `cacheRead`, `cacheWrite` | token columns |
//! | `estimatedCostUsd` | `cost_usd` |
//! | `runtimeMs` | `latency_ms` |
//! | `status` | `status` |
//! | `label`, else `displayName`, else `subject` | `text` |
//! | the entry, with `skillsSnapshot` and `systemPromptReport` replaced by a small summary (`summarized`, `bytes`, `sha256`, counts) | `attributes` |
//! | `{"<key>": entry}` as compact JSON | `raw` (and `line_sha256` is its sha256) |
//! | position of the key in the file (0-based) | `seq` |
//!
//! → one `session_info` event, plus one `fallback_decision` event when the entry
//! has `fallbackNoticeSelectedModel` / `fallbackNoticeActiveModel` /
//! `fallbackNoticeReason`: `requested_provider`/`requested_model` = the selected
//! model, `provider`/`model` and `next_provider`/`next_model` = the active model
//! (model refs `provider/model` are split at the first `/`), `error` = the
//! reason, `decision` = `fallback_notice`.
//!
//! Event ids: blake3 of (source, agent, session key, sha256 of the compact entry
//! JSON, part). The store is a snapshot rewritten in place, so an unchanged
//! entry gives the same id on every read (and pretty vs compact formatting does
//! not matter), while any change to the entry (a new `updatedAt`, new counters)
//! is a new event. The fallback event shares the entry's hash: each distinct
//! snapshot of an entry that carries a notice yields one `fallback_decision`.
//!
//! Entries that are not objects, or whose `sessionId` / `updatedAt` have the wrong
//! JSON type, become `quarantined` events holding the entry in `raw`.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use thiserror::Error;
use trajectory_schema::{Event, EventKind};

use crate::jsonl::{event_id, parse_time, sha256_hex, str_field, ReadStats, SourceContext};
use crate::locality::locality_of_provider;
use crate::openclaw::cron_run_log::type_name;

/// The `source` column value of events from this reader.
pub const SOURCE: &str = "openclaw_session_store";

/// Entry fields replaced by a summary in `attributes` (they can be tens of KB).
const SUMMARIZED_FIELDS: &[&str] = &["skillsSnapshot", "systemPromptReport"];

/// Why a session store could not be read at all. Bad entries never do this:
/// they are quarantined.
#[derive(Debug, Error)]
pub enum SessionStoreError {
    /// The bytes are not JSON (e.g. a torn write).
    #[error("session store is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The top-level value is not an object of session keys.
    #[error("session store is {0}, not a JSON object of session keys")]
    NotAnObject(&'static str),
}

/// Whether `path` is a session store: file name `sessions.json` (or its
/// `.zst` form, as the fixture tooling stores it). Rotations such as
/// `sessions.json.bak.<ts>` are not matched.
pub fn looks_like_session_store(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "sessions.json" || n == "sessions.json.zst")
}

/// Reads a whole `sessions.json`.
///
/// `stats.lines` counts the session keys, `stats.bytes` the input bytes.
/// Errors: the bytes are not JSON or not a JSON object. Whitespace-only input
/// is an empty store (no events, a note).
pub fn read_session_store(
    bytes: &[u8],
    context: &SourceContext,
) -> Result<(Vec<Event>, ReadStats), SessionStoreError> {
    let mut stats = ReadStats {
        bytes: bytes.len() as u64,
        ..ReadStats::default()
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        stats.notes.push("empty session store".into());
        return Ok((Vec::new(), stats));
    }
    let store = match serde_json::from_slice::<Value>(bytes)? {
        Value::Object(store) => store,
        other => return Err(SessionStoreError::NotAnObject(type_name(&other))),
    };
    let mut events = Vec::with_capacity(store.len());
    for (index, (key, entry)) in store.into_iter().enumerate() {
        stats.lines += 1;
        let raw = Value::Object(Map::from_iter([(key.clone(), entry.clone())])).to_string();
        let record = StoreRecord {
            key: &key,
            index,
            sha256: sha256_hex(raw.as_bytes()),
            raw,
        };
        match entry {
            Value::Object(entry) => match read_entry(context, &record, &entry) {
                Ok(entry_events) => events.extend(entry_events),
                Err(reason) => {
                    stats.quarantined += 1;
                    events.push(quarantined(context, &record, &entry, &reason));
                }
            },
            other => {
                stats.quarantined += 1;
                let reason = format!("entry is {}, not an object", type_name(&other));
                events.push(quarantined(context, &record, &Map::new(), &reason));
            }
        }
    }
    stats.events = events.len() as u64;
    Ok((events, stats))
}

/// `sessionId → (sessionKey, channel)` for filling `session_key` and `channel`
/// on transcript events. When several keys point at one session id (a cron
/// job key and its `…:run:<sessionId>` key), the key that contains the session
/// id wins, then the latest `updatedAt`, then the smallest key. Unreadable
/// input gives an empty map.
pub fn session_channels(bytes: &[u8]) -> HashMap<String, (String, Option<String>)> {
    let Ok(Value::Object(store)) = serde_json::from_slice::<Value>(bytes) else {
        return HashMap::new();
    };
    // Best candidate per session id: (contains id, updatedAt, key reversed order).
    let mut best: HashMap<String, (bool, i64, String, Option<String>)> = HashMap::new();
    for (key, entry) in &store {
        let Value::Object(entry) = entry else {
            continue;
        };
        let Some(session_id) = str_field(entry, "sessionId") else {
            continue;
        };
        let contains = key.contains(session_id.as_str());
        let updated = entry
            .get("updatedAt")
            .and_then(Value::as_f64)
            .map_or(i64::MIN, |f| f as i64);
        let candidate = (contains, updated, key.clone(), entry_channel(entry));
        let better = match best.get(&session_id) {
            None => true,
            Some((c, u, k, _)) => {
                (contains, updated) > (*c, *u) || ((contains, updated) == (*c, *u) && key < k)
            }
        };
        if better {
            best.insert(session_id, candidate);
        }
    }
    best.into_iter()
        .map(|(id, (_, _, key, channel))| (id, (key, channel)))
        .collect()
}

/// The channel of an entry: `deliveryContext.channel`, else `channel`, else
/// `lastChannel`, else `origin.provider`.
pub fn entry_channel(entry: &Map<String, Value>) -> Option<String> {
    let nested = |outer: &str, inner: &str| {
        entry
            .get(outer)
            .and_then(|o| o.get(inner))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    nested("deliveryContext", "channel")
        .or_else(|| str_field(entry, "channel").filter(|s| !s.is_empty()))
        .or_else(|| str_field(entry, "lastChannel").filter(|s| !s.is_empty()))
        .or_else(|| nested("origin", "provider"))
}

/// Splits a model ref `provider/model` at the first `/`; no `/` → model only.
pub fn split_model_ref(model_ref: &str) -> (Option<String>, Option<String>) {
    match model_ref.split_once('/') {
        Some((provider, model)) if !provider.is_empty() => (
            Some(provider.to_string()),
            Some(model.to_string()).filter(|m| !m.is_empty()),
        ),
        _ => (None, Some(model_ref.to_string()).filter(|m| !m.is_empty())),
    }
}

/// One session key's record as stored in `raw`.
struct StoreRecord<'k> {
    key: &'k str,
    index: usize,
    raw: String,
    sha256: String,
}

fn read_entry(
    context: &SourceContext,
    record: &StoreRecord<'_>,
    entry: &Map<String, Value>,
) -> Result<Vec<Event>, String> {
    let session_id = match entry.get("sessionId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("`sessionId` is {}, not a string", type_name(other))),
    };
    let ts = match entry.get("updatedAt") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            parse_time(value)
                .ok_or_else(|| format!("`updatedAt` is {}, not a time", type_name(value)))?,
        ),
    };
    let ts = ts
        .or_else(|| {
            ["lastInteractionAt", "sessionStartedAt", "startedAt"]
                .iter()
                .find_map(|key| entry.get(*key).and_then(parse_time))
        })
        .unwrap_or(context.ingested_at);
    let channel = entry_channel(entry);
    let provider = str_field(entry, "modelProvider");

    let mut info = base_event(context, record, EventKind::SessionInfo, ts, "session");
    info.session_id = session_id.clone();
    info.channel = channel.clone();
    info.status = str_field(entry, "status");
    info.text = str_field(entry, "label")
        .or_else(|| str_field(entry, "displayName"))
        .or_else(|| str_field(entry, "subject"));
    info.locality = provider.as_deref().map(locality_of_provider);
    info.provider = provider;
    info.model = str_field(entry, "model");
    info.input_tokens = count(entry, "inputTokens");
    info.output_tokens = count(entry, "outputTokens");
    info.cache_read_tokens = count(entry, "cacheRead");
    info.cache_write_tokens = count(entry, "cacheWrite");
    info.cost_usd = entry
        .get("estimatedCostUsd")
        .and_then(Value::as_f64)
        .filter(|c| c.is_finite());
    info.latency_ms = count(entry, "runtimeMs");
    info.attributes = Some(Value::Object(summarized_entry(entry)).to_string());
    info.raw = Some(record.raw.clone());

    let mut events = vec![info];
    let selected = str_field(entry, "fallbackNoticeSelectedModel");
    let active = str_field(entry, "fallbackNoticeActiveModel");
    let reason = str_field(entry, "fallbackNoticeReason");
    if selected.is_some() || active.is_some() || reason.is_some() {
        let mut fallback = base_event(
            context,
            record,
            EventKind::FallbackDecision,
            ts,
            "fallbackNotice",
        );
        fallback.session_id = session_id;
        fallback.channel = channel;
        fallback.decision = Some("fallback_notice".into());
        if let Some(selected) = &selected {
            (fallback.requested_provider, fallback.requested_model) = split_model_ref(selected);
        }
        if let Some(active) = &active {
            let (provider, model) = split_model_ref(active);
            fallback.locality = provider.as_deref().map(locality_of_provider);
            fallback.next_provider.clone_from(&provider);
            fallback.next_model.clone_from(&model);
            fallback.provider = provider;
            fallback.model = model;
        }
        fallback.error = reason;
        let notice: Map<String, Value> = entry
            .iter()
            .filter(|(k, _)| {
                k.starts_with("fallbackNotice")
                    || matches!(
                        k.as_str(),
                        "modelOverride" | "providerOverride" | "modelOverrideSource"
                    )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fallback.attributes = Some(Value::Object(notice).to_string());
        events.push(fallback);
    }
    Ok(events)
}

/// An event of one store entry with provenance filled; `raw` is left to the caller.
fn base_event(
    context: &SourceContext,
    record: &StoreRecord<'_>,
    kind: EventKind,
    ts: DateTime<Utc>,
    part: &str,
) -> Event {
    let agent = context.agent_id.as_deref().unwrap_or("");
    let mut event = Event::new(
        event_id(&[SOURCE, agent, record.key, &record.sha256, part]),
        ts,
        kind,
        SOURCE,
        &context.ingest_id,
        context.ingested_at,
    );
    event.agent_id = context.agent_id.clone();
    event.session_key = Some(record.key.to_string());
    event.seq = Some(record.index as i64);
    event.source_uri = Some(context.source_uri.clone());
    event.line_sha256 = Some(record.sha256.clone());
    event
}

fn quarantined(
    context: &SourceContext,
    record: &StoreRecord<'_>,
    entry: &Map<String, Value>,
    reason: &str,
) -> Event {
    let mut event = base_event(
        context,
        record,
        EventKind::Quarantined,
        context.ingested_at,
        "quarantine",
    );
    event.session_id = str_field(entry, "sessionId");
    event.error = Some(reason.to_string());
    event.raw = Some(record.raw.clone());
    event
}

/// A non-negative integer field (floats truncated).
fn count(entry: &Map<String, Value>, key: &str) -> Option<i64> {
    let value = entry.get(key)?;
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        .filter(|n| *n >= 0)
}

/// The entry with its bulky fields replaced by summaries.
fn summarized_entry(entry: &Map<String, Value>) -> Map<String, Value> {
    entry
        .iter()
        .map(|(key, value)| {
            let value = if SUMMARIZED_FIELDS.contains(&key.as_str()) {
                summarize(key, value)
            } else {
                value.clone()
            };
            (key.clone(), value)
        })
        .collect()
}

fn len_of(value: Option<&Value>) -> Option<usize> {
    match value? {
        Value::Array(items) => Some(items.len()),
        Value::Object(map) => Some(map.len()),
        Value::String(s) => Some(s.chars().count()),
        _ => None,
    }
}

fn summarize(key: &str, value: &Value) -> Value {
    let text = value.to_string();
    let mut summary = Map::new();
    summary.insert("summarized".into(), Value::Bool(true));
    summary.insert("bytes".into(), Value::from(text.len()));
    summary.insert("sha256".into(), Value::String(sha256_hex(text.as_bytes())));
    let Value::Object(object) = value else {
        return Value::Object(summary);
    };
    let mut put = |name: &str, v: Option<Value>| {
        if let Some(v) = v {
            summary.insert(name.into(), v);
        }
    };
    let pointer = |path: &str| value.pointer(path);
    match key {
        "skillsSnapshot" => {
            put("skills", len_of(object.get("skills")).map(Value::from));
            put(
                "resolvedSkills",
                len_of(object.get("resolvedSkills")).map(Value::from),
            );
            put("promptChars", len_of(object.get("prompt")).map(Value::from));
            put("promptRef", object.get("promptRef").cloned());
            put("version", object.get("version").cloned());
        }
        _ => {
            for field in ["source", "generatedAt", "provider", "model"] {
                put(field, object.get(field).cloned());
            }
            put("systemPromptChars", pointer("/systemPrompt/chars").cloned());
            put(
                "injectedWorkspaceFiles",
                len_of(object.get("injectedWorkspaceFiles")).map(Value::from),
            );
            put(
                "skills",
                len_of(pointer("/skills/entries")).map(Value::from),
            );
            put("tools", len_of(pointer("/tools/entries")).map(Value::from));
            put("toolSchemaChars", pointer("/tools/schemaChars").cloned());
        }
    }
    Value::Object(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::TimeZone;
    use std::path::PathBuf;

    fn data(relative: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/records")
            .join(relative);
        let bytes = std::fs::read(&path).unwrap();
        if relative.ends_with(".zst") {
            zstd::decode_all(&bytes[..]).unwrap()
        } else {
            bytes
        }
    }

    fn context() -> SourceContext {
        SourceContext {
            source_uri: "file:///agents/main/sessions/sessions.json".into(),
            agent_id: Some("main".into()),
            session_id_hint: None,
            ingest_id: "ing".into(),
            ingested_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            max_line_bytes: 1 << 20,
        }
    }

    const WINDOWS: &str = "openclaw-2026.3/agents/main/sessions/sessions.json";
    const LEGACY: &str = "openclaw-2026.5.28/agents/main/sessions/sessions.json.zst";

    fn attrs(event: &Event) -> Map<String, Value> {
        match serde_json::from_str(event.attributes.as_deref().unwrap()).unwrap() {
            Value::Object(map) => map,
            _ => panic!("attributes not an object"),
        }
    }

    #[test]
    fn one_session_info_per_key_with_columns_from_the_entry() {
        let bytes = data(LEGACY);
        let store: Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
        assert!(store.len() > 5, "sanity");
        let (events, stats) = read_session_store(&bytes, &context()).unwrap();
        assert_eq!(stats.lines, store.len() as u64);
        assert_eq!(stats.quarantined, 0);
        let infos: Vec<&Event> = events
            .iter()
            .filter(|e| e.kind == EventKind::SessionInfo)
            .collect();
        assert_eq!(infos.len(), store.len());
        for ((key, entry), event) in store.iter().zip(&infos) {
            assert_eq!(event.session_key.as_deref(), Some(key.as_str()));
            assert_eq!(
                event.session_id.as_deref(),
                entry.get("sessionId").and_then(Value::as_str)
            );
            assert_eq!(
                event.ts.timestamp_millis(),
                entry["updatedAt"].as_i64().unwrap()
            );
            assert_eq!(event.provider.as_deref(), entry["modelProvider"].as_str());
            assert_eq!(
                event.input_tokens,
                entry.get("inputTokens").and_then(Value::as_i64)
            );
            assert_eq!(
                event.status.as_deref(),
                entry.get("status").and_then(Value::as_str)
            );
            assert_eq!(event.agent_id.as_deref(), Some("main"));
            let attributes = attrs(event);
            assert_eq!(attributes["skillsSnapshot"]["summarized"], true);
            assert_eq!(
                attributes["skillsSnapshot"]["skills"],
                entry["skillsSnapshot"]["skills"].as_array().unwrap().len()
            );
            if entry.get("systemPromptReport").is_some() {
                assert_eq!(attributes["systemPromptReport"]["summarized"], true);
            }
            assert!(event.attributes.as_deref().unwrap().len() < 4096);
            let raw: Map<String, Value> =
                serde_json::from_str(event.raw.as_deref().unwrap()).unwrap();
            assert_eq!(&raw[key], entry, "raw keeps the whole entry");
            assert_eq!(
                event.line_sha256.as_deref(),
                Some(sha256_hex(event.raw.as_deref().unwrap().as_bytes()).as_str())
            );
        }
        assert!(!events.iter().any(|e| e.kind == EventKind::FallbackDecision));
        let cron = infos
            .iter()
            .find(|e| {
                e.session_key
                    .as_deref()
                    .is_some_and(|k| k.contains(":cron:"))
            })
            .unwrap();
        assert_eq!(
            cron.text.as_deref().map(|t| t.starts_with("Cron: ")),
            Some(true)
        );
        // Real data: a failed cron job's key has no sessionId; it is kept, not dropped.
        let orphan = infos
            .iter()
            .find(|e| e.text.as_deref() == Some("Cron: broken-report"))
            .unwrap();
        assert_eq!(orphan.session_id, None);
        assert_eq!(orphan.provider.as_deref(), Some("ollama"));
    }

    #[test]
    fn fallback_notice_becomes_a_fallback_decision() {
        let bytes = data(WINDOWS);
        let (events, stats) = read_session_store(&bytes, &context()).unwrap();
        assert_eq!(stats.lines, 1);
        assert_eq!(events.len(), 2);
        let info = &events[0];
        assert_eq!(info.kind, EventKind::SessionInfo);
        assert_eq!(
            info.session_id.as_deref(),
            Some("8555a0a4-0b79-459d-939c-e17cdbbf4fe2")
        );
        assert_eq!(info.channel.as_deref(), Some("webchat"));
        assert_eq!(info.provider.as_deref(), Some("openai-codex"));
        assert_eq!(info.cache_read_tokens, Some(2560));
        let skills = &attrs(info)["skillsSnapshot"];
        assert_eq!(skills["resolvedSkills"], 19);
        assert!(skills["bytes"].as_u64().unwrap() > 10_000);
        let fallback = &events[1];
        assert_eq!(fallback.kind, EventKind::FallbackDecision);
        assert_eq!(fallback.requested_provider.as_deref(), Some("ollama"));
        assert_eq!(fallback.requested_model.as_deref(), Some("qwen3.5:9b"));
        assert_eq!(fallback.provider.as_deref(), Some("openai-codex"));
        assert_eq!(fallback.model.as_deref(), Some("gpt-5.4"));
        assert_eq!(fallback.next_model.as_deref(), Some("gpt-5.4"));
        assert_eq!(fallback.error.as_deref(), Some("timeout"));
        assert_eq!(fallback.locality, Some(trajectory_schema::Locality::Cloud));
        assert_eq!(fallback.session_key.as_deref(), Some("agent:main:main"));
        assert_ne!(fallback.event_id, info.event_id);
        assert!(
            fallback.raw.is_none(),
            "raw is stored once, on the session_info event"
        );
    }

    #[test]
    fn changed_entries_get_new_ids_and_unchanged_ones_keep_theirs() {
        let bytes = data(LEGACY);
        let (before, _) = read_session_store(&bytes, &context()).unwrap();
        let mut store: Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
        let changed_key = store.keys().nth(2).unwrap().clone();
        store[&changed_key]["updatedAt"] = Value::from(1_795_399_999_000_i64);
        store[&changed_key]["inputTokens"] = Value::from(1);
        // Compact instead of pretty: formatting alone changes no id.
        let rewritten = serde_json::to_vec(&store).unwrap();
        assert_ne!(rewritten, bytes);
        let (after, _) = read_session_store(&rewritten, &context()).unwrap();
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b.session_key, a.session_key);
            if b.session_key.as_deref() == Some(changed_key.as_str()) {
                assert_ne!(b.event_id, a.event_id, "changed entry is a new event");
            } else {
                assert_eq!(b.event_id, a.event_id, "unchanged entry dedupes");
            }
        }
        let (again, _) = read_session_store(&bytes, &context()).unwrap();
        assert_eq!(before, again);
    }

    #[test]
    fn session_channels_map_ids_to_keys() {
        let windows = session_channels(&data(WINDOWS));
        assert_eq!(
            windows.get("8555a0a4-0b79-459d-939c-e17cdbbf4fe2"),
            Some(&("agent:main:main".to_string(), Some("webchat".to_string())))
        );
        let bytes = data(LEGACY);
        let store: Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
        let ids: std::collections::HashSet<&str> = store
            .values()
            .filter_map(|e| e.get("sessionId").and_then(Value::as_str))
            .collect();
        assert!(ids.len() < store.len(), "one real entry has no sessionId");
        let legacy = session_channels(&bytes);
        assert_eq!(legacy.len(), ids.len());
        for (key, entry) in &store {
            let Some(id) = entry.get("sessionId").and_then(Value::as_str) else {
                continue;
            };
            assert_eq!(legacy[id].0, *key);
            assert_eq!(legacy[id].1, None, "no channel fields in these entries");
        }
        // Two keys for one session: the run key (holding the id) wins.
        let shared = br#"{"agent:main:cron:j":{"sessionId":"s1","updatedAt":5},"agent:main:cron:j:run:s1":{"sessionId":"s1","updatedAt":1,"lastChannel":"telegram"}}"#;
        assert_eq!(
            session_channels(shared)["s1"],
            (
                "agent:main:cron:j:run:s1".to_string(),
                Some("telegram".to_string())
            )
        );
        assert!(session_channels(b"{not json").is_empty());
    }

    #[test]
    fn bad_entries_are_quarantined_and_bad_files_refused() {
        let data = br#"{"a":{"sessionId":1,"updatedAt":1},"b":[1],"c":{"sessionId":"s","updatedAt":true},"d":{"sessionId":"ok","updatedAt":1795314533779,"origin":{"provider":"discord"}}}"#;
        let (events, stats) = read_session_store(data, &context()).unwrap();
        assert_eq!(stats.lines, 4);
        assert_eq!(stats.quarantined, 3);
        let reasons: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::Quarantined)
            .map(|e| e.error.clone().unwrap())
            .collect();
        assert!(reasons[0].contains("sessionId"), "{reasons:?}");
        assert!(reasons[1].contains("not an object"), "{reasons:?}");
        assert!(reasons[2].contains("updatedAt"), "{reasons:?}");
        assert!(events.iter().all(|e| e.raw.is_some()));
        assert_eq!(events[3].channel.as_deref(), Some("discord"));
        assert!(matches!(
            read_session_store(b"[1]", &context()),
            Err(SessionStoreError::NotAnObject(_))
        ));
        assert!(matches!(
            read_session_store(b"{\"a\":", &context()),
            Err(SessionStoreError::Json(_))
        ));
        assert_eq!(read_session_store(b"  \n", &context()).unwrap().0.len(), 0);
    }

    #[test]
    fn recognises_store_paths_and_model_refs() {
        assert!(looks_like_session_store(Path::new(
            "/h/.openclaw/agents/main/sessions/sessions.json"
        )));
        assert!(!looks_like_session_store(Path::new(
            "/x/sessions.json.bak.1"
        )));
        assert!(!looks_like_session_store(Path::new("/x/abc.jsonl")));
        assert_eq!(
            split_model_ref("openrouter/anthropic/claude"),
            (Some("openrouter".into()), Some("anthropic/claude".into()))
        );
        assert_eq!(split_model_ref("gpt-5"), (None, Some("gpt-5".into())));
    }
}
