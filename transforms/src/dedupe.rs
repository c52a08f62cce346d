//! The `dedupe_clusters` table: exact and near-duplicate trajectories, which
//! one of each cluster to keep, and decontamination against eval sets.
//!
//! Unit: a trajectory (`trajectories` table), its text being each turn's
//! prompt and responses in order. A DataFusion job in four steps, none of
//! which holds the log or the documents' text:
//! 1. **Signatures** ([`crate::dedupe_signatures`], a plan session by
//!    session, incremental): per trajectory the blake3 of its normalised text
//!    (lower-cased words joined by single spaces), its MinHash signature over
//!    5-word shingles ([`crate::minhash`]) and its LSH band keys, and the
//!    first word 13-gram it shares with a user-given eval file.
//! 2. **Grouping** (SQL over the signatures): trajectories with the same
//!    exact hash are exact duplicates; distinct texts sharing a band key
//!    (`unnest(band_keys)`, `GROUP BY band_key`) are candidate pairs.
//! 3. **Confirmation** (in parallel over the buckets): a candidate pair is a
//!    near-duplicate when the exact Jaccard of the two shingle sets reaches
//!    the threshold. The shingle sets of the candidate texts only are read
//!    back, by the same plan restricted to one session holding each.
//!    Clusters are the connected components of exact and near pairs.
//! 4. **Resolution**: in each cluster keep the member with the highest
//!    combined trajectory reward (`rewards`, `level = 'combined'`,
//!    `subject_kind = 'trajectory'`), then the newest (`ended_at`), then the
//!    smallest id; a contaminated trajectory is never kept. The table is
//!    written streaming from a scan of the signatures joined with rewards.
//!
//! Memory: the plans are bounded like derive's; the later steps hold the
//! ids and shingle sets (8 bytes per distinct shingle) of the texts that
//! have a candidate, never the other texts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Map, Value};
use trajectory_query::{AsOf, EngineOptions, QueryEngine, QueryError};
use trajectory_store::{DerivedLineage, DerivedReplace, EventStore};

use crate::columns::{boolean, event_ids_field, float64, int64, stable_id, timestamp_type, utf8};
use crate::dedupe_signatures::{
    shingle_sets, update_signatures, EvalGrams, SignaturesSummary, SIGNATURES_TABLE,
};
use crate::minhash::{jaccard, Components, MinHashParams};
use crate::DeriveError;

pub use crate::dedupe_signatures::CONTAMINATION_NGRAM;

/// Version of the dedupe method (bump when output for the same input changes).
pub const DEDUPE_JOB_VERSION: &str = "dedupe-v1";

/// Memory of the signature plan's sort and of the grouping queries when the
/// options set none: 256 MiB (they spill past it).
pub const DEFAULT_DEDUPE_MEMORY_BYTES: usize = 256 * 1024 * 1024;

/// What [`dedupe`] runs with.
#[derive(Debug, Clone, Default)]
pub struct DedupeOptions {
    pub as_of: Option<AsOf>,
    pub minhash: MinHashParams,
    /// Eval files (JSONL: every string value; otherwise every line).
    pub eval_files: Vec<PathBuf>,
    /// Compute every signature again, even those that are up to date.
    pub full: bool,
    /// Bytes the plans may hold before they spill;
    /// [`DEFAULT_DEDUPE_MEMORY_BYTES`] when `None`.
    pub memory_limit: Option<usize>,
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
    /// Trajectories whose text another trajectory has too, less one per text.
    pub exact_duplicates: usize,
    /// Trajectories in a cluster of two or more that are not exact duplicates.
    pub near_duplicates: usize,
    pub kept: usize,
    /// Candidate pairs compared (distinct texts sharing a band key).
    pub candidate_pairs: usize,
    pub contaminated: Vec<Contamination>,
    pub table_version: Option<u64>,
    /// How the `dedupe_signatures` table was brought up to date.
    pub signatures: SignaturesSummary,
}

/// Builds `dedupe_clusters` from the `turns`, `trajectories` and `rewards`
/// tables (run `trajectory derive` first), through `dedupe_signatures`.
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
    for table in ["turns", "trajectories", "rewards"] {
        if store.derived_table(table).await?.is_none() {
            return Err(DeriveError::InvalidOption(format!(
                "the {table} table does not exist yet: run `trajectory derive` first"
            )));
        }
    }
    let memory = options.memory_limit.unwrap_or(DEFAULT_DEDUPE_MEMORY_BYTES);
    let grams = Arc::new(EvalGrams::read(&options.eval_files)?);
    let signatures = update_signatures(store, p, grams, options.full, memory).await?;
    let engine = QueryEngine::open_with(
        store,
        options.as_of.as_ref(),
        EngineOptions {
            memory_limit: Some(memory),
            pushdown_filters: false,
            batch_size: None,
            keep_join_order: true,
            target_partitions: None,
        },
    )
    .await?;

    let mut texts = Texts::default();
    exact_groups(&engine, &mut texts).await?;
    let buckets = candidate_buckets(&engine, &mut texts).await?;
    let shingles_of = candidate_shingles(store, &engine, &texts, p.shingle_words, memory).await?;
    let (edges, candidate_pairs) = confirm(&buckets, &shingles_of, p.threshold, texts.len());
    let mut components = Components::new(texts.len());
    for (a, b) in edges {
        components.union(a, b);
    }
    let (clusters, multi) =
        resolve_clusters(&engine, &mut texts, &mut components, &shingles_of).await?;
    let written = write_clusters(store, &engine, &clusters, options).await?;
    Ok(DedupeSummary {
        events_version: engine.events_version(),
        trajectories: written.rows,
        clusters: written.rows - clusters.len() + multi,
        exact_duplicates: texts.exact_duplicates,
        near_duplicates: clusters.values().filter(|a| !a.is_exact).count(),
        kept: written.kept,
        candidate_pairs,
        contaminated: written.contaminated,
        table_version: Some(written.version),
        signatures,
    })
}

/// Distinct texts (exact hashes) that have a duplicate or a candidate,
/// numbered for the union-find.
#[derive(Default)]
struct Texts {
    index: HashMap<String, usize>,
    /// Trajectories holding each text (1 unless it has exact duplicates).
    trajectories: Vec<usize>,
    /// Whether the text is in some LSH bucket of two or more texts.
    in_bucket: Vec<bool>,
    exact_duplicates: usize,
}

impl Texts {
    fn intern(&mut self, hash: &str) -> usize {
        if let Some(&i) = self.index.get(hash) {
            return i;
        }
        self.index.insert(hash.to_string(), self.trajectories.len());
        self.trajectories.push(1);
        self.in_bucket.push(false);
        self.trajectories.len() - 1
    }

    fn len(&self) -> usize {
        self.trajectories.len()
    }
}

/// Runs `sql` and hands each batch of its result to `visit`, one at a time.
async fn for_each_batch(
    engine: &QueryEngine,
    sql: &str,
    mut visit: impl FnMut(&RecordBatch) -> Result<(), DeriveError>,
) -> Result<(), DeriveError> {
    let mut stream = engine.stream(sql).await?;
    while let Some(batch) = stream.next().await {
        visit(&batch.map_err(QueryError::from)?)?;
    }
    Ok(())
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, DeriveError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| DeriveError::Column(format!("missing column {name}")))
}

fn strings(batch: &RecordBatch, name: &str) -> Result<StringArray, DeriveError> {
    Ok(arrow::compute::cast(column(batch, name)?, &DataType::Utf8)?
        .as_string::<i32>()
        .clone())
}

/// Step 2a: texts held by two or more trajectories.
async fn exact_groups(engine: &QueryEngine, texts: &mut Texts) -> Result<(), DeriveError> {
    for_each_batch(
        engine,
        &format!(
            "SELECT exact_hash, count(*) AS n FROM {SIGNATURES_TABLE} \
             GROUP BY exact_hash HAVING count(*) > 1"
        ),
        |batch| {
            let hashes = strings(batch, "exact_hash")?;
            let counts = arrow::compute::cast(column(batch, "n")?, &DataType::Int64)?;
            let counts = counts.as_primitive::<Int64Type>();
            for (hash, n) in hashes.iter().zip(counts.iter()) {
                if let (Some(hash), Some(n)) = (hash, n) {
                    let i = texts.intern(hash);
                    texts.trajectories[i] = n as usize;
                    texts.exact_duplicates += n as usize - 1;
                }
            }
            Ok(())
        },
    )
    .await
}

/// Step 2b: LSH buckets of two or more distinct non-empty texts (each
/// bucket's texts sorted; identical buckets of different bands once).
async fn candidate_buckets(
    engine: &QueryEngine,
    texts: &mut Texts,
) -> Result<Vec<Vec<usize>>, DeriveError> {
    let mut buckets = Vec::new();
    for_each_batch(
        engine,
        &format!(
            "SELECT band_key, array_agg(DISTINCT exact_hash) AS texts \
             FROM (SELECT exact_hash, unnest(band_keys) AS band_key \
                   FROM {SIGNATURES_TABLE} WHERE shingles > 0) \
             GROUP BY band_key HAVING count(DISTINCT exact_hash) > 1"
        ),
        |batch| {
            let lists = column(batch, "texts")?.as_list::<i32>();
            for row in 0..lists.len() {
                let values = arrow::compute::cast(&lists.value(row), &DataType::Utf8)?;
                let mut bucket: Vec<usize> = values
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(|hash| texts.intern(hash))
                    .collect();
                bucket.sort_unstable();
                bucket.dedup();
                for &t in &bucket {
                    texts.in_bucket[t] = true;
                }
                buckets.push(bucket);
            }
            Ok(())
        },
    )
    .await?;
    buckets.sort_unstable();
    buckets.dedup();
    Ok(buckets)
}

/// The shingle set of every text in a bucket, read back from one session
/// holding it ([`shingle_sets`]).
async fn candidate_shingles(
    store: &EventStore,
    engine: &QueryEngine,
    texts: &Texts,
    shingle_words: usize,
    memory: usize,
) -> Result<HashMap<usize, Vec<u64>>, DeriveError> {
    let wanted: HashSet<String> = texts
        .index
        .iter()
        .filter(|(_, &t)| texts.in_bucket[t])
        .map(|(hash, _)| hash.clone())
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sessions: HashMap<String, String> = HashMap::new();
    for_each_batch(
        engine,
        &format!("SELECT exact_hash, session_id FROM {SIGNATURES_TABLE} WHERE shingles > 0"),
        |batch| {
            let (hashes, ids) = (strings(batch, "exact_hash")?, strings(batch, "session_id")?);
            for row in 0..batch.num_rows() {
                if hashes.is_null(row) || ids.is_null(row) {
                    continue;
                }
                let hash = hashes.value(row);
                if wanted.contains(hash) && !sessions.contains_key(hash) {
                    sessions.insert(hash.to_string(), ids.value(row).to_string());
                }
            }
            Ok(())
        },
    )
    .await?;
    let sessions: HashSet<String> = sessions.into_values().collect();
    let sets = shingle_sets(store, shingle_words, Arc::new(wanted), &sessions, memory).await?;
    Ok(sets
        .into_iter()
        .filter_map(|(hash, set)| texts.index.get(&hash).map(|&t| (t, set)))
        .collect())
}

/// Step 3: the candidate pairs of every bucket compared on all cores. Each
/// worker skips pairs its own confirmed pairs already connect, and returns
/// only the pairs that joined two of its components: the union of every
/// worker's pairs has the components of all confirmed pairs. Also returns
/// how many pairs were compared.
fn confirm(
    buckets: &[Vec<usize>],
    shingles: &HashMap<usize, Vec<u64>>,
    threshold: f64,
    texts: usize,
) -> (Vec<(usize, usize)>, usize) {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(buckets.len().max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    let mut local = Components::new(texts);
                    let mut edges = Vec::new();
                    let mut compared = 0;
                    for bucket in buckets.iter().skip(w).step_by(workers) {
                        for (n, &a) in bucket.iter().enumerate() {
                            for &b in &bucket[n + 1..] {
                                if local.find(a) == local.find(b) {
                                    continue;
                                }
                                let (Some(sa), Some(sb)) = (shingles.get(&a), shingles.get(&b))
                                else {
                                    continue;
                                };
                                compared += 1;
                                if jaccard(sa, sb) >= threshold {
                                    local.union(a, b);
                                    edges.push((a, b));
                                }
                            }
                        }
                    }
                    (edges, compared)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut compared = 0;
        for handle in handles {
            let (edges, n) = handle.join().unwrap_or_default();
            all.extend(edges);
            compared += n;
        }
        (all, compared)
    })
}

/// Where one trajectory of a cluster of two or more went.
struct Assignment {
    cluster_id: Arc<str>,
    size: usize,
    is_exact: bool,
    jaccard_to_kept: Option<f64>,
    kept_trajectory_id: Arc<str>,
    kept: bool,
}

/// A member of a cluster, as the keep policy sees it.
struct Member {
    trajectory_id: String,
    text: usize,
    ended_at: Option<i64>,
    reward: Option<f64>,
    contaminated: bool,
}

/// The combined trajectory reward of each trajectory (one row per id): the
/// build side of the joins (`r RIGHT JOIN dedupe_signatures s`), which a
/// hash join holds whole.
const TRAJECTORY_REWARDS: &str = "(SELECT subject_id, max(value) AS value FROM rewards \
     WHERE level = 'combined' AND subject_kind = 'trajectory' GROUP BY subject_id)";

/// Step 4: the members of every cluster of two or more, their keeper and
/// their similarity to it. Returns the assignments by trajectory id and the
/// number of such clusters.
async fn resolve_clusters(
    engine: &QueryEngine,
    texts: &mut Texts,
    components: &mut Components,
    shingles: &HashMap<usize, Vec<u64>>,
) -> Result<(HashMap<String, Assignment>, usize), DeriveError> {
    let mut weight = vec![0usize; texts.len()];
    for t in 0..texts.len() {
        weight[components.find(t)] += texts.trajectories[t];
    }
    let mut root_of: HashMap<usize, usize> = HashMap::new();
    for t in 0..texts.len() {
        let root = components.find(t);
        if weight[root] > 1 {
            root_of.insert(t, root);
        }
    }
    let mut clusters: BTreeMap<usize, Vec<Member>> = BTreeMap::new();
    if !root_of.is_empty() {
        for_each_batch(
            engine,
            &format!(
                "SELECT s.trajectory_id, s.exact_hash, CAST(s.ended_at AS BIGINT) AS ended_us, \
                        s.contaminated_by IS NOT NULL AS contaminated, r.value AS reward \
                 FROM {TRAJECTORY_REWARDS} r RIGHT JOIN {SIGNATURES_TABLE} s \
                   ON r.subject_id = s.trajectory_id"
            ),
            |batch| {
                let (ids, hashes) = (
                    strings(batch, "trajectory_id")?,
                    strings(batch, "exact_hash")?,
                );
                let ended = arrow::compute::cast(column(batch, "ended_us")?, &DataType::Int64)?;
                let ended = ended.as_primitive::<Int64Type>();
                let reward = arrow::compute::cast(column(batch, "reward")?, &DataType::Float64)?;
                let reward = reward.as_primitive::<Float64Type>();
                let contaminated = column(batch, "contaminated")?.as_boolean();
                for row in 0..batch.num_rows() {
                    if ids.is_null(row) || hashes.is_null(row) {
                        continue;
                    }
                    let Some(&text) = texts.index.get(hashes.value(row)) else {
                        continue;
                    };
                    let Some(&root) = root_of.get(&text) else {
                        continue;
                    };
                    clusters.entry(root).or_default().push(Member {
                        trajectory_id: ids.value(row).to_string(),
                        text,
                        ended_at: ended.is_valid(row).then(|| ended.value(row)),
                        reward: reward.is_valid(row).then(|| reward.value(row)),
                        contaminated: contaminated.is_valid(row) && contaminated.value(row),
                    });
                }
                Ok(())
            },
        )
        .await?;
    }
    let mut out = HashMap::new();
    let count = clusters.len();
    for members in clusters.into_values() {
        let mut ids: Vec<&str> = members.iter().map(|m| m.trajectory_id.as_str()).collect();
        ids.sort_unstable();
        let cluster_id: Arc<str> = stable_id(&ids).into();
        let keeper = members.iter().filter(|m| !m.contaminated).max_by(|a, b| {
            a.reward
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&b.reward.unwrap_or(f64::NEG_INFINITY))
                .then(a.ended_at.cmp(&b.ended_at))
                .then(b.trajectory_id.cmp(&a.trajectory_id))
        });
        let keeper_id: Option<Arc<str>> = keeper.map(|k| k.trajectory_id.as_str().into());
        let keeper_text = keeper.map(|k| k.text);
        for m in &members {
            let kept = keeper_id.as_deref() == Some(m.trajectory_id.as_str());
            let reference = keeper_text.unwrap_or(m.text);
            let jaccard_to_kept = (!kept).then(|| {
                if reference == m.text {
                    1.0
                } else {
                    match (shingles.get(&m.text), shingles.get(&reference)) {
                        (Some(a), Some(b)) => jaccard(a, b),
                        _ => 0.0,
                    }
                }
            });
            out.insert(
                m.trajectory_id.clone(),
                Assignment {
                    cluster_id: Arc::clone(&cluster_id),
                    size: members.len(),
                    is_exact: texts.trajectories[m.text] > 1,
                    jaccard_to_kept,
                    kept_trajectory_id: keeper_id
                        .clone()
                        .unwrap_or_else(|| m.trajectory_id.as_str().into()),
                    kept,
                },
            );
        }
    }
    Ok((out, count))
}

/// What [`write_clusters`] wrote.
struct Written {
    rows: usize,
    kept: usize,
    contaminated: Vec<Contamination>,
    version: u64,
}

/// Streams every signature row, joined with its reward, into
/// `dedupe_clusters`: a cluster of its own unless `clusters` places it.
async fn write_clusters(
    store: &EventStore,
    engine: &QueryEngine,
    clusters: &HashMap<String, Assignment>,
    options: &DedupeOptions,
) -> Result<Written, DeriveError> {
    let schema = dedupe_schema();
    let mut writer = store
        .derived_writer("dedupe_clusters", Arc::clone(&schema))
        .await?;
    let mut stream = engine
        .stream(&format!(
            "SELECT s.trajectory_id, s.session_id, s.event_ids, s.ended_at, \
                    s.contaminated_by, s.contamination_ngram, r.value AS reward \
             FROM {TRAJECTORY_REWARDS} r RIGHT JOIN {SIGNATURES_TABLE} s \
               ON r.subject_id = s.trajectory_id"
        ))
        .await?;
    let (mut rows, mut kept_count, mut contaminated) = (0, 0, Vec::new());
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(QueryError::from)?;
        let ids = strings(&batch, "trajectory_id")?;
        let by = strings(&batch, "contaminated_by")?;
        let ngram = strings(&batch, "contamination_ngram")?;
        let n = batch.num_rows();
        let (mut cluster_id, mut size, mut exact) = (Vec::with_capacity(n), Vec::new(), Vec::new());
        let (mut jaccard, mut keeper, mut kept) = (Vec::new(), Vec::new(), Vec::new());
        for row in 0..n {
            let id = ids.value(row);
            match clusters.get(id) {
                Some(a) => {
                    cluster_id.push(a.cluster_id.to_string());
                    size.push(Some(a.size as i64));
                    exact.push(Some(a.is_exact));
                    jaccard.push(a.jaccard_to_kept);
                    keeper.push(Some(a.kept_trajectory_id.to_string()));
                    kept.push(Some(a.kept));
                }
                None => {
                    // Alone: its own keeper unless contaminated.
                    let clean = by.is_null(row);
                    cluster_id.push(stable_id(&[id]));
                    size.push(Some(1));
                    exact.push(Some(false));
                    jaccard.push((!clean).then_some(1.0));
                    keeper.push(Some(id.to_string()));
                    kept.push(Some(clean));
                }
            }
            if by.is_valid(row) {
                contaminated.push(Contamination {
                    trajectory_id: id.to_string(),
                    eval_file: by.value(row).to_string(),
                    ngram: if ngram.is_valid(row) {
                        ngram.value(row)
                    } else {
                        ""
                    }
                    .to_string(),
                });
            }
        }
        kept_count += kept.iter().filter(|k| **k == Some(true)).count();
        rows += n;
        let cast = |name: &str, to: &DataType| -> Result<ArrayRef, DeriveError> {
            Ok(arrow::compute::cast(column(&batch, name)?, to)?)
        };
        let out = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                utf8(cluster_id.iter().map(|c| Some(c.as_str()))),
                Arc::new(ids.clone()),
                cast("session_id", &DataType::Utf8)?,
                cast(
                    "event_ids",
                    schema.field_with_name("event_ids")?.data_type(),
                )?,
                int64(size),
                boolean(exact),
                float64(jaccard),
                utf8(keeper.iter().map(Option::as_deref)),
                boolean(kept),
                cast("reward", &DataType::Float64)?,
                cast("ended_at", &timestamp_type())?,
                Arc::new(by.clone()),
                Arc::new(ngram.clone()),
            ],
        )?;
        writer.write(out).await?;
    }
    contaminated.sort_by(|a, b| a.trajectory_id.cmp(&b.trajectory_id));
    let p = &options.minhash;
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
        events_version: engine.events_version(),
        job: "dedupe_clusters".into(),
        job_version: DEDUPE_JOB_VERSION.into(),
        params,
    };
    let done = store
        .commit_derived(vec![writer], DerivedReplace::All, &lineage)
        .await?;
    Ok(Written {
        rows,
        kept: kept_count,
        contaminated,
        version: done.version,
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
