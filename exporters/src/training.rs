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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use serde_json::Value;
use trajectory_query::{QueryEngine, QueryError};

use crate::dataset_writer::DatasetWriter;
use crate::filters::SPLIT_RULE;
pub use crate::filters::{split_of, ExportFilters};
use crate::manifest::ExportManifest;
use crate::messages::strip_nulls;
use crate::session_cursor::{SessionCursor, SessionKeyed};
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
    let min = filters.min_reward;
    let passes = |t: &Turn| min.is_none_or(|m| t.reward.is_some_and(|r| r >= m));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let dataset = Dataset {
        target: target.name(),
        schema: target.schema(),
        description: target.description(),
        source: "the derived tables turns and rewards",
        jsonl: matches!(
            target,
            TrainingTarget::OpenAiSft | TrainingTarget::OpenAiDpo
        ),
    };
    if matches!(
        target,
        TrainingTarget::OpenAiDpo | TrainingTarget::TrlPreference
    ) {
        // Pairs compare rollouts of one prompt across sessions: the turns
        // that can be paired are read first. --min-reward applies to the
        // chosen side.
        let (turns, read) = pairable_turns(engine, filters).await?;
        counts.insert("turns_read".into(), read);
        counts.insert("turns_pairable".into(), turns.len());
        let pairs: Vec<_> = preference::pairs(&turns, filters)
            .into_iter()
            .filter(|p| passes(p.chosen))
            .collect();
        for p in &pairs {
            *counts.entry(format!("pairs_{}", p.source)).or_default() += 1;
        }
        let rows = if target == TrainingTarget::OpenAiDpo {
            openai_dpo::rows(&pairs)
        } else {
            preference::rows(&pairs)
        };
        return write_dataset(engine, dataset, out_dir, options, filters, rows, counts, 0);
    }
    // Every other target makes its rows from one session's turns: streamed.
    let mut writer = DatasetWriter::create(engine, dataset, out_dir, options, filters)?;
    let mut sessions = SessionTurns::open(engine, filters).await?;
    let (mut read, mut kept_count) = (0, 0);
    while let Some(turns) = sessions.next_session().await? {
        read += turns.len();
        let kept: Vec<Turn> = turns.into_iter().filter(|t| passes(t)).collect();
        kept_count += kept.len();
        let rows = match target {
            TrainingTarget::OpenAiSft => openai_sft::rows(&kept),
            TrainingTarget::Kto => kto::rows(&kept),
            TrainingTarget::Grpo => grpo::rows(&kept),
            _ => rl_turns::rows(&kept),
        };
        for row in rows {
            writer.push(row)?;
        }
    }
    counts.insert("turns_read".into(), read);
    counts.insert("turns_after_min_reward".into(), kept_count);
    writer.finish(counts, 0)
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

/// The turns passing the SQL filters with their rewards and process
/// signals, one session at a time, ordered by (session, turn index, turn
/// id): a streaming plan (its sort spills under the engine's memory pool),
/// so memory is one batch plus the largest session. The per-turn rewards
/// are the join's build side (`s RIGHT JOIN turns`): a hash join holds its
/// left input whole.
///
/// Contexts are rebuilt from a second plan read in step, the context chain
/// of every turn of the same sessions (`context_prefix_turn_id`,
/// `context_tail`): a filter can keep a turn and drop the turn its context
/// starts with.
pub(crate) struct SessionTurns {
    stream: SendableRecordBatchStream,
    buffered: VecDeque<Turn>,
    done: bool,
    chains: SessionCursor<ContextLink>,
}

/// One turn's link in its session's context chain: its context is the
/// context of `prefix` (none: empty) followed by the messages of `tail`.
struct ContextLink {
    turn_id: String,
    prefix: Option<String>,
    tail: String,
}

/// Decodes a batch of the context-chain query.
fn decode_links(batch: &RecordBatch) -> Result<SessionKeyed<ContextLink>, ExportError> {
    let sessions = crate::columns::strings(batch, "session_id")?;
    let turns = crate::columns::strings(batch, "turn_id")?;
    let prefixes = crate::columns::strings(batch, "context_prefix_turn_id")?;
    let tails = crate::columns::strings(batch, "context_tail")?;
    let text = |array: &arrow::array::StringArray, k| crate::columns::value(array, k);
    Ok((0..batch.num_rows())
        .map(|k| {
            let link = ContextLink {
                turn_id: text(&turns, k).unwrap_or_default(),
                prefix: text(&prefixes, k),
                tail: text(&tails, k).unwrap_or_default(),
            };
            (text(&sessions, k).unwrap_or_default(), link)
        })
        .collect())
}

/// The context of every turn of one session's chain (in turn order, so a
/// prefix comes before the turns that extend it).
///
/// Errors: [`ExportError::Internal`] for a tail that is not a JSON array or
/// a prefix that is not an earlier turn of the session.
fn rebuild_contexts(links: Vec<ContextLink>) -> Result<HashMap<String, Vec<Value>>, ExportError> {
    let mut contexts: HashMap<String, Vec<Value>> = HashMap::with_capacity(links.len());
    for link in links {
        let mut context = match &link.prefix {
            Some(prefix) => contexts.get(prefix).cloned().ok_or_else(|| {
                ExportError::Internal(format!(
                    "turn {}: its context prefix turn {prefix} is not an earlier turn of its \
                     session (rebuild the derived tables with `trajectory derive --full`)",
                    link.turn_id
                ))
            })?,
            None => Vec::new(),
        };
        let tail: Vec<Value> = serde_json::from_str(&link.tail).map_err(|e| {
            ExportError::Internal(format!("turn {}: context_tail: {e}", link.turn_id))
        })?;
        context.extend(tail);
        contexts.insert(link.turn_id, context);
    }
    Ok(contexts)
}

impl SessionTurns {
    /// Plans the turns query.
    ///
    /// Errors: [`ExportError::MissingDerived`]; query errors (a bad `--where`).
    pub(crate) async fn open(
        engine: &QueryEngine,
        filters: &ExportFilters,
    ) -> Result<SessionTurns, ExportError> {
        SessionTurns::open_from(engine, filters, "turns").await
    }

    /// Like [`SessionTurns::open`], over the rows of `turns_source` (SQL
    /// with the columns of `turns`: the table, or a join selecting some of
    /// its rows).
    async fn open_from(
        engine: &QueryEngine,
        filters: &ExportFilters,
        turns_source: &str,
    ) -> Result<SessionTurns, ExportError> {
        require_derived_tables(engine).await?;
        let sql = format!(
            "WITH r AS ({TURN_REWARDS}), \
             g AS (SELECT turn_id, array_agg(DISTINCT signal) AS signals FROM rewards \
               WHERE level = 'process' AND turn_id IS NOT NULL AND signal IS NOT NULL \
               GROUP BY turn_id), \
             s AS (SELECT coalesce(r.turn_id, g.turn_id) AS turn_id, r.reward, r.advantage, \
               g.signals FROM r FULL JOIN g ON g.turn_id = r.turn_id) \
             SELECT t.turn_id, t.session_id, t.agent_id, t.turn_index, t.parent_entry_id, \
               t.user_event_id, t.on_active_branch, t.prompt_hash, t.prompt, \
               t.responses, t.next_state, t.next_state_role, t.provider, t.model, t.locality, \
               t.event_ids, s.reward, s.advantage, s.signals \
             FROM s RIGHT JOIN {turns_source} t ON s.turn_id = t.turn_id \
             WHERE {} ORDER BY t.session_id, t.turn_index, t.turn_id",
            filters.turns_sql()
        );
        let stream = engine.stream(&sql).await?;
        let chain_columns = "c.session_id, c.turn_id, c.context_prefix_turn_id, c.context_tail";
        let chain_order = "ORDER BY c.session_id, c.turn_index, c.turn_id";
        let chains_sql = match (filters.turns_sql().as_str(), turns_source) {
            ("TRUE", "turns") => format!("SELECT {chain_columns} FROM turns c {chain_order}"),
            // The sessions kept are the join's small build side.
            (kept, source) => format!(
                "SELECT {chain_columns} FROM \
                   (SELECT DISTINCT t.session_id FROM {source} t WHERE {kept}) k \
                 JOIN turns c ON c.session_id = k.session_id {chain_order}"
            ),
        };
        let chains = SessionCursor::open(engine, &chains_sql, decode_links).await?;
        Ok(SessionTurns {
            stream,
            buffered: VecDeque::new(),
            done: false,
            chains,
        })
    }

    /// The next session's turns, in order; `None` after the last.
    ///
    /// Errors: query and decoding errors.
    pub(crate) async fn next_session(&mut self) -> Result<Option<Vec<Turn>>, ExportError> {
        let Some(mut session) = self.next_session_rows().await? else {
            return Ok(None);
        };
        if let Some(first) = session.first() {
            let session_id = first.session_id.clone();
            let mut contexts = rebuild_contexts(self.chains.take(&session_id).await?)?;
            for turn in &mut session {
                turn.context = contexts.remove(&turn.turn_id).ok_or_else(|| {
                    ExportError::Internal(format!(
                        "turn {} has no context chain (rebuild the derived tables with \
                         `trajectory derive --full`)",
                        turn.turn_id
                    ))
                })?;
            }
        }
        Ok(Some(session))
    }

    /// The next session's rows of the turns query, contexts still empty.
    async fn next_session_rows(&mut self) -> Result<Option<Vec<Turn>>, ExportError> {
        let mut session: Vec<Turn> = Vec::new();
        loop {
            while let Some(front) = self.buffered.front() {
                if session
                    .first()
                    .is_some_and(|first| first.session_id != front.session_id)
                {
                    return Ok(Some(session));
                }
                if let Some(turn) = self.buffered.pop_front() {
                    session.push(turn);
                }
            }
            if self.done {
                return Ok((!session.is_empty()).then_some(session));
            }
            match self.stream.next().await {
                Some(batch) => {
                    let batch = batch.map_err(QueryError::from)?;
                    self.buffered.extend(turns_of(&batch)?);
                }
                None => self.done = true,
            }
        }
    }
}

/// Each turn's mean `combined` step reward and advantage (`s` in the turn queries).
const TURN_REWARDS: &str = "SELECT turn_id, avg(value) AS reward, avg(advantage) AS advantage \
     FROM rewards WHERE level = 'combined' AND subject_kind = 'llm_call' \
     AND turn_id IS NOT NULL GROUP BY turn_id";

/// The turns passing the filters that [`preference::pairs`] can pair, and
/// how many turns pass the filters.
///
/// A pair is made inside a group of two or more turns: branch siblings
/// (same session, parent entry and prompt) or rewarded rollouts of one
/// prompt hash. A first query (ids, keys and rewards only) finds the turns
/// in such groups; only those are read whole. Their groups are the same as
/// among all turns, so the pairs are too.
async fn pairable_turns(
    engine: &QueryEngine,
    filters: &ExportFilters,
) -> Result<(Vec<Turn>, usize), ExportError> {
    require_derived_tables(engine).await?;
    let filtered = format!(
        "SELECT t.turn_id, t.session_id, coalesce(t.parent_entry_id, '') AS parent, \
           coalesce(t.prompt_hash, t.prompt, '') AS prompt_key, t.prompt_hash, s.reward \
         FROM ({TURN_REWARDS}) s RIGHT JOIN turns t ON s.turn_id = t.turn_id WHERE {}",
        filters.turns_sql()
    );
    let mut read = 0;
    for batch in engine
        .collect(&format!("SELECT count(*) AS n FROM ({filtered})"))
        .await?
    {
        if let Some(n) = crate::columns::ints(&batch, "n")?
            .first()
            .copied()
            .flatten()
        {
            read = n as usize;
        }
    }
    // Groups by aggregation (spills), not window functions (a window over
    // unbounded frames holds its partition); the small sides are the joins'
    // build sides (kept as written): `turn_id IN (...)` became a semi join
    // that held the turns, contexts and all.
    let grouped = format!(
        "(SELECT t.* FROM ( \
           SELECT f.turn_id FROM (SELECT session_id, parent, prompt_key FROM ({filtered}) \
             GROUP BY session_id, parent, prompt_key HAVING count(*) > 1) k \
           JOIN ({filtered}) f ON f.session_id = k.session_id AND f.parent = k.parent \
             AND f.prompt_key = k.prompt_key \
           UNION \
           SELECT f.turn_id FROM (SELECT prompt_hash FROM ({filtered}) \
             WHERE reward IS NOT NULL AND prompt_hash IS NOT NULL \
             GROUP BY prompt_hash HAVING count(*) > 1) h \
           JOIN ({filtered}) f ON f.prompt_hash = h.prompt_hash WHERE f.reward IS NOT NULL \
         ) p JOIN turns t ON t.turn_id = p.turn_id)"
    );
    let mut sessions = SessionTurns::open_from(engine, filters, &grouped).await?;
    let mut out = Vec::new();
    while let Some(turns) = sessions.next_session().await? {
        out.extend(turns);
    }
    Ok((out, read))
}

/// The turns of one batch of the [`SessionTurns`] query.
fn turns_of(batch: &RecordBatch) -> Result<Vec<Turn>, ExportError> {
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in arrow_rows(batch)? {
        let text = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_string);
        let messages = |k: &str| -> Vec<Value> {
            match row.get(k) {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            }
        };
        let strings = |k: &str| -> Vec<String> {
            row.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut signals = strings("signals");
        signals.sort_unstable();
        signals.dedup();
        out.push(Turn {
            signals,
            turn_id: text("turn_id").unwrap_or_default(),
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
            context: Vec::new(),
            prompt: text("prompt").unwrap_or_default(),
            responses: messages("responses"),
            next_state: text("next_state"),
            next_state_role: text("next_state_role"),
            provider: text("provider"),
            model: text("model"),
            locality: text("locality"),
            event_ids: strings("event_ids"),
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
/// row index in the shard) and, when `dataset.jsonl`, `<split>.jsonl`,
/// through a [`DatasetWriter`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_dataset(
    engine: &QueryEngine,
    dataset: Dataset<'_>,
    out_dir: &Path,
    options: &ExportOptions,
    filters: &ExportFilters,
    rows: Vec<Row>,
    counts: BTreeMap<String, usize>,
    sessions_skipped: usize,
) -> Result<ExportSummary, ExportError> {
    let mut writer = DatasetWriter::create(engine, dataset, out_dir, options, filters)?;
    for row in rows {
        writer.push(row)?;
    }
    writer.finish(counts, sessions_skipped)
}

pub(crate) fn card_body(
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
pub(crate) fn openai_line(row: &Value) -> Value {
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
