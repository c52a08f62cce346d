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

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::StreamExt;
use serde_json::{json, Value};
use trajectory_query::{QueryEngine, QueryError};

use crate::columns::{ints, strings, value};
use crate::conversation::{conversation, ConversationEvent};
use crate::dataset_writer::DatasetWriter;
use crate::filters::{quote, ExportFilters};
use crate::messages::chat_message_list_type;
use crate::training::{Dataset, Row};
use crate::{ExportError, ExportOptions, ExportSummary};

/// The target name on the command line.
pub const TARGET: &str = "trl-sft";

/// Arrow schema of a `trl-sft` shard.
pub fn trl_sft_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("messages", chat_message_list_type(false), false),
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

/// Exports every session's active branch as TRL SFT rows into `out_dir`,
/// with the default split (5% validation) and no filters.
///
/// Errors: as [`export_trl_sft_filtered`].
pub async fn export_trl_sft(
    engine: &QueryEngine,
    out_dir: &Path,
    options: &ExportOptions,
) -> Result<ExportSummary, ExportError> {
    export_trl_sft_filtered(engine, out_dir, options, &ExportFilters::default()).await
}

/// Exports the active branch of every session passing `filters` as TRL SFT
/// rows into `out_dir`: `data/train-*` and `data/validation-*` shards (split
/// by hashed session id), `README.md`, `manifest.json` (lineage: session,
/// event ids, shard and row of every row).
///
/// Filters select **sessions**: `since`/`until` on the session's first
/// transcript event, `agent` on its agent id, `provider`/`locality` when one
/// of its LLM calls matches, `where` (SQL over `events`, alias `e`) when one
/// of its events matches, `min_reward` on the mean of its `combined`
/// trajectory rewards (needs `trajectory derive`).
///
/// Sessions without both a user and an assistant message are skipped and
/// counted. Old shards in `out_dir/data` are replaced.
///
/// Errors: [`ExportError::Invalid`] for bad filters,
/// [`ExportError::MissingDerived`] for `min_reward` without the `rewards`
/// table, query, encoding and I/O errors.
pub async fn export_trl_sft_filtered(
    engine: &QueryEngine,
    out_dir: &Path,
    options: &ExportOptions,
    filters: &ExportFilters,
) -> Result<ExportSummary, ExportError> {
    filters.validate()?;
    let selected = selected_sessions(engine, filters).await?;
    let dataset = Dataset {
        target: TARGET,
        schema: trl_sft_schema(),
        description: "One row per agent session: the conversation on the session's active \
            branch, in TRL's conversational language-modeling format with tool calls \
            (SFTTrainer). Sessions without a user + assistant exchange are skipped.",
        source: "the events table (transcript events on each session's active branch)",
        jsonl: false,
    };
    let mut writer = DatasetWriter::create(engine, dataset, out_dir, options, filters)?;
    // The events arrive sorted by session: each session is converted and
    // written as soon as its last event is read.
    let mut stream = engine.stream(EVENTS_QUERY).await?;
    let mut current: Option<(String, Option<String>, Vec<ConversationEvent>)> = None;
    let (mut exported, mut sessions_skipped) = (0, 0);
    let mut finish_session = |session: Option<(String, Option<String>, Vec<ConversationEvent>)>,
                              writer: &mut DatasetWriter<'_>|
     -> Result<(), ExportError> {
        let Some((session_id, agent_id, events)) = session else {
            return Ok(());
        };
        let conv = conversation(&events);
        if !conv.is_trainable() {
            sessions_skipped += 1;
            return Ok(());
        }
        exported += 1;
        let tools = Value::Array(conv.tools()).to_string();
        writer.push(Row {
            value: json!({
                "messages": conv.messages,
                "tools": tools,
                "session_id": session_id,
                "agent_id": agent_id,
                "num_events": conv.event_ids.len(),
            }),
            session_id,
            turn_ids: Vec::new(),
            event_ids: conv.event_ids,
        })
    };
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(QueryError::from)?;
        let session = strings(&batch, "session_id")?;
        let agent = strings(&batch, "agent_id")?;
        let event_id = strings(&batch, "event_id")?;
        let kind = strings(&batch, "kind")?;
        let entry = strings(&batch, "entry_id")?;
        let parent = strings(&batch, "parent_id")?;
        let seq = ints(&batch, "seq")?;
        let text = strings(&batch, "text")?;
        let content = strings(&batch, "content")?;
        let tool_call_id = strings(&batch, "tool_call_id")?;
        let tool_name = strings(&batch, "tool_name")?;
        let tool_args = strings(&batch, "tool_args")?;
        let stop_reason = strings(&batch, "stop_reason")?;
        let error = strings(&batch, "error")?;
        for row in 0..batch.num_rows() {
            let session_id = value(&session, row).unwrap_or_default();
            if selected
                .as_ref()
                .is_some_and(|set| !set.contains(&session_id))
            {
                continue;
            }
            if current.as_ref().is_none_or(|(id, _, _)| *id != session_id) {
                finish_session(current.take(), &mut writer)?;
                current = Some((session_id, None, Vec::new()));
            }
            let Some((_, agent_id, events)) = current.as_mut() else {
                continue;
            };
            if agent_id.is_none() {
                *agent_id = value(&agent, row);
            }
            events.push(ConversationEvent {
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
            });
        }
    }
    finish_session(current.take(), &mut writer)?;
    let mut counts = BTreeMap::new();
    counts.insert("sessions_exported".to_string(), exported);
    counts.insert("sessions_skipped".to_string(), sessions_skipped);
    writer.finish(counts, sessions_skipped)
}

/// The sessions passing `filters`, or `None` when no filter is set.
async fn selected_sessions(
    engine: &QueryEngine,
    filters: &ExportFilters,
) -> Result<Option<HashSet<String>>, ExportError> {
    if !filters.any() {
        return Ok(None);
    }
    let mut having = vec!["TRUE".to_string()];
    if let Some(t) = &filters.since {
        having.push(format!("min(e.ts) >= CAST({} AS TIMESTAMP)", quote(t)));
    }
    if let Some(t) = &filters.until {
        having.push(format!("min(e.ts) < CAST({} AS TIMESTAMP)", quote(t)));
    }
    if let Some(a) = &filters.agent {
        having.push(format!("bool_or(e.agent_id = {})", quote(a)));
    }
    if let Some(p) = &filters.provider {
        having.push(format!(
            "bool_or(e.kind = 'llm_call' AND e.provider = {})",
            quote(p)
        ));
    }
    if let Some(l) = &filters.locality {
        having.push(format!(
            "bool_or(e.kind = 'llm_call' AND e.locality = {})",
            quote(l)
        ));
    }
    let sql = format!(
        "SELECT e.session_id FROM events e WHERE e.session_id IS NOT NULL \
         AND e.source = 'openclaw_transcript' AND e.kind <> 'quarantined' \
         GROUP BY e.session_id HAVING {}",
        having.join(" AND ")
    );
    let mut selected: HashSet<String> = HashSet::new();
    for batch in &engine.collect(&sql).await? {
        let ids = strings(batch, "session_id")?;
        selected.extend((0..batch.num_rows()).filter_map(|row| value(&ids, row)));
    }
    if let Some(w) = &filters.r#where {
        // Its own query: a predicate may hold subqueries, which DataFusion
        // plans in WHERE but not inside an aggregate.
        let sql = format!(
            "SELECT DISTINCT e.session_id FROM events e WHERE e.session_id IS NOT NULL \
             AND e.source = 'openclaw_transcript' AND ({w})"
        );
        let mut matching: HashSet<String> = HashSet::new();
        for batch in &engine.collect(&sql).await? {
            let ids = strings(batch, "session_id")?;
            matching.extend((0..batch.num_rows()).filter_map(|row| value(&ids, row)));
        }
        selected.retain(|s| matching.contains(s));
    }
    if let Some(min) = filters.min_reward {
        if engine
            .collect("SELECT 1 FROM rewards LIMIT 1")
            .await
            .is_err()
        {
            return Err(ExportError::MissingDerived("rewards".into()));
        }
        let sql = format!(
            "SELECT session_id FROM rewards WHERE level = 'combined' \
             AND subject_kind = 'trajectory' GROUP BY session_id HAVING avg(value) >= {min:?}"
        );
        let mut rewarded: HashSet<String> = HashSet::new();
        for batch in &engine.collect(&sql).await? {
            let ids = strings(batch, "session_id")?;
            rewarded.extend((0..batch.num_rows()).filter_map(|row| value(&ids, row)));
        }
        selected.retain(|s| rewarded.contains(s));
    }
    Ok(Some(selected))
}
