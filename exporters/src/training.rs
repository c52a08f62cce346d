//! Training targets built from the derived tables (`turns`, `trajectories`,
//! `rewards`; run `trajectory derive` first): `openai-sft`, `openai-dpo`,
//! `trl-preference`, `kto`, `grpo`, `rl-turns`.
//!
//! Formats:
//! - OpenAI chat fine-tuning (`openai-sft`): `{"messages": [...], "tools": [...]}`,
//!   tool-call `arguments` as JSON strings, `weight` 0/1 on assistant messages
//!   (<https://platform.openai.com/docs/guides/supervised-fine-tuning>).
//! - OpenAI preference fine-tuning (`openai-dpo`): `{"input": {"messages"}, "preferred_output":
//!   [...], "non_preferred_output": [...]}`
//!   (<https://platform.openai.com/docs/guides/direct-preference-optimization>).
//! - TRL (`trl-preference`, `kto`, `grpo`): conversational `prompt` / `chosen` /
//!   `rejected`, `prompt` / `completion` / `label`, and prompt-only with reward
//!   columns (<https://huggingface.co/docs/trl/dataset_formats>).
//! - OpenClaw-RL turns (`rl-turns`): context, response, next state and score
//!   per main-line turn (see `docs/training-formats.md` §1).
//!
//! Every row is one turn (or a pair of turns) of a session; the split is
//! decided by the session id (blake3, first byte mod 100 < validation
//! percent → `validation`), so a session never straddles splits. Rows are
//! ordered by (session, turn) and shards carry no wall-clock time: the same
//! log version gives byte-identical shards.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::json::reader::{infer_json_schema_from_iterator, ReaderBuilder};
use arrow::record_batch::RecordBatch;
use serde_json::{json, Value};
use trajectory_query::QueryEngine;

use crate::manifest::{write_manifest, ExportManifest};
use crate::shards::{clear_previous_shards, dataset_card, write_split, ShardInfo};
use crate::{ExportError, ExportOptions, ExportSummary};

/// A target built from the derived tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingTarget {
    OpenAiSft,
    OpenAiDpo,
    TrlPreference,
    Kto,
    Grpo,
    RlTurns,
}

impl TrainingTarget {
    /// The `--target` name.
    pub fn name(self) -> &'static str {
        match self {
            TrainingTarget::OpenAiSft => "openai-sft",
            TrainingTarget::OpenAiDpo => "openai-dpo",
            TrainingTarget::TrlPreference => "trl-preference",
            TrainingTarget::Kto => "kto",
            TrainingTarget::Grpo => "grpo",
            TrainingTarget::RlTurns => "rl-turns",
        }
    }
}

/// Row filters of an export (all optional, combined with AND).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportFilters {
    /// Turns started at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Turns started before this time (RFC 3339).
    pub until: Option<String>,
    pub agent: Option<String>,
    pub provider: Option<String>,
    /// `local` or `cloud`.
    pub locality: Option<String>,
    /// Turns whose reward is at least this.
    pub min_reward: Option<f64>,
    /// An extra SQL predicate over the `turns` columns.
    pub r#where: Option<String>,
    /// Percentage of sessions in the validation split (default 5).
    pub validation_percent: u8,
}

impl ExportFilters {
    fn sql(&self) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut clauses = vec!["TRUE".to_string()];
        if let Some(t) = &self.since {
            clauses.push(format!("t.started_at >= CAST({} AS TIMESTAMP)", quote(t)));
        }
        if let Some(t) = &self.until {
            clauses.push(format!("t.started_at < CAST({} AS TIMESTAMP)", quote(t)));
        }
        if let Some(a) = &self.agent {
            clauses.push(format!("t.agent_id = {}", quote(a)));
        }
        if let Some(p) = &self.provider {
            clauses.push(format!("t.provider = {}", quote(p)));
        }
        if let Some(l) = &self.locality {
            clauses.push(format!("t.locality = {}", quote(l)));
        }
        if let Some(w) = &self.r#where {
            clauses.push(format!("({w})"));
        }
        clauses.join(" AND ")
    }

    /// The filters as recorded in the manifest.
    pub fn to_json(&self) -> Value {
        json!({"since": self.since, "until": self.until, "agent": self.agent,
               "provider": self.provider, "locality": self.locality,
               "min_reward": self.min_reward, "where": self.r#where,
               "validation_percent": self.validation_percent})
    }
}

/// The split of a session: `validation` for `percent`% of sessions by hash.
pub fn split_of(session_id: &str, percent: u8) -> &'static str {
    let byte = blake3::hash(session_id.as_bytes()).as_bytes()[0];
    if u32::from(byte) * 100 / 256 < u32::from(percent) {
        "validation"
    } else {
        "train"
    }
}

struct Turn {
    turn_id: String,
    session_id: String,
    agent_id: Option<String>,
    parent_entry_id: Option<String>,
    on_active_branch: bool,
    prompt_hash: Option<String>,
    context: Vec<Value>,
    prompt: String,
    responses: Vec<Value>,
    next_state: Option<String>,
    next_state_role: Option<String>,
    event_ids: Vec<String>,
    reward: Option<f64>,
    advantage: Option<f64>,
}

/// Exports `target` from the derived tables into `out_dir`.
///
/// Errors: [`ExportError::Internal`] with a hint when the derived tables are
/// missing; query, encoding and I/O errors.
pub async fn export_training(
    engine: &QueryEngine,
    target: TrainingTarget,
    out_dir: &Path,
    options: &ExportOptions,
    filters: &ExportFilters,
) -> Result<ExportSummary, ExportError> {
    let turns = load_turns(engine, filters).await?;
    let mut rows: Vec<(String, Value, Vec<String>)> = Vec::new();
    match target {
        TrainingTarget::OpenAiSft => {
            for t in &turns {
                let mut messages: Vec<Value> = t.context.iter().map(|m| weighted(m, 0)).collect();
                messages.push(json!({"role": "user", "content": t.prompt}));
                messages.extend(t.responses.iter().map(|m| weighted(m, 1)));
                let row = json!({"messages": messages, "tools": tools_of(&t.responses).to_string(),
                                 "session_id": t.session_id, "turn_id": t.turn_id});
                rows.push((t.session_id.clone(), row, t.event_ids.clone()));
            }
        }
        TrainingTarget::RlTurns => {
            for t in &turns {
                let row = json!({
                    "session_id": t.session_id, "turn_id": t.turn_id, "agent_id": t.agent_id,
                    "context": plain(&t.context, Some(&t.prompt)),
                    "response": plain(&t.responses, None),
                    "next_state": t.next_state, "next_state_role": t.next_state_role,
                    "score": t.reward, "advantage": t.advantage,
                    // OpenClaw-RL trains only turns with a next state and a score.
                    "loss_mask": t.next_state.is_some() && t.reward.is_some(),
                    "main_line": t.on_active_branch});
                rows.push((t.session_id.clone(), row, t.event_ids.clone()));
            }
        }
        TrainingTarget::Grpo => {
            for t in &turns {
                let row = json!({
                    "prompt": plain(&t.context, Some(&t.prompt)),
                    "reward": t.reward, "advantage": t.advantage,
                    "group_id": t.prompt_hash, "session_id": t.session_id, "turn_id": t.turn_id});
                rows.push((t.session_id.clone(), row, t.event_ids.clone()));
            }
        }
        TrainingTarget::Kto => {
            for t in turns.iter().filter(|t| t.reward.is_some_and(|r| r != 0.0)) {
                let row = json!({
                    "prompt": plain(&t.context, Some(&t.prompt)),
                    "completion": plain(&t.responses, None),
                    "label": t.reward.unwrap_or_default() > 0.0,
                    "session_id": t.session_id, "turn_id": t.turn_id});
                rows.push((t.session_id.clone(), row, t.event_ids.clone()));
            }
        }
        TrainingTarget::TrlPreference | TrainingTarget::OpenAiDpo => {
            for (chosen, rejected, source) in preference_pairs(&turns) {
                let prompt = plain(&chosen.context, Some(&chosen.prompt));
                let row = if target == TrainingTarget::TrlPreference {
                    json!({"prompt": prompt, "chosen": plain(&chosen.responses, None),
                           "rejected": plain(&rejected.responses, None), "pair_source": source,
                           "session_id": chosen.session_id,
                           "chosen_turn_id": chosen.turn_id, "rejected_turn_id": rejected.turn_id})
                } else {
                    json!({"input": {"messages": prompt},
                           "preferred_output": plain(&chosen.responses, None),
                           "non_preferred_output": plain(&rejected.responses, None),
                           "pair_source": source, "session_id": chosen.session_id})
                };
                let mut ids = chosen.event_ids.clone();
                ids.extend(rejected.event_ids.iter().cloned());
                rows.push((chosen.session_id.clone(), row, ids));
            }
        }
    }
    write_dataset(engine, target.name(), out_dir, options, filters, rows).await
}

/// An OpenAI message with a `weight` on assistant messages.
fn weighted(message: &Value, weight: u8) -> Value {
    let mut m = message.clone();
    if m["role"] == "assistant" {
        m["weight"] = json!(weight);
    }
    if m.get("content").is_none_or(Value::is_null) {
        m["content"] = json!("");
    }
    m
}

/// Messages reduced to `{role, content}` text (tool calls rendered as text),
/// the shape TRL's conversational helpers expect; `prompt` appended as a
/// user message when given.
fn plain(messages: &[Value], prompt: Option<&str>) -> Vec<Value> {
    let mut out: Vec<Value> = messages
        .iter()
        .map(|m| {
            let role = match m["role"].as_str().unwrap_or("user") {
                "tool" => "tool",
                "assistant" => "assistant",
                "system" | "developer" => "system",
                _ => "user",
            };
            let mut content = m["content"].as_str().unwrap_or_default().to_string();
            for call in m["tool_calls"].as_array().into_iter().flatten() {
                let name = call["function"]["name"].as_str().unwrap_or_default();
                let args = call["function"]["arguments"].as_str().unwrap_or("{}");
                if !content.is_empty() {
                    content.push('\n');
                }
                content.push_str(&format!(
                    "<tool_call>{{\"name\": \"{name}\", \"arguments\": {args}}}</tool_call>"
                ));
            }
            json!({"role": role, "content": content})
        })
        .collect();
    if let Some(prompt) = prompt {
        out.push(json!({"role": "user", "content": prompt}));
    }
    out
}

/// Function specs of the tools called in `messages` (names only: parameter
/// schemas are not in transcripts).
fn tools_of(messages: &[Value]) -> Value {
    let mut names: Vec<&str> = messages
        .iter()
        .flat_map(|m| m["tool_calls"].as_array().into_iter().flatten())
        .filter_map(|c| c["function"]["name"].as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    Value::Array(
        names
            .into_iter()
            .map(|n| json!({"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}))
            .collect(),
    )
}

/// Pairs (chosen, rejected, source): branch siblings (same parent entry,
/// different responses; the one with the higher reward, else the one on the
/// active branch, is chosen) and reward differences (same prompt hash, gap ≥ 1).
fn preference_pairs(turns: &[Turn]) -> Vec<(&Turn, &Turn, &'static str)> {
    let mut pairs = Vec::new();
    let mut by_parent: BTreeMap<(&str, &str), Vec<&Turn>> = BTreeMap::new();
    for t in turns {
        if let Some(parent) = t.parent_entry_id.as_deref() {
            by_parent
                .entry((t.session_id.as_str(), parent))
                .or_default()
                .push(t);
        }
    }
    let mut paired: std::collections::HashSet<(&str, &str)> = Default::default();
    for siblings in by_parent.values().filter(|s| s.len() > 1) {
        let best = siblings.iter().copied().max_by(|a, b| {
            a.reward
                .unwrap_or(0.0)
                .total_cmp(&b.reward.unwrap_or(0.0))
                .then(a.on_active_branch.cmp(&b.on_active_branch))
                .then(b.turn_id.cmp(&a.turn_id))
        });
        let Some(best) = best else { continue };
        for other in siblings
            .iter()
            .copied()
            .filter(|o| o.turn_id != best.turn_id)
        {
            if other.responses != best.responses {
                paired.insert((best.turn_id.as_str(), other.turn_id.as_str()));
                pairs.push((best, other, "branch_siblings"));
            }
        }
    }
    let mut by_prompt: BTreeMap<&str, Vec<&Turn>> = BTreeMap::new();
    for t in turns.iter().filter(|t| t.reward.is_some()) {
        if let Some(hash) = t.prompt_hash.as_deref() {
            by_prompt.entry(hash).or_default().push(t);
        }
    }
    for group in by_prompt.values().filter(|g| g.len() > 1) {
        let mut sorted = group.clone();
        sorted.sort_by(|a, b| {
            b.reward
                .unwrap_or(0.0)
                .total_cmp(&a.reward.unwrap_or(0.0))
                .then(a.turn_id.cmp(&b.turn_id))
        });
        let (best, worst) = (sorted[0], sorted[sorted.len() - 1]);
        if best.reward.unwrap_or(0.0) - worst.reward.unwrap_or(0.0) >= 1.0
            && !paired.contains(&(best.turn_id.as_str(), worst.turn_id.as_str()))
            && best.responses != worst.responses
        {
            pairs.push((best, worst, "reward_difference"));
        }
    }
    pairs
}

async fn load_turns(
    engine: &QueryEngine,
    filters: &ExportFilters,
) -> Result<Vec<Turn>, ExportError> {
    let missing = engine.collect("SELECT 1 FROM turns LIMIT 1").await.is_err()
        || engine
            .collect("SELECT 1 FROM rewards LIMIT 1")
            .await
            .is_err();
    if missing {
        return Err(ExportError::Internal(
            "this target needs the derived tables: run `trajectory derive` first".into(),
        ));
    }
    let sql = format!(
        "WITH step AS (SELECT turn_id, avg(value) AS reward, avg(advantage) AS advantage \
           FROM rewards WHERE level = 'combined' AND subject_kind = 'llm_call' GROUP BY turn_id) \
         SELECT t.turn_id, t.session_id, t.agent_id, t.parent_entry_id, t.on_active_branch, \
           t.prompt_hash, t.context, t.prompt, t.responses, t.next_state, t.next_state_role, \
           t.event_ids, s.reward, s.advantage \
         FROM turns t LEFT JOIN step s ON s.turn_id = t.turn_id \
         WHERE {} ORDER BY t.session_id, t.turn_index, t.turn_id",
        filters.sql()
    );
    let batches = engine.collect(&sql).await?;
    let mut out = Vec::new();
    for batch in &batches {
        let rows = arrow_rows(batch)?;
        for row in rows {
            let text = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_string);
            let parse = |k: &str| -> Vec<Value> {
                text(k)
                    .and_then(|s| serde_json::from_str::<Vec<Value>>(&s).ok())
                    .unwrap_or_default()
            };
            let reward = row.get("reward").and_then(Value::as_f64);
            if let Some(min) = filters.min_reward {
                if reward.is_none_or(|r| r < min) {
                    continue;
                }
            }
            out.push(Turn {
                turn_id: text("turn_id").unwrap_or_default(),
                session_id: text("session_id").unwrap_or_default(),
                agent_id: text("agent_id"),
                parent_entry_id: text("parent_entry_id"),
                on_active_branch: row
                    .get("on_active_branch")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                prompt_hash: text("prompt_hash"),
                context: parse("context"),
                prompt: text("prompt").unwrap_or_default(),
                responses: parse("responses"),
                next_state: text("next_state"),
                next_state_role: text("next_state_role"),
                event_ids: row
                    .get("event_ids")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                reward,
                advantage: row.get("advantage").and_then(Value::as_f64),
            });
        }
    }
    Ok(out)
}

/// Rows of a batch as JSON objects (arrow's JSON writer).
fn arrow_rows(batch: &RecordBatch) -> Result<Vec<serde_json::Map<String, Value>>, ExportError> {
    let mut buffer = Vec::new();
    {
        let mut writer = arrow::json::ArrayWriter::new(&mut buffer);
        writer.write(batch)?;
        writer.finish()?;
    }
    if buffer.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buffer).map_err(|e| ExportError::Internal(format!("row decoding: {e}")))
}

/// Writes rows (session, row, event ids) as train/validation shards, the
/// card and the manifest.
async fn write_dataset(
    engine: &QueryEngine,
    target: &str,
    out_dir: &Path,
    options: &ExportOptions,
    filters: &ExportFilters,
    rows: Vec<(String, Value, Vec<String>)>,
) -> Result<ExportSummary, ExportError> {
    std::fs::create_dir_all(out_dir).map_err(|e| ExportError::io(out_dir, e))?;
    clear_previous_shards(out_dir)?;
    for stale in ["train.jsonl", "validation.jsonl"] {
        let _ = std::fs::remove_file(out_dir.join(stale));
    }
    let values: Vec<Value> = rows.iter().map(|(_, v, _)| v.clone()).collect();
    let schema = if values.is_empty() {
        Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("session_id", arrow::datatypes::DataType::Utf8, true),
        ]))
    } else {
        Arc::new(infer_json_schema_from_iterator(
            values.iter().map(|v| Ok(v.clone())),
        )?)
    };
    let mut shards: Vec<ShardInfo> = Vec::new();
    let mut lineage = Vec::new();
    let mut total = 0;
    for split in ["train", "validation"] {
        let part: Vec<&(String, Value, Vec<String>)> = rows
            .iter()
            .filter(|(session, _, _)| split_of(session, filters.validation_percent) == split)
            .collect();
        // An empty validation split is left out (loaders reject empty splits);
        // train always has a shard, possibly empty.
        if part.is_empty() && split == "validation" {
            continue;
        }
        let mut decoder = ReaderBuilder::new(Arc::clone(&schema)).build_decoder()?;
        decoder.serialize(&part.iter().map(|(_, v, _)| v).collect::<Vec<_>>())?;
        let batch = decoder
            .flush()?
            .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&schema)));
        let written = write_split(
            out_dir,
            split,
            Arc::clone(&schema),
            &batch,
            options.rows_per_shard,
        )?;
        let mut offset = 0;
        for shard in &written {
            for (session, _, ids) in &part[offset..offset + shard.rows] {
                lineage.push(json!({"session_id": session, "event_ids": ids, "shard": shard.path}));
            }
            offset += shard.rows;
        }
        if target.starts_with("openai") {
            let path = out_dir.join(format!("{split}.jsonl"));
            let text: String = part
                .iter()
                .map(|(_, v, _)| format!("{}\n", openai_line(v)))
                .collect();
            std::fs::write(&path, text).map_err(|e| ExportError::io(&path, e))?;
        }
        total += part.len();
        shards.extend(written);
    }
    let mut splits: Vec<&str> = vec!["train"];
    if shards.iter().any(|s| s.split == "validation") {
        splits.push("validation");
    }
    let mut manifest = ExportManifest::new(
        target,
        engine.events_version(),
        options,
        total,
        0,
        shards.clone(),
        lineage,
    );
    manifest.filters = Some(filters.to_json());
    let manifest_path = write_manifest(out_dir, &manifest)?;
    let card = dataset_card(
        &format!("{target} dataset exported by trajectory"),
        &splits,
        &format!(
            "Built from the derived `turns` and `rewards` tables (events version {}). \
             Format and columns: docs/datasets.md, section Export targets. Split by hashed \
             session id ({}% validation). Lineage (the events behind every row, per shard) and \
             checksums are in `manifest.json`.",
            engine.events_version(),
            filters.validation_percent
        ),
    );
    let card_path = out_dir.join("README.md");
    std::fs::write(&card_path, card).map_err(|e| ExportError::io(&card_path, e))?;
    Ok(ExportSummary {
        target: target.to_string(),
        out_dir: out_dir.display().to_string(),
        events_version: engine.events_version(),
        rows: total,
        sessions_skipped: 0,
        shards,
        manifest: manifest_path.display().to_string(),
    })
}

/// The JSONL line OpenAI's API takes: the row without our bookkeeping
/// columns, `tools` as an array.
fn openai_line(row: &Value) -> Value {
    let mut line = row.clone();
    if let Some(map) = line.as_object_mut() {
        for key in ["session_id", "turn_id", "pair_source"] {
            map.remove(key);
        }
        if let Some(Value::String(tools)) = map.get("tools").cloned() {
            map.insert(
                "tools".into(),
                serde_json::from_str(&tools).unwrap_or(Value::Null),
            );
        }
    }
    line
}
