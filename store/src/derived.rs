//! Derived tables: Delta tables beside `events` (`turns`, `trajectories`,
//! `rewards`, `dedupe_clusters`, ...), each rebuilt whole by a job and
//! recording the `events` version it was built from.
//!
//! Every derived table carries a `session_id` [utf8] column and an
//! `event_ids` [list<utf8>] column (the events each row was derived from), so
//! that `trajectory erase` can remove everything derived from erased events.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use deltalake::arrow::array::{AsArray, BooleanArray, RecordBatch};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::{Action, Add, MetadataExt, StructType};
use deltalake::logstore::object_store::{ObjectStore, ObjectStoreExt};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::file::metadata::ParquetMetaDataReader;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::events::MAX_COMMIT_ATTEMPTS;
use crate::events::{segment_writer_properties, SegmentEncoding};
use crate::maintenance::{remove_action, table_arrow_schema};
use crate::segments::{
    active_segments, commit, hash_segment, read_segment, segment_bytes, segment_location,
    write_segments, CommitFailure, SegmentFile, SHA256_TAG,
};
use crate::{EventStore, StoreError};

/// Names of the derived tables a store may hold, in build order. The query
/// engine registers each that exists; erasure visits each.
pub const DERIVED_TABLES: &[&str] = &[
    "turns",
    "trajectories",
    "rewards",
    "dedupe_signatures",
    "dedupe_clusters",
];

/// Columns every derived table must have (see the module docs).
pub const DERIVED_LINEAGE_COLUMNS: &[&str] = &["session_id", "event_ids"];

/// Commits looked back through for the latest lineage (a build is followed
/// by at most a vacuum's two commits, a compaction or an erasure per run).
const LINEAGE_LOOKBACK: usize = 100;

/// Where a derived table came from: recorded in the commit that wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DerivedLineage {
    /// The `events` table version the job read.
    pub events_version: u64,
    /// The job's name (`turns`, `rewards`, ...).
    pub job: String,
    /// The job's method version (bumped when its output for the same input changes).
    pub job_version: String,
    /// Parameters the job ran with (weights, thresholds, ...).
    pub params: serde_json::Map<String, Value>,
}

impl EventStore {
    /// Replaces the derived table `name` with `batches` in one Delta commit
    /// (overwrite, schema replaced), recording `lineage` in the commit
    /// metadata under `trajectory.lineage`.
    ///
    /// `schema` is used when `batches` is empty. The schema must contain
    /// [`DERIVED_LINEAGE_COLUMNS`]. Returns the new table version.
    ///
    /// Errors: [`StoreError::InvalidTable`] for a name outside
    /// [`DERIVED_TABLES`] or a schema without the lineage columns; Delta
    /// errors on commit.
    pub async fn replace_derived_table(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        lineage: &DerivedLineage,
    ) -> Result<u64, StoreError> {
        let mut writer = self.derived_writer(name, schema).await?;
        for batch in batches {
            writer.write(batch).await?;
        }
        Ok(self
            .commit_derived(vec![writer], DerivedReplace::All, lineage)
            .await?
            .version)
    }

    /// The derived table `name` at its latest version, or `None` if no job has
    /// built it yet.
    pub async fn derived_table(&self, name: &str) -> Result<Option<DeltaTable>, StoreError> {
        self.load_table(name).await
    }

    /// The lineage recorded by the latest build of `name` (looking past
    /// vacuum, compaction and erasure commits), or `None` if the table does
    /// not exist (or was written by something else).
    pub async fn derived_lineage(&self, name: &str) -> Result<Option<DerivedLineage>, StoreError> {
        let Some(table) = self.load_table(name).await? else {
            return Ok(None);
        };
        // The latest commit that records a lineage: vacuum, compaction and
        // erasure commit after a build without changing what it was built
        // from (erasure removes rows whose events are gone).
        let mut history = table.history(Some(LINEAGE_LOOKBACK));
        while let Some(commit) = history.next().await {
            let info: HashMap<String, Value> = commit?.info;
            if let Some(value) = info.get("trajectory.lineage") {
                return Ok(serde_json::from_value(value.clone()).ok());
            }
        }
        Ok(None)
    }
}

/// Size at which a derived-table writer closes a segment and starts the next
/// (bytes of Arrow data written into it, a few MiB of Parquet): 8 MiB, so
/// memory stays bounded, a large derive writes many segments that later
/// jobs can read in parallel, and an incremental derive rewrites few.
pub const DERIVED_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Which rows of a derived table a [`EventStore::commit_derived`] replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DerivedReplace {
    /// Every row (a full build).
    All,
    /// The rows whose `session_id` is in the set (an incremental build of
    /// those sessions); the other rows are kept.
    Sessions(HashSet<String>),
}

/// What one [`EventStore::commit_derived`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DerivedCommit {
    /// The derived table's new Delta version.
    pub version: u64,
    /// Rows added by the writer.
    pub rows_written: usize,
    /// Segments added by the writer.
    pub segments_written: usize,
    /// Rows removed (all of them for [`DerivedReplace::All`]; the replaced
    /// sessions' old rows otherwise).
    pub rows_replaced: usize,
    /// Existing segments rewritten without the replaced sessions' rows.
    pub segments_rewritten: usize,
}

/// Streams rows into new segments of one derived table. Nothing is visible
/// until [`EventStore::commit_derived`]; a writer dropped without a commit
/// leaves only unreferenced files (removed by `vacuum`).
///
/// Memory: the open segment (at most [`DERIVED_SEGMENT_BYTES`] of Arrow
/// data), not the rows written.
pub struct DerivedTableWriter {
    name: String,
    schema: SchemaRef,
    writer: RecordBatchWriter,
    /// The table's object store, to hash closed segments.
    store: Arc<dyn ObjectStore>,
    adds: Vec<Add>,
    rows: usize,
    /// Arrow bytes written into the open segment.
    open_bytes: usize,
}

impl DerivedTableWriter {
    /// Appends `batch` (of the writer's schema) to the open segment, closing
    /// it at [`DERIVED_SEGMENT_BYTES`].
    ///
    /// Errors: the batch does not match the schema; Parquet or object-store
    /// errors.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), StoreError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows();
        self.open_bytes += batch.get_array_memory_size();
        self.writer.write(batch).await?;
        // The Parquet writer holds a row group in memory until it closes
        // (128 Ki rows): close the segment by the bytes that went in, so a
        // table of wide rows (a turn carries its context) never waits in
        // memory whole.
        if self.open_bytes as u64 >= DERIVED_SEGMENT_BYTES {
            self.close_segment().await?;
        }
        Ok(())
    }

    /// Closes the open segment (if any) and records the sha256 of every
    /// segment closed so far, here rather than at the commit: the writers
    /// of a plan's partitions hash on their own cores.
    ///
    /// Errors: Parquet or object-store errors.
    pub async fn finish(&mut self) -> Result<(), StoreError> {
        self.close_segment().await
    }

    async fn close_segment(&mut self) -> Result<(), StoreError> {
        let mut closed = self.writer.flush().await?;
        tag_sha256(self.store.as_ref(), &mut closed).await?;
        self.adds.extend(closed);
        self.open_bytes = 0;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The table this writer writes.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema batches must have.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

impl EventStore {
    /// Opens a streaming writer for the derived table `name` (created with
    /// `schema` if it does not exist yet).
    ///
    /// Errors: [`StoreError::InvalidTable`] for a name outside
    /// [`DERIVED_TABLES`] or a schema without [`DERIVED_LINEAGE_COLUMNS`];
    /// Delta errors creating the table.
    pub async fn derived_writer(
        &self,
        name: &str,
        schema: SchemaRef,
    ) -> Result<DerivedTableWriter, StoreError> {
        check_derived(name, &schema)?;
        let table = self.ensure_table(name, &schema, &[]).await?;
        let writer = if same_column_names(&table_arrow_schema(&table)?, &schema) {
            RecordBatchWriter::for_table(&table)?
        } else {
            // A new job version with other columns: the segments take the
            // new schema, and the commit (a full rebuild) records it.
            RecordBatchWriter::try_new(
                self.location().table_url(name).as_str(),
                schema.clone(),
                None,
                Some(self.location().storage_options()),
            )?
        };
        let writer = writer
            .with_writer_properties(segment_writer_properties(SegmentEncoding::Derived)?)
            .with_target_file_size(DERIVED_SEGMENT_BYTES);
        Ok(DerivedTableWriter {
            name: name.to_string(),
            schema,
            writer,
            store: table.object_store(),
            adds: Vec::new(),
            rows: 0,
            open_bytes: 0,
        })
    }

    /// Commits what `writers` (of one derived table, e.g. one per partition
    /// of a plan) wrote in one Delta commit,
    /// replacing the rows `replace` selects and recording `lineage` under
    /// `trajectory.lineage` (plus `trajectory.replaced_sessions` for an
    /// incremental build). Segments of other sessions that also hold a
    /// replaced session's rows are rewritten without them in the same commit.
    ///
    /// Errors: Delta, Parquet or object-store errors; a commit that keeps
    /// losing races with other writers.
    pub async fn commit_derived(
        &self,
        writers: Vec<DerivedTableWriter>,
        replace: DerivedReplace,
        lineage: &DerivedLineage,
    ) -> Result<DerivedCommit, StoreError> {
        let Some(first) = writers.first() else {
            return Err(StoreError::InvalidTable(
                "a derived commit needs at least one writer".into(),
            ));
        };
        let name = first.name.clone();
        let schema = first.schema.clone();
        let mut adds = Vec::new();
        let mut rows_written = 0;
        for mut writer in writers {
            if writer.name != name {
                return Err(StoreError::InvalidTable(format!(
                    "writers of {} and {name} in one commit",
                    writer.name
                )));
            }
            adds.append(&mut writer.adds);
            adds.extend(writer.writer.flush().await?);
            rows_written += writer.rows;
        }
        for _attempt in 0..MAX_COMMIT_ATTEMPTS {
            let Some(table) = self.load_table(&name).await? else {
                return Err(StoreError::InvalidTable(format!(
                    "derived table {name} disappeared while it was written"
                )));
            };
            tag_sha256(table.object_store().as_ref(), &mut adds).await?;
            let mut actions = Vec::new();
            let current = table_arrow_schema(&table)?;
            if current.fields() != schema.fields() {
                if !same_column_names(&current, &schema)
                    && matches!(replace, DerivedReplace::Sessions(_))
                {
                    return Err(StoreError::InvalidTable(format!(
                        "{name}: new columns need a full rebuild, not a replacement of some \
                         sessions' rows (run `trajectory derive --full`)"
                    )));
                }
                let kernel: StructType = schema.as_ref().try_into_kernel()?;
                let metadata =
                    MetadataExt::with_schema(table.snapshot()?.metadata().clone(), &kernel)
                        .map_err(|e| StoreError::Delta(DeltaTableError::Generic(e.to_string())))?;
                actions.push(Action::Metadata(metadata));
            }
            let now = chrono::Utc::now().timestamp_millis();
            let mut rows_replaced = 0;
            let mut segments_rewritten = 0;
            let ordered: BTreeSet<&str> = match &replace {
                DerivedReplace::Sessions(sessions) => sessions.iter().map(String::as_str).collect(),
                DerivedReplace::All => BTreeSet::new(),
            };
            let mut kept = Vec::new();
            for file in active_segments(&table)? {
                match &replace {
                    DerivedReplace::All => {
                        rows_replaced += file.rows.unwrap_or_default();
                        actions.push(Action::Remove(remove_action(&file, now, true)));
                    }
                    DerivedReplace::Sessions(sessions) => {
                        // The footer's min/max first (segments are written in
                        // session order, so most ranges miss), then the column.
                        if !segment_range_may_hold(&table, &file, &ordered).await?
                            || !segment_holds_sessions(&table, &file, sessions).await?
                        {
                            continue;
                        }
                        let mut removed_here = 0;
                        for batch in read_segment(&table, &file, &current).await? {
                            let keep = sessions_keep_mask(&batch, sessions)?;
                            removed_here += keep.false_count();
                            let rest = filter_record_batch(&batch, &keep)?;
                            if rest.num_rows() > 0 {
                                kept.push(rest);
                            }
                        }
                        rows_replaced += removed_here;
                        segments_rewritten += 1;
                        actions.push(Action::Remove(remove_action(&file, now, true)));
                    }
                }
            }
            let rewritten = write_segments(&table, kept, None).await?;
            let segments_written = adds.len();
            actions.extend(rewritten.into_iter().map(Action::Add));
            actions.extend(adds.iter().cloned().map(Action::Add));
            let mut metadata = serde_json::Map::new();
            metadata.insert(
                "trajectory.lineage".into(),
                serde_json::to_value(lineage).unwrap_or(Value::Null),
            );
            metadata.insert("trajectory.job".into(), json!(lineage.job));
            metadata.insert("trajectory.operation".into(), json!("derive"));
            let operation = match &replace {
                DerivedReplace::All => DeltaOperation::Write {
                    mode: SaveMode::Overwrite,
                    partition_by: None,
                    predicate: None,
                },
                DerivedReplace::Sessions(sessions) => {
                    metadata.insert("trajectory.replaced_sessions".into(), json!(sessions.len()));
                    DeltaOperation::Write {
                        mode: SaveMode::Overwrite,
                        partition_by: None,
                        predicate: Some(format!("session_id IN <{} sessions>", sessions.len())),
                    }
                }
            };
            match commit(&table, actions, operation, metadata).await {
                Ok(version) => {
                    return Ok(DerivedCommit {
                        version,
                        rows_written,
                        segments_written,
                        rows_replaced,
                        segments_rewritten,
                    })
                }
                Err(CommitFailure::Conflict) => continue,
                Err(CommitFailure::Failed(e)) => return Err(e),
            }
        }
        Err(StoreError::Delta(DeltaTableError::Generic(format!(
            "could not commit {name}: too many concurrent commits"
        ))))
    }
}

/// Whether two schemas have the same column names in the same order (types
/// aside: list item names differ between Arrow and Delta).
fn same_column_names(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields()
        .iter()
        .map(|f| f.name())
        .eq(b.fields().iter().map(|f| f.name()))
}

/// Records the sha256 of each segment in `adds` that has none yet (tag
/// [`SHA256_TAG`]), reading it back from `store`.
///
/// Errors: object-store errors.
async fn tag_sha256(store: &dyn ObjectStore, adds: &mut [Add]) -> Result<(), StoreError> {
    for add in adds {
        let tags = add.tags.get_or_insert_with(HashMap::new);
        if !tags.contains_key(SHA256_TAG) {
            let sha256 = hash_segment(store, &add.path).await?.0;
            tags.insert(SHA256_TAG.to_string(), Some(sha256));
        }
    }
    Ok(())
}

/// Checks that `name` is a derived table and `schema` has the lineage columns.
fn check_derived(name: &str, schema: &SchemaRef) -> Result<(), StoreError> {
    if !DERIVED_TABLES.contains(&name) {
        return Err(StoreError::InvalidTable(format!(
            "{name} is not a derived table (known: {})",
            DERIVED_TABLES.join(", ")
        )));
    }
    for column in DERIVED_LINEAGE_COLUMNS {
        if schema.field_with_name(column).is_err() {
            return Err(StoreError::InvalidTable(format!(
                "derived table {name} lacks the lineage column {column}"
            )));
        }
    }
    Ok(())
}

/// Whether the `session_id` min/max of some row group of `file` (read from
/// its Parquet footer, two ranged reads) spans one of `sessions`; true when
/// the footer has no statistics for the column.
async fn segment_range_may_hold(
    table: &DeltaTable,
    file: &SegmentFile,
    sessions: &BTreeSet<&str>,
) -> Result<bool, StoreError> {
    const FOOTER: u64 = 8;
    let store = table.object_store();
    let location = segment_location(&file.path)?;
    let size = file.size.max(0) as u64;
    let object = |e| StoreError::Delta(DeltaTableError::ObjectStore { source: e });
    if size < FOOTER {
        return Ok(true);
    }
    let tail = store
        .get_range(&location, size - FOOTER..size)
        .await
        .map_err(object)?;
    if tail.len() != FOOTER as usize || &tail[4..] != b"PAR1" {
        return Ok(true);
    }
    let length = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    if length + FOOTER > size {
        return Ok(true);
    }
    let footer = store
        .get_range(&location, size - FOOTER - length..size - FOOTER)
        .await
        .map_err(object)?;
    let Ok(metadata) = ParquetMetaDataReader::decode_metadata(&footer) else {
        return Ok(true);
    };
    let schema = metadata.file_metadata().schema_descr();
    let Some(column) = (0..schema.num_columns()).find(|&i| schema.column(i).name() == "session_id")
    else {
        return Ok(false);
    };
    for group in metadata.row_groups() {
        let stats = group.column(column).statistics();
        let (Some(min), Some(max)) = (
            stats
                .and_then(|s| s.min_bytes_opt())
                .and_then(|b| std::str::from_utf8(b).ok()),
            stats
                .and_then(|s| s.max_bytes_opt())
                .and_then(|b| std::str::from_utf8(b).ok()),
        ) else {
            return Ok(true);
        };
        if min > max || sessions.range(min..=max).next().is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `file` holds a row of one of `sessions`, decoding only its
/// `session_id` column.
async fn segment_holds_sessions(
    table: &DeltaTable,
    file: &SegmentFile,
    sessions: &HashSet<String>,
) -> Result<bool, StoreError> {
    let mut found = false;
    for_each_session_id(table, file, |id| {
        found = found || sessions.contains(id);
    })
    .await?;
    Ok(found)
}

/// Calls `visit` with every `session_id` of `file`, decoding only that
/// column; nothing for a file without it.
async fn for_each_session_id(
    table: &DeltaTable,
    file: &SegmentFile,
    mut visit: impl FnMut(&str),
) -> Result<(), StoreError> {
    let bytes = segment_bytes(table, file).await?;
    let parquet = |e| StoreError::Delta(DeltaTableError::Parquet { source: e });
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet)?;
    let Some(column) = builder
        .schema()
        .fields()
        .iter()
        .position(|f| f.name() == "session_id")
    else {
        return Ok(());
    };
    let mask = ProjectionMask::roots(builder.parquet_schema(), [column]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(parquet)?;
    for batch in reader {
        let batch = batch?;
        let ids = batch.column(0).as_string_opt::<i32>().ok_or_else(|| {
            StoreError::InvalidTable(format!("{}: session_id is not utf8", file.path))
        })?;
        ids.iter().flatten().for_each(&mut visit);
    }
    Ok(())
}

/// True for the rows of `batch` whose `session_id` is not in `sessions`.
fn sessions_keep_mask(
    batch: &RecordBatch,
    sessions: &HashSet<String>,
) -> Result<BooleanArray, StoreError> {
    let ids = batch
        .column_by_name("session_id")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| StoreError::InvalidTable("derived rows lack a utf8 session_id".into()))?;
    Ok(ids
        .iter()
        .map(|id| Some(!id.is_some_and(|id| sessions.contains(id))))
        .collect())
}

impl EventStore {
    /// The sessions with events in the `events` segments that the commits
    /// after version `since`, up to and including `until`, added with a data
    /// change (ingests, judge annotations, and the segments an erasure
    /// rewrote; not compaction). Reads only the `session_id` column of those
    /// segments.
    ///
    /// Returns `None` when a commit of that range is no longer in the Delta
    /// log (cleaned up), or `since > until`: the caller must then rebuild in
    /// full.
    ///
    /// Errors: Delta, Parquet or object-store errors.
    pub async fn sessions_touched_since(
        &self,
        since: u64,
        until: u64,
    ) -> Result<Option<HashSet<String>>, StoreError> {
        if since > until {
            return Ok(None);
        }
        let Some(table) = self.load_table(crate::EVENTS_TABLE).await? else {
            return Ok(None);
        };
        let log = table.log_store();
        let mut sessions = HashSet::new();
        for version in since + 1..=until {
            let Some(bytes) = log.read_commit_entry(version as _).await? else {
                return Ok(None);
            };
            for line in bytes.split(|b| *b == b'\n') {
                let Ok(action) = serde_json::from_slice::<Value>(line) else {
                    continue;
                };
                let Some(add) = action.get("add") else {
                    continue;
                };
                if add.get("dataChange").and_then(Value::as_bool) == Some(false) {
                    continue;
                }
                let (Some(path), Some(size)) = (
                    add.get("path").and_then(Value::as_str),
                    add.get("size").and_then(Value::as_i64),
                ) else {
                    continue;
                };
                let file = SegmentFile {
                    path: path.to_string(),
                    size,
                    rows: None,
                    partition_values: Default::default(),
                };
                segment_sessions(&table, &file, &mut sessions).await?;
            }
        }
        Ok(Some(sessions))
    }
}

/// Adds the `session_id` values of `file` to `sessions`.
async fn segment_sessions(
    table: &DeltaTable,
    file: &SegmentFile,
    sessions: &mut HashSet<String>,
) -> Result<(), StoreError> {
    for_each_session_id(table, file, |id| {
        if !sessions.contains(id) {
            sessions.insert(id.to_string());
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::{Array, ArrayRef, ListBuilder, StringArray, StringBuilder};
    use deltalake::arrow::datatypes::{DataType, Field, Schema};

    /// A `turns`-like batch: `session_id`, `event_ids` and one `extra` column.
    fn batch(extra: &str, sessions: &[&str]) -> RecordBatch {
        let mut ids = ListBuilder::new(StringBuilder::new());
        for s in sessions {
            ids.values().append_value(format!("e-{s}"));
            ids.append(true);
        }
        let ids = ids.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("session_id", DataType::Utf8, false),
            Field::new("event_ids", ids.data_type().clone(), true),
            Field::new(extra, DataType::Utf8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(sessions.to_vec())),
            Arc::new(ids),
            Arc::new(StringArray::from(vec!["x"; sessions.len()])),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn lineage(version: &str) -> DerivedLineage {
        DerivedLineage {
            events_version: 1,
            job: "turns".into(),
            job_version: version.into(),
            params: serde_json::Map::new(),
        }
    }

    #[tokio::test]
    async fn a_job_version_with_new_columns_rewrites_the_table_and_refuses_a_partial_update() {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open(dir.path().to_str().unwrap()).unwrap();
        let old = batch("context", &["s1", "s2"]);
        store
            .replace_derived_table("turns", old.schema(), vec![old], &lineage("v2"))
            .await
            .unwrap();
        let new = batch("context_tail", &["s1"]);
        // Replacing some sessions' rows would leave the others in the old columns.
        let mut writer = store.derived_writer("turns", new.schema()).await.unwrap();
        writer.write(new.clone()).await.unwrap();
        let partial = store
            .commit_derived(
                vec![writer],
                DerivedReplace::Sessions(HashSet::from(["s1".to_string()])),
                &lineage("v3"),
            )
            .await;
        let Err(refused) = partial else {
            panic!("a partial update with new columns was committed");
        };
        let message = refused.to_string();
        assert!(message.contains("derive --full"), "{message}");
        // A full rebuild takes the new columns.
        store
            .replace_derived_table("turns", new.schema(), vec![new], &lineage("v3"))
            .await
            .unwrap();
        let table = store.derived_table("turns").await.unwrap().unwrap();
        let names: Vec<String> = table_arrow_schema(&table)
            .unwrap()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["session_id", "event_ids", "context_tail"]);
    }
}
