//! `trl-sft`: one row per session's active branch in TRL's conversational
//! language-modeling form.
//!
//! Target format: TRL "Dataset formats and types", conversational
//! language modeling with tool calling
//! (<https://huggingface.co/docs/trl/dataset_formats>; summary in
//! `shared/docs/training-formats.md` §2.1). Columns:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `messages` | list<struct<role, content, name, tool_call_id, tool_calls: list<struct<id, type, function: struct<name, arguments>>>>> | the conversation; `arguments` is a JSON object as text |
//! | `tools` | utf8 | JSON array of function specs (`{"type":"function","function":{name, description, parameters}}`), parameters inferred from the calls seen |
//! | `session_id`, `agent_id` | utf8 | where the row came from |
//! | `num_events` | int64 | events behind the row (lineage is in `manifest.json`) |
//!
//! `arguments` and `tools` are JSON text rather than nested structs because
//! their keys differ from call to call and Parquet needs one schema; this is
//! the encoding TRL's docs give for `datasets` before `Json()` features.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::json::ReaderBuilder;
use serde_json::{json, Value};
use trajectory_query::QueryEngine;

use crate::columns::{ints, strings, value};
use crate::conversation::{by_session, conversation, ConversationEvent};
use crate::manifest::{write_manifest, ExportManifest};
use crate::shards::{clear_previous_shards, dataset_card, write_split};
use crate::{ExportError, ExportOptions, ExportSummary};

/// The target name on the command line.
pub const TARGET: &str = "trl-sft";

/// Arrow schema of a `trl-sft` shard.
pub fn trl_sft_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let function = DataType::Struct(Fields::from(vec![
                Field::new("name", DataType::Utf8, true),
                Field::new("arguments", DataType::Utf8, true),
            ]));
            let tool_call = DataType::Struct(Fields::from(vec![
                Field::new("id", DataType::Utf8, true),
                Field::new("type", DataType::Utf8, true),
                Field::new("function", function, true),
            ]));
            let message = DataType::Struct(Fields::from(vec![
                Field::new("role", DataType::Utf8, false),
                Field::new("content", DataType::Utf8, true),
                Field::new("name", DataType::Utf8, true),
                Field::new("tool_call_id", DataType::Utf8, true),
                Field::new(
                    "tool_calls",
                    DataType::List(Arc::new(Field::new("item", tool_call, true))),
                    true,
                ),
            ]));
            Arc::new(Schema::new(vec![
                Field::new(
                    "messages",
                    DataType::List(Arc::new(Field::new("item", message, true))),
                    false,
                ),
                Field::new("tools", DataType::Utf8, false),
                Field::new("session_id", DataType::Utf8, false),
                Field::new("agent_id", DataType::Utf8, true),
                Field::new("num_events", DataType::Int64, false),
            ]))
        })
        .clone()
}

const EVENTS_QUERY: &str =
    "SELECT session_id, agent_id, event_id, kind, entry_id, parent_id, seq, \
     text, content, tool_call_id, tool_name, tool_args, stop_reason, error \
     FROM events WHERE session_id IS NOT NULL AND source = 'openclaw_transcript' \
     AND kind NOT IN ('quarantined', 'tool_call') \
     ORDER BY session_id, seq, event_id";

/// Exports every session's active branch as TRL SFT rows into `out_dir`.
///
/// Sessions without both a user and an assistant message are skipped and
/// counted. Old shards in `out_dir/data` are replaced.
///
/// Errors: query, encoding and I/O errors.
pub async fn export_trl_sft(
    engine: &QueryEngine,
    out_dir: &Path,
    options: &ExportOptions,
) -> Result<ExportSummary, ExportError> {
    let batches = engine.collect(EVENTS_QUERY).await?;
    let mut events = Vec::new();
    let mut agents = std::collections::HashMap::new();
    for batch in &batches {
        let session = strings(batch, "session_id")?;
        let agent = strings(batch, "agent_id")?;
        let event_id = strings(batch, "event_id")?;
        let kind = strings(batch, "kind")?;
        let entry = strings(batch, "entry_id")?;
        let parent = strings(batch, "parent_id")?;
        let seq = ints(batch, "seq")?;
        let text = strings(batch, "text")?;
        let content = strings(batch, "content")?;
        let tool_call_id = strings(batch, "tool_call_id")?;
        let tool_name = strings(batch, "tool_name")?;
        let tool_args = strings(batch, "tool_args")?;
        let stop_reason = strings(batch, "stop_reason")?;
        let error = strings(batch, "error")?;
        for row in 0..batch.num_rows() {
            let session_id = value(&session, row).unwrap_or_default();
            if let Some(agent_id) = value(&agent, row) {
                agents.entry(session_id.clone()).or_insert(agent_id);
            }
            events.push((
                session_id,
                ConversationEvent {
                    event_id: value(&event_id, row).unwrap_or_default(),
                    kind: value(&kind, row).unwrap_or_default(),
                    entry_id: value(&entry, row),
                    parent_id: value(&parent, row),
                    seq: seq.get(row).copied().flatten().unwrap_or_default(),
                    text: value(&text, row),
                    content: value(&content, row),
                    tool_call_id: value(&tool_call_id, row),
                    tool_name: value(&tool_name, row),
                    tool_args: value(&tool_args, row),
                    stop_reason: value(&stop_reason, row),
                    error: value(&error, row),
                },
            ));
        }
    }
    drop(batches);

    let mut rows: Vec<Value> = Vec::new();
    let mut lineage = Vec::new();
    let mut sessions_skipped = Vec::new();
    for (session_id, session_events) in by_session(events) {
        let conv = conversation(&session_events);
        if !conv.is_trainable() {
            sessions_skipped.push(session_id);
            continue;
        }
        let tools = Value::Array(conv.tools()).to_string();
        rows.push(json!({
            "messages": conv.messages,
            "tools": tools,
            "session_id": session_id,
            "agent_id": agents.get(&session_id),
            "num_events": conv.event_ids.len(),
        }));
        lineage.push(json!({ "session_id": session_id, "event_ids": conv.event_ids }));
    }

    let schema = trl_sft_schema();
    let mut decoder = ReaderBuilder::new(Arc::clone(&schema)).build_decoder()?;
    decoder.serialize(&rows)?;
    let batch = decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&schema)));

    std::fs::create_dir_all(out_dir).map_err(|e| ExportError::io(out_dir, e))?;
    clear_previous_shards(out_dir)?;
    let shards = write_split(
        out_dir,
        "train",
        Arc::clone(&schema),
        &batch,
        options.rows_per_shard,
    )?;
    let manifest = ExportManifest::new(
        TARGET,
        engine.events_version(),
        options,
        rows.len(),
        sessions_skipped.len(),
        shards,
        lineage,
    );
    let card = dataset_card(
        &format!("{} dataset exported by trajectory", TARGET),
        &["train"],
        &format!(
            "One row per agent session: the conversation on the session's active branch, in TRL's \
             conversational format with tool calls.\n\n\
             - rows: {}\n- sessions skipped (no user + assistant exchange): {}\n\
             - source: events table version {} of `{}`\n\n\
             Columns: `messages` (role, content, name, tool_call_id, tool_calls with `arguments` as \
             JSON text), `tools` (JSON array of function specs), `session_id`, `agent_id`, \
             `num_events`.\n\n\
             ```python\nfrom datasets import load_dataset\n\
             ds = load_dataset(\"parquet\", data_files={{\"train\": \"data/train-*.parquet\"}})\n```\n\n\
             Lineage (the events behind every row) and shard checksums are in `manifest.json`.",
            rows.len(),
            sessions_skipped.len(),
            engine.events_version(),
            options.store
        ),
    );
    let card_path = out_dir.join("README.md");
    std::fs::write(&card_path, card).map_err(|e| ExportError::io(&card_path, e))?;
    let manifest_path = write_manifest(out_dir, &manifest)?;
    Ok(ExportSummary {
        target: TARGET.to_string(),
        out_dir: out_dir.display().to_string(),
        events_version: engine.events_version(),
        rows: rows.len(),
        sessions_skipped: sessions_skipped.len(),
        shards: manifest.shards.clone(),
        manifest: manifest_path.display().to_string(),
    })
}
