//! Keeping tables healthy: compaction, vacuum, history and verification.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::compute::{
    concat_batches, lexsort_to_indices, take_record_batch, SortColumn,
};
use deltalake::kernel::{Action, Remove};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::parquet::file::metadata::ParquetMetaDataReader;
use deltalake::protocol::DeltaOperation;
use deltalake::{DeltaTable, DeltaTableError};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::derived::DERIVED_TABLES;
use crate::events::MAX_COMMIT_ATTEMPTS;
use crate::segments::{
    active_segments, commit, read_segment, segment_location, write_segments, CommitFailure,
    SegmentFile, SEGMENTS_METADATA_KEY,
};
use crate::{EventStore, StoreError, EVENTS_TABLE};

/// What `compact` did to one table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactionSummary {
    pub table: String,
    /// The new table version, `None` when nothing needed compacting.
    pub version: Option<u64>,
    pub files_before: usize,
    pub files_after: usize,
    pub files_rewritten: usize,
    pub bytes_rewritten: u64,
    pub partitions_compacted: usize,
}

/// One commit of a table, as `trajectory history` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub table: String,
    pub version: u64,
    /// Commit time, RFC 3339 UTC.
    pub time: Option<String>,
    pub operation: String,
    /// Rows the commit added (ingest: new events; rewrites: rows written).
    pub rows_added: Option<u64>,
    /// The ingest run behind the commit, for ingest commits.
    pub ingest_id: Option<String>,
}

/// A problem `verify` found with one segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentProblem {
    pub table: String,
    pub path: String,
    /// `missing`, `size_mismatch`, `rows_mismatch`, `hash_mismatch`, `unreadable`, `no_recorded_hash`.
    pub problem: String,
    pub detail: String,
}

/// The result of `verify`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub tables: Vec<String>,
    pub segments_checked: usize,
    pub bytes_checked: u64,
    pub problems: Vec<SegmentProblem>,
    /// Files under a table that no version of the log references (left by a
    /// crashed writer): `vacuum` removes them.
    pub orphans: Vec<String>,
    /// Files removed by a later commit and kept for time travel until `vacuum`.
    pub removed_awaiting_vacuum: usize,
}

impl VerifyReport {
    /// Whether every referenced segment is present and intact.
    pub fn is_ok(&self) -> bool {
        self.problems
            .iter()
            .all(|p| p.problem == "no_recorded_hash")
    }
}

/// What `vacuum` removed from one table.
#[derive(Debug, Clone, Serialize)]
pub struct VacuumSummary {
    pub table: String,
    pub files_deleted: usize,
    pub dry_run: bool,
}

impl EventStore {
    /// Names of the tables that exist in the store (`events` first).
    pub async fn existing_tables(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for name in std::iter::once(EVENTS_TABLE).chain(DERIVED_TABLES.iter().copied()) {
            if self.load_table(name).await?.is_some() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// Bin-packs the small segments of every partition of `table_name` into
    /// segments of about `target_bytes`, rows sorted by (`session_id`, `seq`,
    /// `event_id`) where those columns exist. A partition is rewritten only if
    /// it has at least `min_files` (≥ 2) segments smaller than the target: the
    /// CLI uses 2; ingest uses a larger number to compact automatically only
    /// once a partition is fragmented. The commit is an `OPTIMIZE` (no data
    /// change): readers see the same rows.
    ///
    /// Errors: Delta or I/O errors; on failure nothing is visible.
    pub async fn compact(
        &self,
        table_name: &str,
        target_bytes: u64,
        min_files: usize,
    ) -> Result<CompactionSummary, StoreError> {
        for _attempt in 0..MAX_COMMIT_ATTEMPTS {
            let Some(table) = self.load_table(table_name).await? else {
                return Ok(CompactionSummary {
                    table: table_name.to_string(),
                    ..Default::default()
                });
            };
            let files = active_segments(&table)?;
            let bins = plan_bins(&files, target_bytes, min_files.max(2));
            let mut summary = CompactionSummary {
                table: table_name.to_string(),
                files_before: files.len(),
                files_after: files.len(),
                ..Default::default()
            };
            if bins.is_empty() {
                return Ok(summary);
            }
            let schema = table_arrow_schema(&table)?;
            let mut actions = Vec::new();
            let mut partitions = HashSet::new();
            let now = chrono::Utc::now().timestamp_millis();
            for bin in &bins {
                let mut parts = Vec::new();
                for file in bin {
                    parts.extend(read_segment(&table, file, &schema).await?);
                }
                let merged = concat_batches(&schema, &parts)?;
                let sorted = sort_rows(&merged)?;
                let mut adds = write_segments(&table, vec![sorted], Some(target_bytes)).await?;
                for add in &mut adds {
                    add.data_change = false;
                }
                summary.files_after = summary.files_after + adds.len() - bin.len();
                actions.extend(adds.into_iter().map(Action::Add));
                for file in bin {
                    summary.files_rewritten += 1;
                    summary.bytes_rewritten += file.size.max(0) as u64;
                    partitions.insert(partition_key(file));
                    actions.push(Action::Remove(remove_action(file, now, false)));
                }
            }
            summary.partitions_compacted = partitions.len();
            let operation = DeltaOperation::Optimize {
                predicate: None,
                target_size: target_bytes as i64,
            };
            let metadata = serde_json::Map::from_iter([(
                "trajectory.operation".to_string(),
                json!("compact"),
            )]);
            match commit(&table, actions, operation, metadata).await {
                Ok(version) => {
                    summary.version = Some(version);
                    return Ok(summary);
                }
                Err(CommitFailure::Conflict) => continue,
                Err(CommitFailure::Failed(e)) => return Err(e),
            }
        }
        Err(StoreError::Delta(DeltaTableError::Generic(
            "compaction kept losing commit races; try again later".into(),
        )))
    }

    /// Deletes files of every table that no current version references and
    /// that were removed (or written) more than `retention` ago. With a zero
    /// retention, time travel to versions before the vacuum stops working.
    pub async fn vacuum(
        &self,
        retention: chrono::Duration,
        dry_run: bool,
    ) -> Result<Vec<VacuumSummary>, StoreError> {
        let mut out = Vec::new();
        for name in self.existing_tables().await? {
            let Some(table) = self.load_table(&name).await? else {
                continue;
            };
            let (_, metrics) = table
                .vacuum()
                .with_retention_period(retention)
                .with_enforce_retention_duration(false)
                .with_mode(VacuumMode::Full)
                .with_dry_run(dry_run)
                .await?;
            out.push(VacuumSummary {
                table: name,
                files_deleted: metrics.files_deleted.len(),
                dry_run,
            });
        }
        Ok(out)
    }

    /// The latest version of `events` committed at or before `time`, by the
    /// commit timestamps `history` shows (not by log-file modification
    /// times, which object stores and busy disks set later than the commit).
    ///
    /// Errors: [`StoreError::NoEventsTable`]; [`StoreError::InvalidTable`]
    /// when `time` is before the first commit.
    pub async fn events_version_at(
        &self,
        time: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let entries = self.history().await?;
        let millis = time.timestamp_millis();
        entries
            .iter()
            .filter(|e| e.table == EVENTS_TABLE)
            .filter(|e| {
                e.time
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t.timestamp_millis() <= millis)
            })
            .map(|e| e.version)
            .max()
            .ok_or_else(|| {
                StoreError::InvalidTable(format!(
                    "no commit of events at or before {}",
                    time.to_rfc3339()
                ))
            })
    }

    /// The commits of every table, newest first per table.
    pub async fn history(&self) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut out = Vec::new();
        for name in self.existing_tables().await? {
            let Some(table) = self.load_table(&name).await? else {
                continue;
            };
            let latest = table.version().unwrap_or_default();
            let commits: Vec<_> = table.history(None).try_collect().await?;
            for (index, commit) in commits.into_iter().enumerate() {
                let info = &commit.info;
                let version = info
                    .get("version")
                    .and_then(Value::as_u64)
                    .or(commit.read_version.map(|v| v + 1))
                    .unwrap_or(latest.saturating_sub(index as u64));
                let metrics = commit
                    .operation_parameters
                    .as_ref()
                    .and_then(|_| info.get("operationMetrics"));
                let rows_added = info
                    .get("trajectory.rows_added")
                    .and_then(Value::as_u64)
                    .or_else(|| {
                        metrics
                            .or(info.get("operationMetrics"))
                            .and_then(|m| m.get("numOutputRows"))
                            .and_then(|v| v.as_u64().or(v.as_str()?.parse().ok()))
                    })
                    .or_else(|| segments_rows(info.get(SEGMENTS_METADATA_KEY)));
                out.push(HistoryEntry {
                    table: name.clone(),
                    version,
                    time: commit.timestamp.and_then(|ms| {
                        chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339())
                    }),
                    operation: info
                        .get("trajectory.operation")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .or(commit.operation.clone())
                        .unwrap_or_default(),
                    rows_added,
                    ingest_id: info
                        .get("trajectory.ingest_id")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
        }
        Ok(out)
    }

    /// Checks every segment the latest version of every table references:
    /// it exists, its size and row count match the log, and its sha256
    /// matches the hash recorded when it was written. Lists files no version
    /// references (orphans).
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        for name in self.existing_tables().await? {
            let Some(table) = self.load_table(&name).await? else {
                continue;
            };
            report.tables.push(name.clone());
            let recorded = recorded_segments(&table).await?;
            let store = table.object_store();
            let active = active_segments(&table)?;
            let active_paths: HashSet<String> = active.iter().map(|f| decoded(&f.path)).collect();
            for file in &active {
                report.segments_checked += 1;
                let problem = |kind: &str, detail: String| SegmentProblem {
                    table: name.clone(),
                    path: file.path.clone(),
                    problem: kind.to_string(),
                    detail,
                };
                let location = segment_location(&file.path)?;
                let bytes = match store.get(&location).await {
                    Ok(result) => match result.bytes().await {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            report.problems.push(problem("unreadable", e.to_string()));
                            continue;
                        }
                    },
                    Err(deltalake::ObjectStoreError::NotFound { .. }) => {
                        report
                            .problems
                            .push(problem("missing", "the file does not exist".into()));
                        continue;
                    }
                    Err(e) => {
                        report.problems.push(problem("unreadable", e.to_string()));
                        continue;
                    }
                };
                report.bytes_checked += bytes.len() as u64;
                if bytes.len() as i64 != file.size {
                    report.problems.push(problem(
                        "size_mismatch",
                        format!("log says {} bytes, file has {}", file.size, bytes.len()),
                    ));
                }
                match ParquetMetaDataReader::new().parse_and_finish(&bytes) {
                    Ok(meta) => {
                        let rows = meta.file_metadata().num_rows() as usize;
                        if let Some(expected) = file.rows {
                            if expected != rows {
                                report.problems.push(problem(
                                    "rows_mismatch",
                                    format!("log says {expected} rows, file footer says {rows}"),
                                ));
                            }
                        }
                    }
                    Err(e) => report
                        .problems
                        .push(problem("unreadable", format!("not a Parquet file: {e}"))),
                }
                let actual = hex::encode(Sha256::digest(&bytes));
                match recorded.get(&decoded(&file.path)) {
                    Some(expected) if *expected == actual => {}
                    Some(expected) => report.problems.push(problem(
                        "hash_mismatch",
                        format!("recorded sha256 {expected}, file has {actual}"),
                    )),
                    None => report.problems.push(problem(
                        "no_recorded_hash",
                        "written before segment hashes were recorded".into(),
                    )),
                }
            }
            let ever_written: HashSet<String> = recorded.keys().cloned().collect();
            let mut listing = store.list(None);
            while let Some(meta) = listing.next().await {
                let meta = meta
                    .map_err(|e| StoreError::Delta(DeltaTableError::ObjectStore { source: e }))?;
                let path = meta.location.to_string();
                if path.starts_with("_delta_log") || !path.ends_with(".parquet") {
                    continue;
                }
                if active_paths.contains(&path) {
                    continue;
                }
                if ever_written.contains(&path) {
                    report.removed_awaiting_vacuum += 1;
                } else {
                    report.orphans.push(format!("{name}/{path}"));
                }
            }
        }
        Ok(report)
    }
}

/// The table's schema as Arrow (partition columns included).
pub(crate) fn table_arrow_schema(
    table: &DeltaTable,
) -> Result<deltalake::arrow::datatypes::SchemaRef, StoreError> {
    use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
    let schema = table.snapshot()?.schema();
    let arrow: deltalake::arrow::datatypes::Schema = schema.as_ref().try_into_arrow()?;
    Ok(Arc::new(arrow))
}

/// Path → sha256 of every segment any commit of `table` recorded.
async fn recorded_segments(table: &DeltaTable) -> Result<HashMap<String, String>, StoreError> {
    let commits: Vec<_> = table.history(None).try_collect().await?;
    let mut out = HashMap::new();
    for commit in commits {
        if let Some(Value::Object(map)) = commit.info.get(SEGMENTS_METADATA_KEY) {
            for (path, entry) in map {
                if let Some(sha) = entry.get("sha256").and_then(Value::as_str) {
                    out.insert(decoded(path), sha.to_string());
                }
            }
        }
    }
    Ok(out)
}

fn decoded(path: &str) -> String {
    segment_location(path)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| path.to_string())
}

fn segments_rows(value: Option<&Value>) -> Option<u64> {
    let Value::Object(map) = value? else {
        return None;
    };
    Some(
        map.values()
            .filter_map(|v| v.get("rows").and_then(Value::as_u64))
            .sum(),
    )
}

fn partition_key(file: &SegmentFile) -> String {
    let sorted: BTreeMap<_, _> = file.partition_values.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_default()
}

/// Groups each partition's segments smaller than `target_bytes` into bins
/// of at most about `target_bytes` (first-fit over files ordered by path);
/// only bins of two or more files are worth rewriting.
fn plan_bins(files: &[SegmentFile], target_bytes: u64, min_files: usize) -> Vec<Vec<SegmentFile>> {
    let mut by_partition: BTreeMap<String, Vec<&SegmentFile>> = BTreeMap::new();
    for file in files {
        if (file.size.max(0) as u64) < target_bytes {
            by_partition
                .entry(partition_key(file))
                .or_default()
                .push(file);
        }
    }
    let mut bins = Vec::new();
    for (_, mut small) in by_partition {
        small.sort_by(|a, b| a.path.cmp(&b.path));
        let mut current: Vec<SegmentFile> = Vec::new();
        let mut current_bytes = 0u64;
        for file in small {
            let size = file.size.max(0) as u64;
            if !current.is_empty() && current_bytes + size > target_bytes {
                bins.push(std::mem::take(&mut current));
                current_bytes = 0;
            }
            current.push(file.clone());
            current_bytes += size;
        }
        bins.push(current);
    }
    bins.retain(|bin| bin.len() >= min_files);
    bins
}

/// Sorts rows by (`session_id`, `seq`, `event_id`), using those that exist.
pub(crate) fn sort_rows(batch: &RecordBatch) -> Result<RecordBatch, StoreError> {
    let sort_columns: Vec<SortColumn> = ["session_id", "seq", "event_id", "turn_id", "reward_id"]
        .iter()
        .filter_map(|name| batch.column_by_name(name))
        .filter(|c| {
            !matches!(
                c.data_type(),
                deltalake::arrow::datatypes::DataType::List(_)
            )
        })
        .map(|values| SortColumn {
            values: Arc::clone(values),
            options: None,
        })
        .collect();
    if sort_columns.is_empty() || batch.num_rows() == 0 {
        return Ok(batch.clone());
    }
    let indices = lexsort_to_indices(&sort_columns, None)?;
    Ok(take_record_batch(batch, &indices)?)
}

/// A `remove` action for `file` (`data_change` false for compaction).
pub(crate) fn remove_action(file: &SegmentFile, now_ms: i64, data_change: bool) -> Remove {
    Remove {
        path: file.path.clone(),
        data_change,
        deletion_timestamp: Some(now_ms),
        extended_file_metadata: Some(true),
        partition_values: Some(file.partition_values.clone()),
        size: Some(file.size),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
    }
}
