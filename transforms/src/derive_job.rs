//! The `derive` job: runs [`crate::session_plan`]'s plan over the log and
//! streams its rows into the derived tables, in full or for the sessions
//! touched since the last build.
//!
//! - **Full**: every session; each table's commit replaces all its rows.
//! - **Incremental**: when every table was built by the same job versions and
//!   parameters from an older `events` version whose later commits are still
//!   in the Delta log, only the sessions with events in the segments those
//!   commits added are derived again, and each table's commit replaces just
//!   those sessions' rows. The result equals a full build (tested).
//! - **GRPO credit** compares trajectories across sessions: its advantages
//!   are re-normalised here, over every trajectory sharing a prompt hash,
//!   after the plan ran. The combined rows wait in an Arrow IPC spill file
//!   meanwhile; the groups themselves are one small entry per trajectory.
//!   With GRPO credit, a derive is always full (a new session changes the
//!   advantages of every session sharing its prompt).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::cmp::{eq, neq};
use arrow::datatypes::Float64Type;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;
use serde::Serialize;
use trajectory_query::{EngineOptions, QueryEngine, QueryError};
use trajectory_store::{DerivedLineage, DerivedReplace, DerivedTableWriter, EventStore};

use crate::rewards::{self, group_advantages, Credit};
use crate::session_plan::{
    derive_plan, input_sql, split_output, DerivedOutput, SessionDeriveParams,
};
use crate::{DeriveError, DeriveOptions, DeriveSummary, DerivedTableSummary, JOBS};

/// Memory of a derive's sorts when the options set none: 256 MiB, split
/// evenly between the plan's partitions (each spills past its share).
pub const DEFAULT_DERIVE_MEMORY_BYTES: usize = 256 * 1024 * 1024;

/// Rows per batch of the derive's scan and sort: events carry whole tool
/// outputs (a few KiB each), and the merge of spilled sort runs holds one
/// batch per run, so batches stay around a few MiB.
pub const DERIVE_BATCH_ROWS: usize = 1024;

/// How much of the log a derive rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeriveScope {
    /// Every session.
    Full,
    /// Only the sessions touched since `since_version`.
    Incremental { since_version: u64 },
}

/// Builds `turns`, `trajectories` and `rewards` from one version of the log
/// (one Delta commit per table, lineage in the commit), incrementally when
/// it can (module docs). When all three already record the same events
/// version, job versions and parameters, writes nothing and says so.
///
/// Memory: the engine's pool ([`DeriveOptions::memory_limit`], default
/// [`DEFAULT_DERIVE_MEMORY_BYTES`]) plus the largest session and one output
/// batch per table per partition.
///
/// Errors: [`DeriveError::InvalidOption`]; [`QueryError::Empty`] (as
/// [`DeriveError::Query`]) when nothing was ingested; store errors on write.
pub async fn derive(
    store: &EventStore,
    options: &DeriveOptions,
) -> Result<DeriveSummary, DeriveError> {
    options.validate()?;
    let memory = options.memory_limit.unwrap_or(DEFAULT_DERIVE_MEMORY_BYTES);
    let engine = QueryEngine::open_with(
        store,
        options.as_of.as_ref(),
        EngineOptions {
            memory_limit: Some(memory),
            pushdown_filters: false,
            batch_size: Some(DERIVE_BATCH_ROWS),
            keep_join_order: false,
            target_partitions: None,
        },
    )
    .await?;
    let events_version = engine.events_version();
    let params = options.params();
    let lineage = |job: &str, job_version: &str, events_version: u64| DerivedLineage {
        events_version,
        job: job.to_string(),
        job_version: job_version.to_string(),
        params: params.clone(),
    };
    let mut built_from = Vec::new();
    for (job, _) in JOBS {
        built_from.push(store.derived_lineage(job).await?);
    }
    let current = |k: usize, version: u64| {
        let (job, job_version) = JOBS[k];
        built_from[k].as_ref() == Some(&lineage(job, job_version, version))
    };
    if !options.full && (0..JOBS.len()).all(|k| current(k, events_version)) {
        return Ok(DeriveSummary {
            events_version,
            up_to_date: true,
            scope: None,
            tables: JOBS
                .iter()
                .map(|(job, version)| DerivedTableSummary {
                    name: job.to_string(),
                    rows: 0,
                    version: None,
                    job_version: version.to_string(),
                    segments_written: 0,
                    rows_replaced: 0,
                })
                .collect(),
            sessions: 0,
        });
    }
    // Incremental when every table was built with these jobs and parameters
    // from one older version whose later commits can still be read.
    let base = built_from[0].as_ref().map(|l| l.events_version);
    let mut touched = None;
    if let Some(base) = base {
        let same_build = (0..JOBS.len()).all(|k| current(k, base));
        if same_build && !options.full && options.rewards.credit != Credit::Grpo {
            touched = store
                .sessions_touched_since(base, events_version)
                .await?
                .map(|sessions| (base, sessions));
        }
    }
    let scope = match &touched {
        Some((base, _)) => DeriveScope::Incremental {
            since_version: *base,
        },
        None => DeriveScope::Full,
    };
    // An incremental build reads a few sessions out of the whole log: it
    // filters inside the scan, decoding the other columns only for those
    // sessions' rows.
    engine.set_pushdown_filters(touched.is_some());
    let frame = engine
        .frame(&input_sql(touched.as_ref().map(|(_, s)| s)))
        .await?;
    let input = frame
        .create_physical_plan()
        .await
        .map_err(QueryError::from)?;
    let task = engine.task_ctx();
    let partitions = task.session_config().target_partitions();
    let plan = derive_plan(
        input,
        partitions,
        SessionDeriveParams {
            rewards: options.rewards,
            episodes: options.episodes,
            events_version,
        },
    )
    .map_err(QueryError::from)?;

    // Each partition of the plan derives and writes its own segments (as a
    // distributed engine's executors would); the commits below take them all.
    let streams = partition_streams(&plan, &task, memory)?;
    let grpo = options.rewards.credit == Credit::Grpo;
    let mut partitions = Vec::new();
    for stream in streams {
        let mut writers = Vec::new();
        for output in &DerivedOutput::ALL[..3] {
            writers.push(
                store
                    .derived_writer(table_name(*output), output.schema())
                    .await?,
            );
        }
        let groups = if grpo { Some(GrpoGroups::new()?) } else { None };
        partitions.push(tokio::spawn(write_partition(stream, writers, groups)));
    }
    let mut written = Vec::new();
    for task in partitions {
        written.push(
            task.await
                .map_err(|e| DeriveError::Column(format!("a derive partition stopped: {e}")))??,
        );
    }
    let sessions = written.iter().map(|p| p.sessions).sum();
    let mut writers: Vec<Vec<DerivedTableWriter>> = vec![Vec::new(), Vec::new(), Vec::new()];
    let mut all_groups = Vec::new();
    for partition in written {
        for (k, writer) in partition.writers.into_iter().enumerate() {
            writers[k].push(writer);
        }
        all_groups.extend(partition.groups);
    }
    if !all_groups.is_empty() {
        GrpoGroups::replay_all(all_groups, &mut writers[2]).await?;
    }

    let replace = match touched {
        Some((_, sessions)) => DerivedReplace::Sessions(sessions),
        None => DerivedReplace::All,
    };
    let mut tables = Vec::new();
    for (writer, (job, job_version)) in writers.into_iter().zip(JOBS) {
        let done = store
            .commit_derived(
                writer,
                replace.clone(),
                &lineage(job, job_version, events_version),
            )
            .await?;
        tables.push(DerivedTableSummary {
            name: job.to_string(),
            rows: done.rows_written,
            version: Some(done.version),
            job_version: job_version.to_string(),
            segments_written: done.segments_written,
            rows_replaced: done.rows_replaced,
        });
    }
    Ok(DeriveSummary {
        events_version,
        up_to_date: false,
        scope: Some(scope),
        tables,
        sessions,
    })
}

/// Executes every partition of `plan`, each in a task context of its own
/// whose memory pool is its share of `memory`: the sorts of different
/// partitions then cannot starve each other (under one pool, the first
/// merge of spilled runs reserves all that is left and the second cannot
/// get its 10 MB; seen at 10x with 128 MiB).
pub(crate) fn partition_streams(
    plan: &Arc<dyn ExecutionPlan>,
    task: &Arc<TaskContext>,
    memory: usize,
) -> Result<Vec<SendableRecordBatchStream>, DeriveError> {
    let partitions = plan.properties().output_partitioning().partition_count();
    let share = memory / partitions.max(1);
    let mut streams = Vec::with_capacity(partitions);
    for partition in 0..partitions {
        let runtime = RuntimeEnvBuilder::from_runtime_env(&task.runtime_env())
            .with_memory_pool(Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(share),
                std::num::NonZeroUsize::new(5).unwrap_or(std::num::NonZeroUsize::MIN),
            )))
            .build_arc()
            .map_err(QueryError::from)?;
        let context = Arc::new(TaskContext::new(
            task.task_id(),
            task.session_id(),
            task.session_config().clone(),
            task.scalar_functions().clone(),
            task.higher_order_functions().clone(),
            task.aggregate_functions().clone(),
            task.window_functions().clone(),
            runtime,
        ));
        streams.push(plan.execute(partition, context).map_err(QueryError::from)?);
    }
    Ok(streams)
}

/// What one partition of the plan wrote.
struct PartitionOutput {
    writers: Vec<DerivedTableWriter>,
    groups: Option<GrpoGroups>,
    sessions: usize,
}

/// Drains one partition of the plan into its writers (turns, trajectories,
/// rewards), holding GRPO's combined rows back when `groups` is set.
async fn write_partition(
    mut stream: SendableRecordBatchStream,
    mut writers: Vec<DerivedTableWriter>,
    mut groups: Option<GrpoGroups>,
) -> Result<PartitionOutput, DeriveError> {
    let mut sessions = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(QueryError::from)?;
        for (k, output) in DerivedOutput::ALL[..3].iter().enumerate() {
            let Some(rows) = split_output(&batch, *output)? else {
                continue;
            };
            let rows = match (output, groups.as_mut()) {
                (DerivedOutput::Trajectories, Some(groups)) => {
                    groups.observe_trajectories(&rows)?;
                    rows
                }
                (DerivedOutput::Rewards, Some(groups)) => groups.hold_combined(&rows)?,
                _ => rows,
            };
            writers[k].write(rows).await?;
        }
        if let Some(markers) = split_output(&batch, DerivedOutput::Sessions)? {
            sessions += markers.num_rows();
        }
    }
    for writer in &mut writers {
        writer.finish().await?;
    }
    Ok(PartitionOutput {
        writers,
        groups,
        sessions,
    })
}

/// The derived table an output column is written to.
fn table_name(output: DerivedOutput) -> &'static str {
    match output {
        DerivedOutput::Turns => "turns",
        DerivedOutput::Trajectories => "trajectories",
        DerivedOutput::Rewards | DerivedOutput::Sessions => "rewards",
    }
}

/// GRPO groups gathered while the plan runs: each trajectory's prompt hash
/// and reward `R`, and the `combined` reward rows, held in a spill file until
/// every group is complete.
struct GrpoGroups {
    /// (session_id, arrival position, trajectory_id, prompt_hash).
    trajectories: Vec<(String, usize, String, String)>,
    /// trajectory_id → `R` (its trajectory-level combined row).
    rewards: HashMap<String, f64>,
    spill: FileWriter<File>,
}

impl GrpoGroups {
    fn new() -> Result<GrpoGroups, DeriveError> {
        let file = tempfile::tempfile()
            .map_err(|e| DeriveError::Column(format!("cannot create a spill file: {e}")))?;
        Ok(GrpoGroups {
            trajectories: Vec::new(),
            rewards: HashMap::new(),
            spill: FileWriter::try_new(file, &rewards::rewards_schema())?,
        })
    }

    fn observe_trajectories(&mut self, rows: &RecordBatch) -> Result<(), DeriveError> {
        let (session, id, hash) = (
            string_column(rows, "session_id")?,
            string_column(rows, "trajectory_id")?,
            string_column(rows, "prompt_hash")?,
        );
        for i in 0..rows.num_rows() {
            let position = self.trajectories.len();
            self.trajectories.push((
                session.value(i).to_string(),
                position,
                id.value(i).to_string(),
                hash.value(i).to_string(),
            ));
        }
        Ok(())
    }

    /// Spills the `combined` rows of `rows` and returns the others.
    fn hold_combined(&mut self, rows: &RecordBatch) -> Result<RecordBatch, DeriveError> {
        let level = string_column(rows, "level")?;
        let combined_literal = StringArray::new_scalar("combined");
        let combined = eq(level, &combined_literal)?;
        let held = filter_record_batch(rows, &combined)?;
        let (kind, subject, value) = (
            string_column(&held, "subject_kind")?,
            string_column(&held, "subject_id")?,
            held.column_by_name("value")
                .and_then(|c| c.as_primitive_opt::<Float64Type>())
                .ok_or_else(|| DeriveError::Column("rewards.value is not float64".into()))?,
        );
        for i in 0..held.num_rows() {
            if kind.value(i) == "trajectory" {
                self.rewards
                    .insert(subject.value(i).to_string(), value.value(i));
            }
        }
        if held.num_rows() > 0 {
            self.spill.write(&held)?;
        }
        Ok(filter_record_batch(rows, &neq(level, &combined_literal)?)?)
    }

    /// Normalises every group over the trajectories of all `partitions` and
    /// writes each partition's held rows, with their advantage, to the
    /// matching writer of `writers`.
    async fn replay_all(
        partitions: Vec<GrpoGroups>,
        writers: &mut [DerivedTableWriter],
    ) -> Result<(), DeriveError> {
        let mut trajectories = Vec::new();
        let mut rewards = HashMap::new();
        let mut spills = Vec::new();
        for (p, mut groups) in partitions.into_iter().enumerate() {
            groups.spill.finish()?;
            // Positions stay in arrival order within a session.
            trajectories.extend(
                groups
                    .trajectories
                    .into_iter()
                    .map(|(session, position, id, hash)| (session, (p, position), id, hash)),
            );
            rewards.extend(groups.rewards);
            spills.push(groups.spill.into_inner()?);
        }
        // Groups in the order of a full derive: sessions by id, then episodes.
        trajectories.sort();
        let mut groups: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut order = Vec::new();
        for (_, _, id, hash) in &trajectories {
            let members = groups.entry(hash.as_str()).or_default();
            if members.is_empty() {
                order.push(hash.as_str());
            }
            members.push(id.as_str());
        }
        let mut advantage: HashMap<&str, Option<f64>> = HashMap::new();
        for hash in order {
            let members = &groups[hash];
            let values: Vec<f64> = members
                .iter()
                .map(|id| rewards.get(*id).copied().unwrap_or(0.0))
                .collect();
            for (id, a) in members.iter().zip(group_advantages(&values)) {
                advantage.insert(id, a);
            }
        }
        for (mut file, writer) in spills.into_iter().zip(writers.iter_mut()) {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| DeriveError::Column(format!("cannot read the spill file: {e}")))?;
            for batch in FileReader::try_new(file, None)? {
                let batch = batch?;
                let trajectory = string_column(&batch, "trajectory_id")?;
                let values: Float64Array = (0..batch.num_rows())
                    .map(|i| advantage.get(trajectory.value(i)).copied().flatten())
                    .collect();
                let index = batch.schema().index_of("advantage")?;
                let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
                columns[index] = Arc::new(values);
                writer
                    .write(RecordBatch::try_new(batch.schema(), columns)?)
                    .await?;
            }
        }
        Ok(())
    }
}

/// The utf8 column `name` of `batch`.
fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, DeriveError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| DeriveError::Column(format!("{name} is not a utf8 column")))
}
