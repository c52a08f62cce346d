//! The `dedupe_clusters` table: exact and near-duplicate trajectories, which
//! one of each cluster to keep, and decontamination against eval sets.
//!
//! Unit: a trajectory (`trajectories` table), its text being each turn's
//! prompt and responses in order. Steps:
//! 1. **Exact**: blake3 of the normalised text (lower-cased words joined by
//!    single spaces; punctuation and whitespace differences vanish).
//! 2. **Near**: MinHash LSH over 5-word shingles ([`crate::minhash`]),
//!    candidate pairs confirmed by exact Jaccard ≥ threshold; clusters are
//!    the connected components of exact and near pairs.
//! 3. **Keep policy**: in each cluster keep the member with the highest
//!    combined trajectory reward (`rewards`, `level = 'combined'`,
//!    `subject_kind = 'trajectory'`), then the newest (`ended_at`), then the
//!    smallest id.
//! 4. **Decontamination**: a trajectory sharing any word 13-gram with a
//!    user-given eval file is marked `contaminated_by` (file and the first
//!    matching 13-gram) and not kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use serde::Serialize;
use serde_json::{json, Map, Value};
use trajectory_query::{AsOf, QueryEngine};
use trajectory_store::{DerivedLineage, EventStore};

use crate::columns::{
    boolean, event_ids_field, float64, stable_id, string_lists, timestamp_type, timestamps, utf8,
    Columns,
};
use crate::minhash::{jaccard, shingles, words, Components, MinHashParams, MinHasher};
use crate::DeriveError;

/// Version of the dedupe method (bump when output for the same input changes).
pub const DEDUPE_JOB_VERSION: &str = "dedupe-v1";

/// Word n-gram length for decontamination (the GPT-3 / Llama practice).
pub const CONTAMINATION_NGRAM: usize = 13;

/// What [`dedupe`] runs with.
#[derive(Debug, Clone, Default)]
pub struct DedupeOptions {
    pub as_of: Option<AsOf>,
    pub minhash: MinHashParams,
    /// Eval files (JSONL: every string value; otherwise every line).
    pub eval_files: Vec<PathBuf>,
}

/// One trajectory removed by decontamination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contamination {
    pub trajectory_id: String,
    pub eval_file: String,
    /// The first shared 13-gram.
    pub ngram: String,
}

/// What [`dedupe`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DedupeSummary {
    pub events_version: u64,
    pub trajectories: usize,
    pub clusters: usize,
    pub exact_duplicates: usize,
    pub near_duplicates: usize,
    pub kept: usize,
    pub contaminated: Vec<Contamination>,
    pub table_version: Option<u64>,
}

struct Document {
    trajectory_id: String,
    session_id: Option<String>,
    event_ids: Vec<String>,
    ended_at: Option<i64>,
    reward: Option<f64>,
    text: String,
}

/// Builds `dedupe_clusters` from the `turns`, `trajectories` and `rewards`
/// tables (run `trajectory derive` first).
///
/// Errors: [`DeriveError::InvalidOption`] without derived tables or with bad
/// parameters; query and store errors; an unreadable eval file.
pub async fn dedupe(
    store: &EventStore,
    options: &DedupeOptions,
) -> Result<DedupeSummary, DeriveError> {
    let p = &options.minhash;
    if p.bands == 0 || p.rows == 0 || p.shingle_words == 0 || !(0.0..=1.0).contains(&p.threshold) {
        return Err(DeriveError::InvalidOption(
            "bands, rows and shingle size must be ≥ 1 and the threshold in [0, 1]".into(),
        ));
    }
    let engine = QueryEngine::open(store, options.as_of.as_ref()).await?;
    for table in ["turns", "trajectories", "rewards"] {
        if store.derived_table(table).await?.is_none() {
            return Err(DeriveError::InvalidOption(format!(
                "the {table} table does not exist yet: run `trajectory derive` first"
            )));
        }
    }
    let documents = load_documents(&engine).await?;
    let contamination = contaminated(&documents, &options.eval_files)?;

    let mut components = Components::new(documents.len());
    let mut exact_of: HashMap<String, usize> = HashMap::new();
    let mut is_exact = vec![false; documents.len()];
    let normalised: Vec<String> = documents.iter().map(|d| words(&d.text).join(" ")).collect();
    for (i, text) in normalised.iter().enumerate() {
        let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
        if let Some(&first) = exact_of.get(&hash) {
            components.union(first, i);
            is_exact[i] = true;
            is_exact[first] = true;
        } else {
            exact_of.insert(hash, i);
        }
    }
    let shingle_sets: Vec<Vec<u64>> = normalised
        .iter()
        .map(|t| shingles(t, p.shingle_words))
        .collect();
    let hasher = MinHasher::new(p.clone());
    let pairs = hasher.near_duplicate_pairs(&shingle_sets);
    for (i, j, _) in &pairs {
        components.union(*i, *j);
    }

    let mut clusters: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..documents.len() {
        clusters.entry(components.find(i)).or_default().push(i);
    }
    let contaminated_ids: HashMap<&str, &Contamination> = contamination
        .iter()
        .map(|c| (c.trajectory_id.as_str(), c))
        .collect();
    let mut kept = vec![false; documents.len()];
    let mut cluster_of = vec![String::new(); documents.len()];
    let mut keeper_of = vec![0usize; documents.len()];
    for members in clusters.values() {
        let mut ids: Vec<&str> = members
            .iter()
            .map(|&m| documents[m].trajectory_id.as_str())
            .collect();
        ids.sort_unstable();
        let cluster_id = stable_id(&ids);
        let eligible = members
            .iter()
            .copied()
            .filter(|&m| !contaminated_ids.contains_key(documents[m].trajectory_id.as_str()));
        let keeper = eligible.max_by(|&a, &b| {
            let (da, db) = (&documents[a], &documents[b]);
            da.reward
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&db.reward.unwrap_or(f64::NEG_INFINITY))
                .then(da.ended_at.cmp(&db.ended_at))
                .then(db.trajectory_id.cmp(&da.trajectory_id))
        });
        for &m in members {
            cluster_of[m] = cluster_id.clone();
            keeper_of[m] = keeper.unwrap_or(m);
        }
        if let Some(k) = keeper {
            kept[k] = true;
        }
    }

    let similarity_to_keeper: Vec<Option<f64>> = (0..documents.len())
        .map(|i| {
            let k = keeper_of[i];
            (k != i || !kept[i]).then(|| jaccard(&shingle_sets[i], &shingle_sets[k]))
        })
        .collect();
    let cluster_sizes: HashMap<&str, usize> = clusters
        .values()
        .map(|m| (cluster_of[m[0]].as_str(), m.len()))
        .collect();
    let schema = dedupe_schema();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            utf8(cluster_of.iter().map(|c| Some(c.as_str()))),
            utf8(documents.iter().map(|d| Some(d.trajectory_id.as_str()))),
            utf8(documents.iter().map(|d| d.session_id.as_deref())),
            string_lists(
                documents
                    .iter()
                    .map(|d| d.event_ids.iter().map(String::as_str)),
            ),
            crate::columns::int64(
                cluster_of
                    .iter()
                    .map(|c| Some(cluster_sizes[c.as_str()] as i64)),
            ),
            boolean(is_exact.iter().map(|b| Some(*b))),
            float64(similarity_to_keeper.iter().copied()),
            utf8(
                keeper_of
                    .iter()
                    .map(|&k| Some(documents[k].trajectory_id.as_str())),
            ),
            boolean(kept.iter().map(|b| Some(*b))),
            float64(documents.iter().map(|d| d.reward)),
            timestamps(documents.iter().map(|d| d.ended_at)),
            utf8(documents.iter().map(|d| {
                contaminated_ids
                    .get(d.trajectory_id.as_str())
                    .map(|c| c.eval_file.as_str())
            })),
            utf8(documents.iter().map(|d| {
                contaminated_ids
                    .get(d.trajectory_id.as_str())
                    .map(|c| c.ngram.as_str())
            })),
        ],
    )?;
    let events_version = engine.events_version();
    let mut params = Map::new();
    params.insert("shingle_words".into(), json!(p.shingle_words));
    params.insert("bands".into(), json!(p.bands));
    params.insert("rows".into(), json!(p.rows));
    params.insert("threshold".into(), json!(p.threshold));
    params.insert("seed".into(), json!(p.seed));
    params.insert(
        "eval_files".into(),
        Value::from(
            options
                .eval_files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>(),
        ),
    );
    let lineage = DerivedLineage {
        events_version,
        job: "dedupe_clusters".into(),
        job_version: DEDUPE_JOB_VERSION.into(),
        params,
    };
    let version = store
        .replace_derived_table("dedupe_clusters", schema, vec![batch], &lineage)
        .await?;
    let near: HashSet<usize> = pairs.iter().flat_map(|(i, j, _)| [*i, *j]).collect();
    Ok(DedupeSummary {
        events_version,
        trajectories: documents.len(),
        clusters: clusters.len(),
        exact_duplicates: documents.len() - exact_of.len(),
        near_duplicates: near.iter().filter(|&&i| !is_exact[i]).count(),
        kept: kept.iter().filter(|k| **k).count(),
        contaminated: contamination,
        table_version: Some(version),
    })
}

/// The `dedupe_clusters` schema (documented in docs/datasets.md).
pub fn dedupe_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("cluster_id", DataType::Utf8, false),
        Field::new("trajectory_id", DataType::Utf8, false),
        Field::new("session_id", DataType::Utf8, true),
        event_ids_field(),
        Field::new("cluster_size", DataType::Int64, false),
        Field::new("is_exact_duplicate", DataType::Boolean, false),
        Field::new("jaccard_to_kept", DataType::Float64, true),
        Field::new("kept_trajectory_id", DataType::Utf8, false),
        Field::new("kept", DataType::Boolean, false),
        Field::new("reward", DataType::Float64, true),
        Field::new("ended_at", timestamp_type(), true),
        Field::new("contaminated_by", DataType::Utf8, true),
        Field::new("contamination_ngram", DataType::Utf8, true),
    ]))
}

/// Trajectories with their text (prompt and responses of each turn, in
/// order) and combined reward.
async fn load_documents(engine: &QueryEngine) -> Result<Vec<Document>, DeriveError> {
    let mut turn_text: HashMap<String, String> = HashMap::new();
    for batch in engine
        .collect("SELECT turn_id, prompt, responses FROM turns")
        .await?
    {
        let c = Columns::new(&batch);
        let (ids, prompts, responses) = (
            c.strings("turn_id")?,
            c.strings("prompt")?,
            c.strings("responses")?,
        );
        for ((id, prompt), response) in ids.into_iter().zip(prompts).zip(responses) {
            let Some(id) = id else { continue };
            let response = response.map(|r| response_text(&r)).unwrap_or_default();
            turn_text.insert(id, format!("{}\n{}", prompt.unwrap_or_default(), response));
        }
    }
    let mut rewards: HashMap<String, f64> = HashMap::new();
    for batch in engine
        .collect(
            "SELECT subject_id, value FROM rewards \
             WHERE level = 'combined' AND subject_kind = 'trajectory'",
        )
        .await?
    {
        let c = Columns::new(&batch);
        for (id, value) in c.strings("subject_id")?.into_iter().zip(c.floats("value")?) {
            if let (Some(id), Some(value)) = (id, value) {
                rewards.insert(id, value);
            }
        }
    }
    let mut documents = Vec::new();
    for batch in engine
        .collect(
            "SELECT trajectory_id, session_id, turn_ids, event_ids, \
             CAST(ended_at AS BIGINT) AS ended_us FROM trajectories ORDER BY trajectory_id",
        )
        .await?
    {
        let c = Columns::new(&batch);
        let ids = c.strings("trajectory_id")?;
        let sessions = c.strings("session_id")?;
        let ended = c.ints("ended_us")?;
        let turn_ids = list_column(&batch, "turn_ids")?;
        let event_ids = list_column(&batch, "event_ids")?;
        for (row, id) in ids.into_iter().enumerate() {
            let Some(id) = id else { continue };
            let text = turn_ids[row]
                .iter()
                .filter_map(|t| turn_text.get(t).cloned())
                .collect::<Vec<_>>()
                .join("\n");
            documents.push(Document {
                reward: rewards.get(&id).copied(),
                trajectory_id: id,
                session_id: sessions[row].clone(),
                event_ids: event_ids[row].clone(),
                ended_at: ended[row],
                text,
            });
        }
    }
    Ok(documents)
}

/// The text of an OpenAI-style message array (JSON): every `content` string
/// and text part, and tool-call arguments.
fn response_text(json_text: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(json_text) else {
        return json_text.to_string();
    };
    let mut out = Vec::new();
    collect_strings(&value, &mut out);
    out.join("\n")
}

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

fn list_column(batch: &RecordBatch, name: &str) -> Result<Vec<Vec<String>>, DeriveError> {
    use arrow::array::{Array, AsArray};
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| DeriveError::Column(format!("missing column {name}")))?;
    let lists = column
        .as_list_opt::<i32>()
        .ok_or_else(|| DeriveError::Column(format!("{name} is not a list")))?;
    let mut out = Vec::with_capacity(lists.len());
    for row in 0..lists.len() {
        if lists.is_null(row) {
            out.push(Vec::new());
            continue;
        }
        let values = arrow::compute::cast(&lists.value(row), &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        out.push(values.iter().flatten().map(str::to_string).collect());
    }
    Ok(out)
}

/// Texts of an eval file: every string value of each JSON line, else the line.
fn eval_texts(path: &Path) -> Result<Vec<String>, DeriveError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        DeriveError::InvalidOption(format!("cannot read eval file {}: {e}", path.display()))
    })?;
    let mut out = Vec::new();
    for line in text.lines() {
        match serde_json::from_str::<Value>(line) {
            Ok(value @ (Value::Object(_) | Value::Array(_))) => collect_strings(&value, &mut out),
            _ => out.push(line.to_string()),
        }
    }
    Ok(out)
}

/// Trajectories sharing a word 13-gram with any eval file.
fn contaminated(
    documents: &[Document],
    eval_files: &[PathBuf],
) -> Result<Vec<Contamination>, DeriveError> {
    let mut grams: HashMap<String, String> = HashMap::new();
    for file in eval_files {
        for text in eval_texts(file)? {
            let w = words(&text);
            for gram in w.windows(CONTAMINATION_NGRAM) {
                grams
                    .entry(gram.join(" "))
                    .or_insert_with(|| file.display().to_string());
            }
        }
    }
    if grams.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for document in documents {
        let w = words(&document.text);
        if let Some((gram, file)) = w.windows(CONTAMINATION_NGRAM).find_map(|g| {
            let key = g.join(" ");
            grams.get(&key).map(|f| (key, f.clone()))
        }) {
            out.push(Contamination {
                trajectory_id: document.trajectory_id.clone(),
                eval_file: file,
                ngram: gram,
            });
        }
    }
    Ok(out)
}
