//! The `dedupe_signatures` table: one row per trajectory with what
//! [`crate::dedupe`] compares (its exact hash, MinHash signature and LSH band
//! keys, and whether it shares a 13-gram with an eval file), computed by a
//! DataFusion plan session by session and kept up to date incrementally.
//!
//! ```text
//! turns ∪ trajectories ──▶ RepartitionExec(hash session_id, N) ──▶ SortExec(session_id, part, id)
//!     ──▶ per partition, one session at a time: trajectory text → normalised words
//!         → blake3 (exact) · shingles → MinHash → band keys · eval 13-grams
//!     ──▶ a derived-table writer per partition ──▶ one commit
//! ```
//!
//! A trajectory's text is each of its turns' prompt and responses in order,
//! so a session's rows hold everything its signatures need: the plan reads
//! the session's turns (`part` 0) then its trajectories (`part` 1). Memory is
//! the largest session's turn text plus one output batch per partition; the
//! sort spills under the engine's pool.
//!
//! **Incremental.** The table's lineage records the `trajectories` version
//! it reflects (its `events_version`) and the parameters (MinHash, the eval
//! files' content hashes, the turn and trajectory job versions). When only
//! the events version moved, only the sessions touched by the `events`
//! commits since then are computed again and their rows replaced in one
//! commit; a nightly dedupe hashes the new documents only.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Builder, ListBuilder, RecordBatch, StringArray};
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_expr::expressions::col;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Map, Value};
use trajectory_query::{EngineOptions, QueryEngine, QueryError};
use trajectory_store::{DerivedLineage, DerivedReplace, DerivedTableWriter, EventStore};

use crate::columns::{event_ids_field, int64, timestamp_type, utf8};
use crate::derive_job::{partition_streams, DeriveScope, DERIVE_BATCH_ROWS};
use crate::minhash::{band_keys, shingles, words, MinHashParams, MinHasher};
use crate::session_plan::sessions_predicate;
use crate::DeriveError;

/// The table's name.
pub const SIGNATURES_TABLE: &str = "dedupe_signatures";

/// Version of the signature method (bump when output for the same input changes).
pub const SIGNATURES_JOB_VERSION: &str = "dedupe-signatures-v1";

/// Word n-gram length for decontamination (the GPT-3 / Llama practice).
pub const CONTAMINATION_NGRAM: usize = 13;

/// Output rows per batch written.
const OUTPUT_ROWS: usize = 2048;

/// What [`update_signatures`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignaturesSummary {
    /// The `trajectories` table's events version the signatures reflect.
    pub events_version: u64,
    /// Whether the table already reflected it (nothing computed).
    pub up_to_date: bool,
    /// Full or incremental; `None` when up to date.
    pub scope: Option<DeriveScope>,
    /// Trajectories whose signatures were computed by this run.
    pub computed: usize,
    /// The table's Delta version after this run's commit.
    pub table_version: Option<u64>,
}

/// The `dedupe_signatures` schema (documented in docs/datasets.md).
pub fn signatures_schema() -> SchemaRef {
    let list = |name: &str| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            false,
        )
    };
    Arc::new(Schema::new(vec![
        Field::new("trajectory_id", DataType::Utf8, false),
        Field::new("session_id", DataType::Utf8, true),
        event_ids_field(),
        Field::new("ended_at", timestamp_type(), true),
        Field::new("exact_hash", DataType::Utf8, false),
        Field::new("shingles", DataType::Int64, false),
        // MinHash values (< 2^61) and band keys (64-bit hashes) as int64.
        list("signature"),
        list("band_keys"),
        Field::new("contaminated_by", DataType::Utf8, true),
        Field::new("contamination_ngram", DataType::Utf8, true),
    ]))
}

/// Eval-set 13-grams, each with the file it first came from.
pub(crate) struct EvalGrams {
    grams: HashMap<String, String>,
    /// Each eval file with the blake3 of its bytes (for the lineage).
    files: Vec<(String, String)>,
}

impl EvalGrams {
    /// Reads `files` (JSONL: every string value of each line; otherwise every line).
    ///
    /// Errors: [`DeriveError::InvalidOption`] naming an unreadable file.
    pub(crate) fn read(files: &[PathBuf]) -> Result<EvalGrams, DeriveError> {
        let mut grams = HashMap::new();
        let mut hashes = Vec::new();
        for file in files {
            let bytes = std::fs::read(file).map_err(|e| {
                DeriveError::InvalidOption(format!("cannot read eval file {}: {e}", file.display()))
            })?;
            hashes.push((
                file.display().to_string(),
                blake3::hash(&bytes).to_hex().to_string(),
            ));
            for text in eval_texts(&String::from_utf8_lossy(&bytes)) {
                let w = words(&text);
                for gram in w.windows(CONTAMINATION_NGRAM) {
                    grams
                        .entry(gram.join(" "))
                        .or_insert_with(|| file.display().to_string());
                }
            }
        }
        Ok(EvalGrams {
            grams,
            files: hashes,
        })
    }

    /// The first 13-gram of `words` found in an eval file, with that file.
    fn first_match(&self, words: &[String]) -> Option<(String, String)> {
        if self.grams.is_empty() {
            return None;
        }
        words.windows(CONTAMINATION_NGRAM).find_map(|g| {
            let key = g.join(" ");
            self.grams.get(&key).map(|f| (key, f.clone()))
        })
    }
}

/// Texts of an eval file: every string value of each JSON line, else the line.
fn eval_texts(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        match serde_json::from_str::<Value>(line) {
            Ok(value @ (Value::Object(_) | Value::Array(_))) => collect_strings(&value, &mut out),
            _ => out.push(line.to_string()),
        }
    }
    out
}

/// Every string of a JSON value but the values of `role`, `type`, `id` and
/// `tool_call_id`.
fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => {
            for (key, v) in map {
                if key != "role" && key != "type" && key != "id" && key != "tool_call_id" {
                    collect_strings(v, out);
                }
            }
        }
        _ => {}
    }
}

/// The text of an OpenAI-style message array (JSON): every `content` string
/// and text part, and tool-call arguments; the input itself when not JSON.
fn response_text(json_text: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(json_text) else {
        return json_text.to_string();
    };
    let mut out = Vec::new();
    collect_strings(&value, &mut out);
    out.join("\n")
}

/// The lineage parameters of the signatures.
fn lineage_params(
    p: &MinHashParams,
    grams: &EvalGrams,
    turns_job: &str,
    trajectories_job: &str,
) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert("shingle_words".into(), json!(p.shingle_words));
    params.insert("bands".into(), json!(p.bands));
    params.insert("rows".into(), json!(p.rows));
    params.insert("seed".into(), json!(p.seed));
    params.insert(
        "eval_files".into(),
        Value::from(
            grams
                .files
                .iter()
                .map(|(path, hash)| json!({"path": path, "blake3": hash}))
                .collect::<Vec<_>>(),
        ),
    );
    params.insert("turns_job_version".into(), json!(turns_job));
    params.insert("trajectories_job_version".into(), json!(trajectories_job));
    params
}

/// Brings `dedupe_signatures` up to date with the `trajectories` table:
/// nothing when it already reflects the same build and parameters, the
/// touched sessions when only newer events came in, else every trajectory
/// (`full` forces that).
///
/// Memory: `memory` bytes for the plan's sort (it spills past them), plus
/// the largest session's text and one output batch per partition.
///
/// Errors: [`DeriveError::InvalidOption`] without `turns` / `trajectories`;
/// query, Arrow and store errors.
pub(crate) async fn update_signatures(
    store: &EventStore,
    params: &MinHashParams,
    grams: Arc<EvalGrams>,
    full: bool,
    memory: usize,
) -> Result<SignaturesSummary, DeriveError> {
    let missing = || {
        DeriveError::InvalidOption(
            "the turns and trajectories tables do not exist yet: run `trajectory derive` first"
                .into(),
        )
    };
    let trajectories = store
        .derived_lineage("trajectories")
        .await?
        .ok_or_else(missing)?;
    let turns = store.derived_lineage("turns").await?.ok_or_else(missing)?;
    let version = trajectories.events_version;
    let wanted = |events_version: u64| DerivedLineage {
        events_version,
        job: SIGNATURES_TABLE.into(),
        job_version: SIGNATURES_JOB_VERSION.into(),
        params: lineage_params(
            params,
            &grams,
            &turns.job_version,
            &trajectories.job_version,
        ),
    };
    let built = store.derived_lineage(SIGNATURES_TABLE).await?;
    if !full && built.as_ref() == Some(&wanted(version)) {
        return Ok(SignaturesSummary {
            events_version: version,
            up_to_date: true,
            scope: None,
            computed: 0,
            table_version: None,
        });
    }
    let mut touched = None;
    if let Some(built) = built.filter(|b| !full && *b == wanted(b.events_version)) {
        touched = store
            .sessions_touched_since(built.events_version, version)
            .await?
            .map(|sessions| (built.events_version, sessions));
    }

    let hasher = Arc::new(MinHasher::new(params.clone()));
    let mut running = Vec::new();
    for stream in session_streams(store, touched.as_ref().map(|(_, s)| s), memory).await? {
        let writer = store
            .derived_writer(SIGNATURES_TABLE, signatures_schema())
            .await?;
        let fold = SignatureFold {
            hasher: Arc::clone(&hasher),
            rows: params.rows,
            shingle_words: params.shingle_words,
            grams: Arc::clone(&grams),
            texts: SessionTexts::default(),
            out: SignatureRows::default(),
        };
        running.push(tokio::spawn(fold.run(stream, writer)));
    }
    let mut writers = Vec::new();
    for task in running {
        writers.push(
            task.await.map_err(|e| {
                DeriveError::Column(format!("a signature partition stopped: {e}"))
            })??,
        );
    }
    let computed = writers.iter().map(DerivedTableWriter::rows).sum();
    let (replace, scope) = match touched {
        Some((since, sessions)) => (
            DerivedReplace::Sessions(sessions),
            DeriveScope::Incremental {
                since_version: since,
            },
        ),
        None => (DerivedReplace::All, DeriveScope::Full),
    };
    let done = store
        .commit_derived(writers, replace, &wanted(version))
        .await?;
    Ok(SignaturesSummary {
        events_version: version,
        up_to_date: false,
        scope: Some(scope),
        computed,
        table_version: Some(done.version),
    })
}

/// The partitions of the plan over [`input_sql`] (every session, or
/// `sessions` only, read with filter pushdown), each sorted by session and
/// running in its share of `memory`.
///
/// Errors: query errors.
async fn session_streams(
    store: &EventStore,
    sessions: Option<&HashSet<String>>,
    memory: usize,
) -> Result<Vec<SendableRecordBatchStream>, DeriveError> {
    let engine = QueryEngine::open_with(
        store,
        None,
        EngineOptions {
            memory_limit: Some(memory),
            pushdown_filters: sessions.is_some(),
            batch_size: Some(DERIVE_BATCH_ROWS),
            keep_join_order: false,
            target_partitions: None,
        },
    )
    .await?;
    let input = engine
        .frame(&input_sql(sessions))
        .await?
        .create_physical_plan()
        .await
        .map_err(QueryError::from)?;
    let task = engine.task_ctx();
    let plan = sorted_by_session(input, task.session_config().target_partitions())?;
    partition_streams(&plan, &task, memory)
}

/// Turns (`part` 0) and trajectories (`part` 1) of every session, or of
/// `sessions` only, in one row shape.
fn input_sql(sessions: Option<&HashSet<String>>) -> String {
    let only = sessions
        .map(|ids| format!(" WHERE {}", sessions_predicate(ids)))
        .unwrap_or_default();
    format!(
        "SELECT session_id, 0 AS part, turn_id AS id, prompt, responses, \
                CAST(NULL AS VARCHAR) AS turn_ids, NULL AS event_ids, NULL AS ended_at \
         FROM turns{only} \
         UNION ALL \
         SELECT session_id, 1 AS part, trajectory_id AS id, NULL AS prompt, NULL AS responses, \
                array_to_string(turn_ids, ' ') AS turn_ids, event_ids, ended_at \
         FROM trajectories{only}"
    )
}

/// `input` hash-partitioned by `session_id` into `partitions` and sorted by
/// (`session_id`, `part`, `id`) within each.
fn sorted_by_session(
    input: Arc<dyn ExecutionPlan>,
    partitions: usize,
) -> Result<Arc<dyn ExecutionPlan>, DeriveError> {
    let schema = input.schema();
    let df = |e| DeriveError::Query(QueryError::from(e));
    let repartitioned = Arc::new(
        RepartitionExec::try_new(
            input,
            Partitioning::Hash(
                vec![col("session_id", &schema).map_err(df)?],
                partitions.max(1),
            ),
        )
        .map_err(df)?,
    );
    let options = SortOptions {
        descending: false,
        nulls_first: false,
    };
    let exprs = ["session_id", "part", "id"]
        .iter()
        .map(|name| Ok(PhysicalSortExpr::new(col(name, &schema)?, options)))
        .collect::<datafusion::common::Result<Vec<_>>>()
        .map_err(df)?;
    let ordering = LexOrdering::new(exprs)
        .ok_or_else(|| DeriveError::Column("empty signature input ordering".into()))?;
    Ok(Arc::new(
        SortExec::new(ordering, repartitioned).with_preserve_partitioning(true),
    ))
}

/// Output rows being gathered for the next batch.
#[derive(Default)]
struct SignatureRows {
    trajectory_id: Vec<String>,
    session_id: Vec<Option<String>>,
    event_ids: Vec<ArrayRef>,
    ended_at: Vec<ArrayRef>,
    exact_hash: Vec<String>,
    shingles: Vec<i64>,
    signature: Vec<Vec<u64>>,
    band_keys: Vec<Vec<u64>>,
    contaminated_by: Vec<Option<String>>,
    contamination_ngram: Vec<Option<String>>,
}

impl SignatureRows {
    fn len(&self) -> usize {
        self.trajectory_id.len()
    }

    /// The gathered rows as a batch of [`signatures_schema`]; empties self.
    fn take_batch(&mut self) -> Result<RecordBatch, DeriveError> {
        let rows = std::mem::take(self);
        let u64_lists = |lists: &[Vec<u64>]| -> ArrayRef {
            let mut builder = ListBuilder::new(Int64Builder::new())
                .with_field(Arc::new(Field::new("item", DataType::Int64, true)));
            for list in lists {
                // Delta has no unsigned integers: the same 64 bits as int64.
                for value in list {
                    builder.values().append_value(*value as i64);
                }
                builder.append(true);
            }
            Arc::new(builder.finish())
        };
        let concat = |parts: &[ArrayRef]| -> Result<ArrayRef, DeriveError> {
            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            Ok(arrow::compute::concat(&refs)?)
        };
        let schema = signatures_schema();
        let event_ids = arrow::compute::cast(
            &concat(&rows.event_ids)?,
            schema.field_with_name("event_ids")?.data_type(),
        )?;
        let ended_at = arrow::compute::cast(&concat(&rows.ended_at)?, &timestamp_type())?;
        Ok(RecordBatch::try_new(
            schema,
            vec![
                utf8(rows.trajectory_id.iter().map(|s| Some(s.as_str()))),
                utf8(rows.session_id.iter().map(Option::as_deref)),
                event_ids,
                ended_at,
                utf8(rows.exact_hash.iter().map(|s| Some(s.as_str()))),
                int64(rows.shingles.iter().map(|n| Some(*n))),
                u64_lists(&rows.signature),
                u64_lists(&rows.band_keys),
                utf8(rows.contaminated_by.iter().map(Option::as_deref)),
                utf8(rows.contamination_ngram.iter().map(Option::as_deref)),
            ],
        )?)
    }
}

/// A partition's sessions read back into trajectory texts: a session's
/// turns (`part` 0) are kept until its trajectories (`part` 1) have been
/// visited, then dropped.
#[derive(Default)]
struct SessionTexts {
    /// The session whose rows are being read (`Some(None)`: rows without one).
    session: Option<Option<String>>,
    turn_text: HashMap<String, String>,
}

impl SessionTexts {
    /// Reads one batch of the [`input_sql`] rows; calls `visit(row, session,
    /// trajectory id, words of the text)` for every trajectory.
    fn push(
        &mut self,
        batch: &RecordBatch,
        mut visit: impl FnMut(usize, Option<&str>, &str, Vec<String>) -> Result<(), DeriveError>,
    ) -> Result<(), DeriveError> {
        let strings = |name: &str| -> Result<StringArray, DeriveError> {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| DeriveError::Column(format!("missing column {name}")))?;
            Ok(arrow::compute::cast(column, &DataType::Utf8)?
                .as_string::<i32>()
                .clone())
        };
        let (sessions, ids, prompts, responses, turn_ids) = (
            strings("session_id")?,
            strings("id")?,
            strings("prompt")?,
            strings("responses")?,
            strings("turn_ids")?,
        );
        let parts = batch
            .column_by_name("part")
            .ok_or_else(|| DeriveError::Column("missing column part".into()))?;
        let parts = arrow::compute::cast(parts, &DataType::Int64)?;
        let parts = parts.as_primitive::<arrow::datatypes::Int64Type>();
        for row in 0..batch.num_rows() {
            let session = sessions.is_valid(row).then(|| sessions.value(row));
            if self.session.as_ref().map(|s| s.as_deref()) != Some(session) {
                self.session = Some(session.map(str::to_string));
                self.turn_text.clear();
            }
            if ids.is_null(row) {
                continue;
            }
            let id = ids.value(row);
            if parts.value(row) == 0 {
                let prompt = prompts.is_valid(row).then(|| prompts.value(row));
                let response = if responses.is_valid(row) {
                    response_text(responses.value(row))
                } else {
                    String::new()
                };
                self.turn_text.insert(
                    id.to_string(),
                    format!("{}\n{}", prompt.unwrap_or_default(), response),
                );
                continue;
            }
            let text = if turn_ids.is_valid(row) {
                turn_ids
                    .value(row)
                    .split(' ')
                    .filter_map(|t| self.turn_text.get(t).map(String::as_str))
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                String::new()
            };
            visit(row, session, id, words(&text))?;
        }
        Ok(())
    }
}

/// One partition's fold: each trajectory's signature row.
struct SignatureFold {
    hasher: Arc<MinHasher>,
    rows: usize,
    shingle_words: usize,
    grams: Arc<EvalGrams>,
    texts: SessionTexts,
    out: SignatureRows,
}

impl SignatureFold {
    async fn run(
        mut self,
        mut stream: SendableRecordBatchStream,
        mut writer: DerivedTableWriter,
    ) -> Result<DerivedTableWriter, DeriveError> {
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(QueryError::from)?;
            self.push(&batch)?;
            if self.out.len() >= OUTPUT_ROWS {
                writer.write(self.out.take_batch()?).await?;
            }
        }
        if self.out.len() > 0 {
            writer.write(self.out.take_batch()?).await?;
        }
        Ok(writer)
    }

    fn push(&mut self, batch: &RecordBatch) -> Result<(), DeriveError> {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| DeriveError::Column(format!("missing column {name}")))
        };
        let (event_ids, ended_at) = (column("event_ids")?, column("ended_at")?);
        let SignatureFold {
            hasher,
            rows,
            shingle_words,
            grams,
            texts,
            out,
        } = self;
        texts.push(batch, |row, session, id, words| {
            let normalised = words.join(" ");
            let shingle_set = shingles(&normalised, *shingle_words);
            let signature = hasher.signature(&shingle_set);
            let (ngram, file) = grams.first_match(&words).unzip();
            out.trajectory_id.push(id.to_string());
            out.session_id.push(session.map(str::to_string));
            out.event_ids.push(event_ids.slice(row, 1));
            out.ended_at.push(ended_at.slice(row, 1));
            out.exact_hash
                .push(blake3::hash(normalised.as_bytes()).to_hex().to_string());
            out.shingles.push(shingle_set.len() as i64);
            out.band_keys.push(band_keys(&signature, *rows));
            out.signature.push(signature);
            out.contaminated_by.push(file);
            out.contamination_ngram.push(ngram);
            Ok(())
        })
    }
}

/// The shingle sets of the texts whose exact hash is in `wanted`, read back
/// from the sessions in `sessions` (each text once): what
/// [`crate::dedupe`] needs to confirm candidate pairs on their exact
/// Jaccard. Memory: those sets (8 bytes per distinct shingle) and the
/// plan's pool.
///
/// Errors: query and Arrow errors.
pub(crate) async fn shingle_sets(
    store: &EventStore,
    shingle_words: usize,
    wanted: Arc<HashSet<String>>,
    sessions: &HashSet<String>,
    memory: usize,
) -> Result<HashMap<String, Vec<u64>>, DeriveError> {
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let mut running = Vec::new();
    for mut stream in session_streams(store, Some(sessions), memory).await? {
        let wanted = Arc::clone(&wanted);
        running.push(tokio::spawn(async move {
            let mut texts = SessionTexts::default();
            let mut found: HashMap<String, Vec<u64>> = HashMap::new();
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(QueryError::from)?;
                texts.push(&batch, |_, _, _, words| {
                    let normalised = words.join(" ");
                    let hash = blake3::hash(normalised.as_bytes()).to_hex().to_string();
                    if wanted.contains(&hash) && !found.contains_key(&hash) {
                        found.insert(hash, shingles(&normalised, shingle_words));
                    }
                    Ok(())
                })?;
            }
            Ok::<_, DeriveError>(found)
        }));
    }
    for task in running {
        found.extend(
            task.await
                .map_err(|e| DeriveError::Column(format!("a shingle partition stopped: {e}")))??,
        );
    }
    Ok(found)
}
