//! Training targets built from the derived tables (`turns`, `rewards`,
//! written by `trajectory derive`): `openai-sft`, `openai-dpo`,
//! `trl-preference`, `kto`, `grpo`, `rl-turns`. One module per target builds
//! its rows ([`crate::openai_sft`], [`crate::openai_dpo`],
//! [`crate::preference`], [`crate::kto`], [`crate::grpo`],
//! [`crate::rl_turns`]); this module loads the turns, applies the filters and
//! writes the dataset.
//!
//! Output (`DIR`):
//!
//! ```text
//! data/train-00000-of-00001.parquet        zstd Parquet, fixed schema per target
//! data/validation-00000-of-00001.parquet   when any session hashes into validation
//! train.jsonl, validation.jsonl            openai-* only: the lines OpenAI's API takes
//! README.md                                dataset card (configs, columns)
//! manifest.json                            lineage, filters, jobs, shard sha256
//! ```
//!
//! Determinism: rows are ordered by (session, turn index, turn id) — pairs by
//! the chosen turn's order —, split by [`split_of`], and shards carry no
//! wall-clock time, so the same derived tables and options give
//! byte-identical shards.
//!
//! Errors: [`ExportError::MissingDerived`] when `turns` or `rewards` do not
//! exist (run `trajectory derive` first; the exporter never derives on its
//! own, so an export cannot silently rewrite tables other jobs read).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::json::ReaderBuilder;
use arrow::record_batch::RecordBatch;
use serde_json::{json, Value};
use trajectory_query::QueryEngine;

use crate::filters::SPLIT_RULE;
pub use crate::filters::{split_of, ExportFilters};
use crate::manifest::{write_manifest, ExportManifest};
use crate::messages::strip_nulls;
use crate::shards::{clear_previous_shards, dataset_card, write_split, ShardInfo};
use crate::{grpo, kto, openai_dpo, openai_sft, preference, rl_turns};
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
    /// Every derived-table target.
    pub const ALL: [TrainingTarget; 6] = [
        TrainingTarget::OpenAiSft,
        TrainingTarget::OpenAiDpo,
        TrainingTarget::TrlPreference,
        TrainingTarget::Kto,
        TrainingTarget::Grpo,
        TrainingTarget::RlTurns,
    ];

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

    /// The target named `name` (`--target` spelling).
    pub fn from_name(name: &str) -> Option<TrainingTarget> {
        TrainingTarget::ALL.into_iter().find(|t| t.name() == name)
    }

    fn schema(self) -> SchemaRef {
        match self {
            TrainingTarget::OpenAiSft => openai_sft::schema(),
            TrainingTarget::OpenAiDpo => openai_dpo::schema(),
            TrainingTarget::TrlPreference => preference::schema(),
            TrainingTarget::Kto => kto::schema(),
            TrainingTarget::Grpo => grpo::schema(),
            TrainingTarget::RlTurns => rl_turns::schema(),
        }
    }

    /// One line of the card: what the rows are and which trainer takes them.
    fn description(self) -> &'static str {
        match self {
            TrainingTarget::OpenAiSft => openai_sft::DESCRIPTION,
            TrainingTarget::OpenAiDpo => openai_dpo::DESCRIPTION,
            TrainingTarget::TrlPreference => preference::DESCRIPTION,
            TrainingTarget::Kto => kto::DESCRIPTION,
            TrainingTarget::Grpo => grpo::DESCRIPTION,
            TrainingTarget::RlTurns => rl_turns::DESCRIPTION,
        }
    }
}

/// One turn of the `turns` table with its reward (see `docs/datasets.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub turn_id: String,
    pub session_id: String,
    pub agent_id: Option<String>,
    pub turn_index: i64,
    pub parent_entry_id: Option<String>,
    pub user_event_id: Option<String>,
    pub on_active_branch: bool,
    pub prompt_hash: Option<String>,
    /// OpenAI-style messages before the user message.
    pub context: Vec<Value>,
    /// The user message text.
    pub prompt: String,
    /// OpenAI-style messages of the turn after the user message.
    pub responses: Vec<Value>,
    pub next_state: Option<String>,
    pub next_state_role: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub locality: Option<String>,
    /// Every event of the turn (lineage).
    pub event_ids: Vec<String>,
    /// Mean of the turn's `combined` step rewards; `None` without any.
    pub reward: Option<f64>,
    /// Mean of those rows' advantages.
    pub advantage: Option<f64>,
    /// Process signals that fired on the turn's LLM calls, sorted, distinct.
    pub signals: Vec<String>,
}

impl Turn {
    /// `context` + the user message: the state the responses answer.
    pub fn prompt_messages(&self) -> Vec<Value> {
        let mut messages = self.context.clone();
        messages.push(crate::messages::user(&self.prompt));
        messages
    }
}

/// One output row: its values, the session that decides its split, and its
/// lineage (turns and events behind it).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub session_id: String,
    pub value: Value,
    pub turn_ids: Vec<String>,
    pub event_ids: Vec<String>,
}

impl Row {
    /// A row built from one turn.
    pub fn of_turn(turn: &Turn, value: Value) -> Row {
        Row {
            session_id: turn.session_id.clone(),
            value,
            turn_ids: vec![turn.turn_id.clone()],
            event_ids: turn.event_ids.clone(),
        }
    }
}

/// Exports `target` from the derived tables into `out_dir`: shards per split,
/// `README.md`, `manifest.json`, and for `openai-*` also `train.jsonl` /
/// `validation.jsonl`. Earlier shards in `out_dir` are replaced.
///
/// Errors: [`ExportError::Invalid`] for bad filters,
/// [`ExportError::MissingDerived`] without the derived tables, query (a bad
/// `--where` included), encoding and I/O errors.
pub async fn export_training(
    engine: &QueryEngine,
    target: TrainingTarget,
    out_dir: &Path,
    options: &ExportOptions,
    filters: &ExportFilters,
) -> Result<ExportSummary, ExportError> {
    filters.validate()?;
    let turns = load_turns(engine, filters).await?;
    let min = filters.min_reward;
    let passes = |t: &Turn| min.is_none_or(|m| t.reward.is_some_and(|r| r >= m));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    counts.insert("turns_read".into(), turns.len());
    let rows = match target {
        TrainingTarget::OpenAiDpo | TrainingTarget::TrlPreference => {
            // Pairs need their rejected side: --min-reward applies to the chosen.
            let pairs: Vec<_> = preference::pairs(&turns, filters)
                .into_iter()
                .filter(|p| passes(p.chosen))
                .collect();
            for p in &pairs {
                *counts.entry(format!("pairs_{}", p.source)).or_default() += 1;
            }
            if target == TrainingTarget::OpenAiDpo {
                openai_dpo::rows(&pairs)
            } else {
                preference::rows(&pairs)
            }
        }
        _ => {
            let kept: Vec<Turn> = turns.into_iter().filter(|t| passes(t)).collect();
            counts.insert("turns_after_min_reward".into(), kept.len());
            match target {
                TrainingTarget::OpenAiSft => openai_sft::rows(&kept),
                TrainingTarget::Kto => kto::rows(&kept),
                TrainingTarget::Grpo => grpo::rows(&kept),
                _ => rl_turns::rows(&kept),
            }
        }
    };
    let written = Dataset {
        target: target.name(),
        schema: target.schema(),
        description: target.description(),
        source: "the derived tables turns and rewards",
        jsonl: matches!(
            target,
            TrainingTarget::OpenAiSft | TrainingTarget::OpenAiDpo
        ),
    };
    write_dataset(engine, &written, out_dir, options, filters, rows, counts, 0)
}

/// What [`write_dataset`] writes.
pub(crate) struct Dataset<'a> {
    pub target: &'a str,
    pub schema: SchemaRef,
    pub description: &'a str,
    /// What the rows were read from (for the card).
    pub source: &'a str,
    /// Also write `<split>.jsonl` for OpenAI's API.
    pub jsonl: bool,
}

/// Loads the turns passing the SQL filters with their rewards, ordered by
/// (session, turn index, turn id).
async fn load_turns(
    engine: &QueryEngine,
    filters: &ExportFilters,
) -> Result<Vec<Turn>, ExportError> {
    require_derived_tables(engine).await?;
    let sql = format!(
        "WITH s AS (SELECT turn_id, avg(value) AS reward, avg(advantage) AS advantage \
           FROM rewards WHERE level = 'combined' AND subject_kind = 'llm_call' \
           AND turn_id IS NOT NULL GROUP BY turn_id) \
         SELECT t.turn_id, t.session_id, t.agent_id, t.turn_index, t.parent_entry_id, \
           t.user_event_id, t.on_active_branch, t.prompt_hash, t.context, t.prompt, \
           t.responses, t.next_state, t.next_state_role, t.provider, t.model, t.locality, \
           t.event_ids, s.reward, s.advantage \
         FROM turns t LEFT JOIN s ON s.turn_id = t.turn_id \
         WHERE {} ORDER BY t.session_id, t.turn_index, t.turn_id",
        filters.turns_sql()
    );
    let batches = engine.collect(&sql).await?;
    let mut signals: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for batch in &engine
        .collect(
            "SELECT turn_id, signal FROM rewards WHERE level = 'process' AND turn_id IS NOT NULL",
        )
        .await?
    {
        for row in arrow_rows(batch)? {
            if let (Some(turn), Some(signal)) = (
                row.get("turn_id").and_then(Value::as_str),
                row.get("signal").and_then(Value::as_str),
            ) {
                signals
                    .entry(turn.to_string())
                    .or_default()
                    .insert(signal.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for batch in &batches {
        for row in arrow_rows(batch)? {
            let text = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_string);
            let messages = |k: &str| -> Vec<Value> {
                match row.get(k) {
                    Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
                    Some(Value::Array(a)) => a.clone(),
                    _ => Vec::new(),
                }
            };
            let turn_id = text("turn_id").unwrap_or_default();
            out.push(Turn {
                signals: signals
                    .remove(&turn_id)
                    .map(|s| s.into_iter().collect())
                    .unwrap_or_default(),
                turn_id,
                session_id: text("session_id").unwrap_or_default(),
                agent_id: text("agent_id"),
                turn_index: row.get("turn_index").and_then(Value::as_i64).unwrap_or(0),
                parent_entry_id: text("parent_entry_id"),
                user_event_id: text("user_event_id"),
                on_active_branch: row
                    .get("on_active_branch")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                prompt_hash: text("prompt_hash"),
                context: messages("context"),
                prompt: text("prompt").unwrap_or_default(),
                responses: messages("responses"),
                next_state: text("next_state"),
                next_state_role: text("next_state_role"),
                provider: text("provider"),
                model: text("model"),
                locality: text("locality"),
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
                reward: row
                    .get("reward")
                    .and_then(Value::as_f64)
                    .filter(|r| r.is_finite()),
                advantage: row
                    .get("advantage")
                    .and_then(Value::as_f64)
                    .filter(|a| a.is_finite()),
            });
        }
    }
    Ok(out)
}

/// Checks that `turns` and `rewards` exist.
///
/// Errors: [`ExportError::MissingDerived`] naming the first missing one.
pub(crate) async fn require_derived_tables(engine: &QueryEngine) -> Result<(), ExportError> {
    for table in ["turns", "rewards"] {
        if engine
            .collect(&format!("SELECT 1 FROM {table} LIMIT 1"))
            .await
            .is_err()
        {
            return Err(ExportError::MissingDerived(table.to_string()));
        }
    }
    Ok(())
}

/// Rows of a batch as JSON objects (arrow's JSON writer; nulls left out).
pub(crate) fn arrow_rows(
    batch: &RecordBatch,
) -> Result<Vec<serde_json::Map<String, Value>>, ExportError> {
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

/// Writes rows as train/validation shards (split by session), the card, the
/// manifest (with one lineage entry per row: session, turns, events, shard,
/// row index in the shard) and, when `dataset.jsonl`, `<split>.jsonl`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_dataset(
    engine: &QueryEngine,
    dataset: &Dataset<'_>,
    out_dir: &Path,
    options: &ExportOptions,
    filters: &ExportFilters,
    rows: Vec<Row>,
    counts: BTreeMap<String, usize>,
    sessions_skipped: usize,
) -> Result<ExportSummary, ExportError> {
    std::fs::create_dir_all(out_dir).map_err(|e| ExportError::io(out_dir, e))?;
    clear_previous_shards(out_dir)?;
    for stale in ["train.jsonl", "validation.jsonl"] {
        let path = out_dir.join(stale);
        if path.exists() {
            std::fs::remove_file(&path).map_err(|e| ExportError::io(&path, e))?;
        }
    }
    let mut shards: Vec<ShardInfo> = Vec::new();
    let mut lineage = Vec::new();
    let mut sessions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut total = 0;
    for split in ["train", "validation"] {
        let part: Vec<&Row> = rows
            .iter()
            .filter(|r| split_of(&r.session_id, filters.validation_percent) == split)
            .collect();
        // An empty validation split is left out (loaders reject empty
        // splits); train always has a shard, possibly empty.
        if part.is_empty() && split == "validation" {
            continue;
        }
        let mut decoder = ReaderBuilder::new(Arc::clone(&dataset.schema)).build_decoder()?;
        decoder.serialize(&part.iter().map(|r| &r.value).collect::<Vec<_>>())?;
        let batch = decoder
            .flush()?
            .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&dataset.schema)));
        if batch.num_rows() != part.len() {
            return Err(ExportError::Internal(format!(
                "{} rows decoded for {} values",
                batch.num_rows(),
                part.len()
            )));
        }
        let written = write_split(
            out_dir,
            split,
            Arc::clone(&dataset.schema),
            &batch,
            options.rows_per_shard,
        )?;
        let mut offset = 0;
        for shard in &written {
            for (index, row) in part[offset..offset + shard.rows].iter().enumerate() {
                lineage.push(json!({"shard": shard.path, "row": index,
                    "session_id": row.session_id, "turn_ids": row.turn_ids,
                    "event_ids": row.event_ids}));
            }
            offset += shard.rows;
        }
        if dataset.jsonl {
            let path = out_dir.join(format!("{split}.jsonl"));
            let mut text = String::new();
            for row in &part {
                text.push_str(&openai_line(&row.value).to_string());
                text.push('\n');
            }
            std::fs::write(&path, text).map_err(|e| ExportError::io(&path, e))?;
        }
        sessions
            .entry(split)
            .or_default()
            .extend(part.iter().map(|r| r.session_id.as_str()));
        total += part.len();
        shards.extend(written);
    }
    let mut splits: Vec<&str> = vec!["train"];
    if shards.iter().any(|s| s.split == "validation") {
        splits.push("validation");
    }
    let mut manifest = ExportManifest::new(
        dataset.target,
        engine.events_version(),
        options,
        total,
        sessions_skipped,
        shards.clone(),
        lineage,
    );
    manifest.filters = Some(filters.to_json());
    let mut counts = counts;
    for (split, set) in &sessions {
        counts.insert(format!("sessions_{split}"), set.len());
    }
    manifest.counts = Some(json!(counts));
    manifest.split = Some(json!({"rule": SPLIT_RULE,
        "validation_percent": filters.validation_percent}));
    let manifest_path = write_manifest(out_dir, &manifest)?;
    let card = dataset_card(
        &format!("{} dataset exported by trajectory", dataset.target),
        &splits,
        &card_body(
            dataset,
            engine.events_version(),
            options,
            filters,
            &manifest,
        ),
    );
    let card_path = out_dir.join("README.md");
    std::fs::write(&card_path, card).map_err(|e| ExportError::io(&card_path, e))?;
    Ok(ExportSummary {
        target: dataset.target.to_string(),
        out_dir: out_dir.display().to_string(),
        events_version: engine.events_version(),
        rows: total,
        sessions_skipped,
        shards,
        manifest: manifest_path.display().to_string(),
    })
}

fn card_body(
    dataset: &Dataset<'_>,
    events_version: u64,
    options: &ExportOptions,
    filters: &ExportFilters,
    manifest: &ExportManifest,
) -> String {
    let columns: Vec<String> = dataset
        .schema
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect();
    let rows: Vec<String> = manifest
        .rows
        .iter()
        .map(|(split, n)| format!("{split}: {n}"))
        .collect();
    let jsonl = if dataset.jsonl {
        "\n\n`train.jsonl` / `validation.jsonl` hold the same rows as OpenAI's fine-tuning API \
         takes them (bookkeeping columns and nulls left out, `tools` as an array)."
    } else {
        ""
    };
    let filters_text = if filters.any() {
        format!("filters: `{}`", filters.to_json())
    } else {
        "no filters".to_string()
    };
    format!(
        "{}\n\n- rows: {}\n- source: events table version {} of `{}` (as of {}), read through \
         {}; {}\n- columns: {}\n- split: {} ({}% validation)\n\nColumns and how rows are \
         formed: `docs/datasets.md`, section Export targets.{}\n\n\
         ```python\nfrom datasets import load_dataset\n\
         ds = load_dataset(\"parquet\", data_files={{\"train\": \"data/train-*.parquet\"}})\n```\n\n\
         Lineage (the turns and events behind every row, per shard and row) and shard checksums \
         are in `manifest.json`.",
        dataset.description,
        rows.join(", "),
        events_version,
        options.store,
        options.as_of.as_deref().unwrap_or("latest"),
        dataset.source,
        filters_text,
        columns.join(", "),
        SPLIT_RULE,
        filters.validation_percent,
        jsonl
    )
}

/// The JSONL line OpenAI's API takes: the row without our bookkeeping
/// columns (anything but `messages`, `tools`, `input`, `preferred_output`,
/// `non_preferred_output`), nulls dropped, `tools` parsed from JSON text.
fn openai_line(row: &Value) -> Value {
    let mut line = serde_json::Map::new();
    let Some(map) = row.as_object() else {
        return Value::Null;
    };
    for (key, value) in map {
        match key.as_str() {
            "messages" | "preferred_output" | "non_preferred_output" => {
                line.insert(key.clone(), strip_nulls(value));
            }
            "tools" => {
                line.insert(key.clone(), parse_tools(value));
            }
            "input" => {
                let mut input = strip_nulls(value);
                if let Some(tools) = input.get("tools").map(parse_tools) {
                    input["tools"] = tools;
                }
                line.insert(key.clone(), input);
            }
            _ => {}
        }
    }
    // OpenAI's tool messages carry no `name`.
    strip_tool_names(line.get_mut("messages"));
    if let Some(input) = line.get_mut("input") {
        strip_tool_names(input.get_mut("messages"));
    }
    Value::Object(line)
}

fn parse_tools(value: &Value) -> Value {
    match value {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Array(Vec::new())),
        other => other.clone(),
    }
}

fn strip_tool_names(messages: Option<&mut Value>) {
    for m in messages.and_then(Value::as_array_mut).into_iter().flatten() {
        if m["role"] == "tool" {
            if let Some(obj) = m.as_object_mut() {
                obj.remove("name");
            }
        }
    }
}
