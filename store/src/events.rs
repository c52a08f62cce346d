//! The `events` Delta table: append with idempotence, load at a version.

use std::collections::{BTreeSet, HashSet};

use deltalake::arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, RecordBatch, StringArray,
};
use deltalake::arrow::compute::{
    filter_record_batch, lexsort_to_indices, LexicographicalComparator, SortColumn,
};
use deltalake::arrow::datatypes::{DataType, Int64Type};
use deltalake::datafusion::prelude::{col, lit, SessionContext};
use std::collections::HashMap;

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::StructType;
use deltalake::parquet::basic::{Compression, Encoding, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use deltalake::parquet::schema::types::ColumnPath;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::Value;
use trajectory_schema::{event_schema, EVENTS_PARTITION_COLUMN};

use crate::{StoreError, StoreLocation};

/// Name of the events table under the store root.
pub const EVENTS_TABLE: &str = "events";

/// Extra facts recorded in the Delta commit (`commitInfo`) of an append.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// The ingest run that wrote the rows (also in every row's `ingest_id`).
    pub ingest_id: String,
    /// Free-form facts (files read, quarantine count, tool version).
    pub facts: serde_json::Map<String, Value>,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The table version the rows landed in; `None` if nothing new was committed.
    pub version: Option<u64>,
    /// Rows written.
    pub rows_added: usize,
    /// Rows dropped because their `event_id` was already in the table or
    /// appeared earlier in the same batch.
    pub rows_already_present: usize,
}

/// The event store rooted at one location.
#[derive(Debug, Clone)]
pub struct EventStore {
    location: StoreLocation,
}

impl EventStore {
    /// Opens (and for a local directory, creates) the store at `location`.
    ///
    /// Errors: see [`StoreLocation::parse`].
    pub fn open(location: &str) -> Result<EventStore, StoreError> {
        Ok(EventStore {
            location: StoreLocation::parse(location)?,
        })
    }

    /// Where the store is.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// Loads the `events` table at its latest version, or `None` if no ingest
    /// has created it yet.
    pub async fn events_table(&self) -> Result<Option<DeltaTable>, StoreError> {
        self.load_table(EVENTS_TABLE).await
    }

    /// Loads the table `name` under the root at its latest version, or `None`
    /// if it has no commit yet.
    pub(crate) async fn load_table(&self, name: &str) -> Result<Option<DeltaTable>, StoreError> {
        if let Some(root) = self.location.local_path() {
            if !root.join(name).join("_delta_log").is_dir() {
                return Ok(None);
            }
        }
        let mut table = self.location.table_builder(name)?.build()?;
        match table.load().await {
            Ok(()) => Ok(table.version().is_some().then_some(table)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The table `name`, loaded if it exists, else an unloaded handle that a
    /// first write creates.
    pub(crate) async fn table_for_write(&self, name: &str) -> Result<DeltaTable, StoreError> {
        if let Some(table) = self.load_table(name).await? {
            return Ok(table);
        }
        if let Some(root) = self.location.local_path() {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Ok(self.location.table_builder(name)?.build()?)
    }

    /// Loads the `events` table at `version` (latest when `None`).
    ///
    /// Errors: [`StoreError::NoEventsTable`] if there is no table yet; a Delta
    /// error if the version does not exist.
    pub async fn events_table_at(&self, version: Option<u64>) -> Result<DeltaTable, StoreError> {
        let mut table = self
            .events_table()
            .await?
            .ok_or_else(|| StoreError::NoEventsTable(self.location.root().to_string()))?;
        if let Some(version) = version {
            table.load_version(version).await?;
        }
        Ok(table)
    }

    /// Appends events in one Delta commit, skipping rows already present.
    ///
    /// `batch` must have [`event_schema`]. Rows whose `event_id` is already in
    /// the table, or repeats one earlier in `batch`, are dropped; the rest are
    /// sorted by (`session_id`, `seq`) and written as zstd Parquet segments
    /// partitioned by `date`, each hashed (sha256 in the commit metadata). The
    /// commit carries `info` as application metadata.
    ///
    /// Concurrency: the commit is put-if-absent and never retried blindly.
    /// When another writer committed first, the table is reloaded, the rows
    /// are deduplicated again against it and the write is redone (up to
    /// [`MAX_COMMIT_ATTEMPTS`] times), so two writers appending overlapping
    /// events store each event once.
    ///
    /// Errors: a Delta error if the commit fails; nothing is visible then.
    pub async fn append_events(
        &self,
        batch: RecordBatch,
        info: CommitInfo,
    ) -> Result<AppendOutcome, StoreError> {
        let mut staged = self.begin_append().await?;
        staged.stage(batch).await?;
        staged.commit(info).await
    }

    /// Loads the table `name`, creating it (schema, partition columns, store
    /// table properties) when it does not exist yet.
    pub(crate) async fn ensure_table(
        &self,
        name: &str,
        schema: &SchemaRef,
        partition_columns: &[&str],
    ) -> Result<DeltaTable, StoreError> {
        if let Some(table) = self.load_table(name).await? {
            return Ok(table);
        }
        let handle = self.table_for_write(name).await?;
        let columns: StructType = schema.as_ref().try_into_kernel()?;
        let created = handle
            .create()
            .with_table_name(name)
            .with_columns(columns.fields().cloned())
            .with_partition_columns(partition_columns.iter().map(|c| c.to_string()))
            .with_configuration(table_properties(name))
            .with_save_mode(SaveMode::ErrorIfExists)
            .await;
        match created {
            Ok(table) => Ok(table),
            // Another writer created it first: use theirs.
            Err(_) if self.load_table(name).await?.is_some() => self
                .load_table(name)
                .await?
                .ok_or_else(|| StoreError::NoEventsTable(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }
}

/// How many times a commit is redone after losing a race to another writer.
pub const MAX_COMMIT_ATTEMPTS: usize = 20;

/// Table properties of every table the store creates:
/// - statistics only on id/time columns (never on message text), so no
///   content reaches the Delta log, where erasure could not remove it;
/// - a log checkpoint every 10 commits;
/// - expired-log cleanup off, so the history (and the segment hashes in
///   it) stays complete.
pub fn table_properties(name: &str) -> HashMap<String, Option<String>> {
    let stats_columns = if name == EVENTS_TABLE {
        "ts,kind,agent_id,session_id,seq,provider,locality,ingested_at"
    } else {
        "session_id"
    };
    HashMap::from([
        (
            "delta.dataSkippingStatsColumns".to_string(),
            Some(stats_columns.to_string()),
        ),
        (
            "delta.checkpointInterval".to_string(),
            Some("10".to_string()),
        ),
        (
            "delta.enableExpiredLogCleanup".to_string(),
            Some("false".to_string()),
        ),
    ])
}

/// Columns of free text or unique ids: no dictionary (every value is new,
/// so the dictionary only costs a hash per value before parquet falls back)
/// and no statistics (min/max of message text would be useless for pruning,
/// and costly on megabyte lines). Names of the event schema and of the
/// derived tables; a name a table lacks is ignored.
const FREE_TEXT_COLUMNS: &[&str] = &[
    "event_id",
    "text",
    "content",
    "tool_args",
    "attributes",
    "raw",
    "line_sha256",
    "redactions",
    "error",
    "event_ids",
    "messages",
    "prompt",
    "completion",
    "chosen",
    "rejected",
];

/// Columns of dimensions and counters, stored without compression: their
/// values are dictionary indices and small integers, which zstd shrank by
/// 0 to 60 % (most not at all: `provider`, `model`, `stop_reason`, ...;
/// about 315 KB in all for the 100 MB benchmark history, 0.5 % of its
/// segments), while every reader of a compressed column chunk pays for a
/// zstd codec (parquet 59 creates a compression and a decompression context
/// per column chunk; 4 % of the audit-query profile). These are the columns
/// audit queries filter and group on. A name a table lacks is ignored.
const UNCOMPRESSED_COLUMNS: &[&str] = &[
    "kind",
    "source",
    "agent_id",
    "session_id",
    "session_key",
    "channel",
    "role",
    "provider",
    "model",
    "api",
    "locality",
    "tool_name",
    "tool_status",
    "tool_is_error",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "stop_reason",
    "latency_ms",
    "subsystem",
    "level",
    "decision",
    "status",
    "requested_provider",
    "requested_model",
    "next_provider",
    "next_model",
    "attempt",
    "redaction_policy",
    "ingest_id",
    "ingested_at",
    "schema_version",
];

/// Largest data page of a [`BULK_TEXT_COLUMNS`] column, in bytes of
/// encoded values (parquet's default: 1 MiB). Each page passes through
/// buffers of its size three times over (the encoded values, the page, the
/// compressed page zero-filled to the codec's worst case first); at 1 MiB those are
/// large allocations that the allocator serves from fresh arena memory, which
/// the kernel zeroes on first touch (a third of the page-zeroing samples of
/// the 100 MB ingest, docs/benchmarks.md). Snappy's and LZ4's windows are
/// 64 KiB, so larger pages compress no better.
pub(crate) const BULK_TEXT_PAGE_BYTES: usize = 128 * 1024;

/// Columns holding the bulk of a segment's bytes (the line, its content and
/// its text: 93 % of the uncompressed bytes of the 100 MB benchmark history),
/// stored Snappy (Parquet `SNAPPY`) in the segments an ingest or a
/// derived-table write produces and zstd in the segments compaction writes.
/// The write path is CPU-bound: zstd level 1 compresses this text at about
/// 350 MB/s, LZ4 (`lz4_flex`, parquet's `LZ4_RAW`) at about 600 MB/s and
/// Snappy (`snap`) at about 700 MB/s, and Snappy's output is 9 % (lines) to
/// 25 % (text) smaller than LZ4's, so fewer bytes are hashed and written
/// too (128 KiB pages of the benchmark corpus; docs/benchmarks.md, session
/// 23). Snappy is also the codec every Parquet reader has had longest (Spark's
/// and pyarrow's default).
/// Compaction re-encodes a partition it rewrites at zstd level 3 (an LSM
/// store's split: fast codec in the upper levels, zstd in the bottom one);
/// a partition it leaves alone (one file) keeps its Snappy columns. A name
/// a table lacks is ignored.
const BULK_TEXT_COLUMNS: &[&str] = &[
    "raw",
    "content",
    "text",
    "tool_args",
    "attributes",
    "messages",
    "prompt",
    "completion",
    "chosen",
    "rejected",
];

/// Columns of identifiers and hashes (hex and UUID text, every value new),
/// stored zstd level [`WRITE_ZSTD_LEVEL`] in the segments an ingest or a
/// derived-table write produces; every other compressed column there is
/// Snappy. Only an entropy coder shrinks high-entropy text: on the 100 MB
/// benchmark history zstd level 1 stores these five columns in 4.2 MB,
/// Snappy in 8.3 MB and LZ4 in 8.0 MB. Elsewhere Snappy is within 0.4 MB of
/// zstd over all the remaining small columns (`ts`, `seq`, `source_uri`,
/// `source_offset`, `redactions`, ...: 1.4 MB against 1.0 MB) and costs a
/// reader no codec context: parquet 59 creates a zstd compression and a
/// decompression context for every compressed column chunk it reads, 14 %
/// of the "quarantine per source" audit query over the 51 segments of that
/// history when `source_uri` was zstd (docs/benchmarks.md, session 24). A
/// name a table lacks is ignored.
const IDENTIFIER_COLUMNS: &[&str] = &[
    "event_id",
    "entry_id",
    "parent_id",
    "tool_call_id",
    "line_sha256",
];

/// zstd level of [`IDENTIFIER_COLUMNS`] in the segments an ingest or a
/// derived-table write produces: level 1 compresses about twice as fast as 3
/// for a few percent more bytes (docs/benchmarks.md).
pub(crate) const WRITE_ZSTD_LEVEL: i32 = 1;

/// zstd level of every compressed column of the segments compaction writes
/// (read many times, written once).
pub(crate) const COMPACTED_ZSTD_LEVEL: i32 = 3;

/// What a segment is encoded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentEncoding {
    /// Written by an ingest or a derived-table write: [`IDENTIFIER_COLUMNS`]
    /// zstd level [`WRITE_ZSTD_LEVEL`], the other compressed columns Snappy.
    Write,
    /// Written by compaction: zstd level [`COMPACTED_ZSTD_LEVEL`] throughout.
    Compacted,
    /// Written by a derived-table job: as [`SegmentEncoding::Write`], and
    /// [`DERIVED_HISTORY_COLUMNS`] zstd level [`WRITE_ZSTD_LEVEL`] in
    /// 1 MiB pages, without dictionary or statistics.
    Derived,
}

/// Columns of the derived tables holding conversation histories: long JSON
/// texts of messages, each written once, that zstd level 1 packs about three
/// times tighter than Snappy (a turn's context is stored as its prefix
/// turn's id plus `context_tail`, so no column repeats a session).
const DERIVED_HISTORY_COLUMNS: &[&str] = &[
    "context_tail",
    "responses",
    "next_state",
    "next_user_message",
];

/// List columns of ids (the leaf is `<name>.list.element`): no dictionary,
/// no statistics, as [`FREE_TEXT_COLUMNS`].
const ID_LIST_COLUMNS: &[&str] = &["event_ids", "turn_ids"];

/// Parquet settings of every segment the store writes: compression by
/// [`SegmentEncoding`], row groups of at most 128 Ki rows (so scans split
/// across cores and pruning by `kind`/`session_id` statistics skips whole
/// groups), page statistics on the id and time columns only, no dictionary
/// on [`FREE_TEXT_COLUMNS`], no compression on [`UNCOMPRESSED_COLUMNS`].
///
/// Pages are Data Page v2 with v1's value encodings (`PLAIN`, or
/// `RLE_DICTIONARY` where a dictionary is on; never parquet's `DELTA_*`
/// fallbacks for v2): a v2 page is compressed straight from the encoder's
/// buffer, where v1 copied it first and grew an untouched buffer to the
/// codec's worst case. A page stays compressed even where the codec did not
/// shrink it, as under v1 (no `is_compressed = false` pages, a flag readers
/// have ignored: NVIDIA/cudf#19756). Why and what it measured:
/// docs/architecture.md, "Segment encoding".
pub(crate) fn segment_writer_properties(
    encoding: SegmentEncoding,
) -> Result<WriterProperties, StoreError> {
    let zstd = |level| {
        ZstdLevel::try_new(level)
            .map(Compression::ZSTD)
            .map_err(|e| StoreError::Delta(DeltaTableError::Generic(e.to_string())))
    };
    let mut builder = WriterProperties::builder()
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_encoding(Encoding::PLAIN)
        .set_data_page_v2_compression_ratio_threshold(f64::MAX);
    builder = match encoding {
        SegmentEncoding::Write | SegmentEncoding::Derived => {
            let identifiers = zstd(WRITE_ZSTD_LEVEL)?;
            let mut builder = builder.set_compression(Compression::SNAPPY);
            for column in IDENTIFIER_COLUMNS {
                builder = builder.set_column_compression(ColumnPath::from(*column), identifiers);
            }
            builder
        }
        SegmentEncoding::Compacted => builder.set_compression(zstd(COMPACTED_ZSTD_LEVEL)?),
    };
    if encoding == SegmentEncoding::Derived {
        let histories = zstd(WRITE_ZSTD_LEVEL)?;
        for column in DERIVED_HISTORY_COLUMNS {
            let path = ColumnPath::from(*column);
            builder = builder
                .set_column_compression(path.clone(), histories)
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_statistics_enabled(path, EnabledStatistics::None);
        }
        for column in ID_LIST_COLUMNS {
            let path = ColumnPath::new(vec![column.to_string(), "list".into(), "element".into()]);
            builder = builder
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_statistics_enabled(path, EnabledStatistics::None);
        }
    }
    for column in BULK_TEXT_COLUMNS {
        builder = builder
            .set_column_data_page_size_limit(ColumnPath::from(*column), BULK_TEXT_PAGE_BYTES);
    }
    for column in FREE_TEXT_COLUMNS {
        let path = ColumnPath::from(*column);
        builder = builder
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_statistics_enabled(path, EnabledStatistics::None);
    }
    for column in UNCOMPRESSED_COLUMNS {
        builder =
            builder.set_column_compression(ColumnPath::from(*column), Compression::UNCOMPRESSED);
    }
    Ok(builder.build())
}

/// The latest `source_checkpoint` row of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub source_uri: String,
    pub source_offset: Option<i64>,
    pub source_line: Option<i64>,
    pub attributes: Option<String>,
}

impl EventStore {
    /// The latest checkpoint row per `source_uri` (by `ingested_at`, then offset).
    ///
    /// Errors: a scan error. An empty store has no checkpoints.
    pub async fn latest_checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        let Some(table) = self.events_table().await? else {
            return Ok(Vec::new());
        };
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state())?;
        ctx.register_table(EVENTS_TABLE, table.table_provider().await?)?;
        let frame = ctx
            .sql(
                "SELECT source_uri, source_offset, source_line, attributes FROM ( \
                   SELECT source_uri, source_offset, source_line, attributes, \
                     row_number() OVER (PARTITION BY source_uri \
                       ORDER BY ingested_at DESC, source_offset DESC) AS rank \
                   FROM events WHERE kind = 'source_checkpoint' AND source_uri IS NOT NULL) \
                 WHERE rank = 1",
            )
            .await?;
        let mut rows = Vec::new();
        for batch in frame.collect().await? {
            let uri = utf8_column(&batch, 0)?;
            let attributes = utf8_column(&batch, 3)?;
            let offset = deltalake::arrow::compute::cast(batch.column(1), &DataType::Int64)?;
            let offset = offset.as_primitive::<Int64Type>();
            let line = deltalake::arrow::compute::cast(batch.column(2), &DataType::Int64)?;
            let line = line.as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                rows.push(CheckpointRow {
                    source_uri: uri.value(row).to_string(),
                    source_offset: (!offset.is_null(row)).then(|| offset.value(row)),
                    source_line: (!line.is_null(row)).then(|| line.value(row)),
                    attributes: (!attributes.is_null(row))
                        .then(|| attributes.value(row).to_string()),
                });
            }
        }
        Ok(rows)
    }
}

fn utf8_column(batch: &RecordBatch, index: usize) -> Result<StringArray, StoreError> {
    let casted = deltalake::arrow::compute::cast(batch.column(index), &DataType::Utf8)?;
    Ok(casted.as_string::<i32>().clone())
}

/// The ids among the `event_id`s of `batches` that the table already holds,
/// in one scan. Only the `date` partitions the batches touch are scanned: an event's date is a
/// function of its `ts`, which is part of what its id is derived from.
pub(crate) async fn existing_event_ids(
    table: &DeltaTable,
    batches: &[RecordBatch],
) -> Result<HashSet<String>, StoreError> {
    let mut dates = BTreeSet::new();
    let mut candidates: HashSet<&str> = HashSet::new();
    for batch in batches {
        dates.extend(
            column::<Date32Array>(batch, EVENTS_PARTITION_COLUMN)?
                .iter()
                .flatten(),
        );
        candidates.extend(column::<StringArray>(batch, "event_id")?.iter().flatten());
    }
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state())?;
    ctx.register_table(EVENTS_TABLE, table.table_provider().await?)?;
    let date_filter = dates
        .into_iter()
        .map(|d| lit(deltalake::datafusion::scalar::ScalarValue::Date32(Some(d))))
        .collect::<Vec<_>>();
    let frame = ctx
        .table(EVENTS_TABLE)
        .await?
        .filter(col(EVENTS_PARTITION_COLUMN).in_list(date_filter, false))?
        .select(vec![col("event_id")])?;
    let mut found = HashSet::new();
    for part in frame.collect().await? {
        let ids = deltalake::arrow::compute::cast(part.column(0), &DataType::Utf8)?;
        let ids = ids.as_string_opt::<i32>().ok_or_else(|| {
            StoreError::Delta(DeltaTableError::Generic("event_id is not utf8".into()))
        })?;
        for id in ids.iter().flatten() {
            if candidates.contains(id) {
                found.insert(id.to_string());
            }
        }
    }
    Ok(found)
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, StoreError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            StoreError::Delta(DeltaTableError::Generic(format!(
                "batch has no column {name} of the event schema"
            )))
        })
}

/// Drops rows whose id is in `existing` or repeats an earlier row's id.
pub(crate) fn keep_fresh_rows(
    batch: &RecordBatch,
    existing: &HashSet<String>,
) -> Result<RecordBatch, StoreError> {
    if batch.schema().fields() != event_schema().fields() {
        return Err(StoreError::Delta(DeltaTableError::Generic(
            "batch does not have the events schema".into(),
        )));
    }
    let ids = column::<StringArray>(batch, "event_id")?;
    let mut seen: HashSet<&str> = HashSet::with_capacity(ids.len());
    let keep: BooleanArray = ids
        .iter()
        .map(|id| {
            let id = id.unwrap_or_default();
            Some(!existing.contains(id) && seen.insert(id))
        })
        .collect();
    if keep.true_count() == batch.num_rows() {
        return Ok(batch.clone());
    }
    Ok(filter_record_batch(batch, &keep)?)
}

/// `batches` (one schema) as one batch sorted by (`session_id`, `seq`,
/// `event_id`), copying the rows once: the sort keys are concatenated and
/// sorted, and the rows gathered from the batches in that order.
///
/// One batch already in that order is returned as it is (a shared
/// reference, no copy): what [`trajectory_schema::events_to_day_batches`]
/// gives for a day that one chunk holds.
pub(crate) fn sorted_by_session_and_seq(
    batches: &[RecordBatch],
) -> Result<Option<RecordBatch>, StoreError> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    match sort_positions(batches)? {
        None => Ok(Some(first.clone())),
        Some(positions) => Ok(Some(gather(batches, &positions)?)),
    }
}

/// A run of rows `start..start + len` of batch `batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    batch: usize,
    start: usize,
    len: usize,
}

/// Below this many rows per run on average, [`sorted_runs_by_session_and_seq`]
/// gathers the rows into one batch instead of slicing: each slice costs a
/// call per column in the Parquet writer.
const MIN_AVERAGE_RUN_ROWS: usize = 8;

/// The rows of `batches` (one schema) in (`session_id`, `seq`, `event_id`)
/// order, as slices of `batches` (no copy) whose concatenation is that
/// order, or as one gathered batch when the order is made of short runs.
///
/// A day an ingest staged from several chunks is several sorted batches
/// holding disjoint sessions (a source is read whole into one chunk), so its
/// order is a few runs of whole sessions: writing the runs in order writes
/// the same rows as the gather of [`sorted_by_session_and_seq`] without
/// copying every row of the day once more (that copy was ~4 % of a 100 MB
/// ingest's CPU). Empty for no batches.
pub(crate) fn sorted_runs_by_session_and_seq(
    batches: &[RecordBatch],
) -> Result<Vec<RecordBatch>, StoreError> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let Some(positions) = sort_positions(batches)? else {
        return Ok(vec![first.clone()]);
    };
    let runs = runs_of(&positions);
    if runs.len().saturating_mul(MIN_AVERAGE_RUN_ROWS) > positions.len() {
        return Ok(vec![gather(batches, &positions)?]);
    }
    Ok(runs
        .into_iter()
        .map(|run| batches[run.batch].slice(run.start, run.len))
        .collect())
}

/// The (batch, row) positions of the rows of `batches` in (`session_id`,
/// `seq`, `event_id`) order; `None` when `batches` is one batch already in
/// that order (or empty).
fn sort_positions(batches: &[RecordBatch]) -> Result<Option<Vec<(usize, usize)>>, StoreError> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let mut sort_columns = Vec::new();
    for name in ["session_id", "seq", "event_id"] {
        let Ok(index) = first.schema().index_of(name) else {
            continue;
        };
        let values = match batches {
            [one] => one.column(index).clone(),
            _ => {
                let parts: Vec<&dyn Array> =
                    batches.iter().map(|b| b.column(index).as_ref()).collect();
                deltalake::arrow::compute::concat(&parts)?
            }
        };
        sort_columns.push(SortColumn {
            values,
            options: None,
        });
    }
    if batches.len() == 1 && is_sorted(&sort_columns, first.num_rows())? {
        return Ok(None);
    }
    let order = lexsort_to_indices(&sort_columns, None)?;
    let mut starts = Vec::with_capacity(batches.len());
    let mut total = 0usize;
    for batch in batches {
        starts.push(total);
        total += batch.num_rows();
    }
    Ok(Some(
        order
            .values()
            .iter()
            .map(|&flat| {
                let flat = flat as usize;
                let batch = starts.partition_point(|&start| start <= flat) - 1;
                (batch, flat - starts[batch])
            })
            .collect(),
    ))
}

/// `positions` as runs of consecutive rows of one batch.
fn runs_of(positions: &[(usize, usize)]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for &(batch, row) in positions {
        match runs.last_mut() {
            Some(run) if run.batch == batch && run.start + run.len == row => run.len += 1,
            _ => runs.push(Run {
                batch,
                start: row,
                len: 1,
            }),
        }
    }
    runs
}

/// The rows at `positions` of `batches`, gathered into one batch.
fn gather(
    batches: &[RecordBatch],
    positions: &[(usize, usize)],
) -> Result<RecordBatch, StoreError> {
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    Ok(deltalake::arrow::compute::interleave_record_batch(
        &refs, positions,
    )?)
}

/// Whether rows `0..rows` of `columns` are in ascending lexicographic order
/// (each column's own sort options): one comparison per adjacent pair.
fn is_sorted(columns: &[SortColumn], rows: usize) -> Result<bool, StoreError> {
    let comparator = LexicographicalComparator::try_new(columns)?;
    Ok((1..rows).all(|row| comparator.compare(row - 1, row) != std::cmp::Ordering::Greater))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use deltalake::arrow::array::Int64Array;
    use trajectory_schema::{events_to_batch, Event, EventKind};

    #[test]
    fn ingest_segments_store_identifiers_in_zstd_the_rest_in_snappy_and_compaction_in_zstd() {
        let write = segment_writer_properties(SegmentEncoding::Write).unwrap();
        let compacted = segment_writer_properties(SegmentEncoding::Compacted).unwrap();
        let zstd = |level| Compression::ZSTD(ZstdLevel::try_new(level).unwrap());
        for column in [
            "raw",
            "content",
            "text",
            "tool_args",
            "attributes",
            "ts",
            "source_uri",
            "redactions",
        ] {
            let path = ColumnPath::from(column);
            assert_eq!(write.compression(&path), Compression::SNAPPY, "{column}");
            assert_eq!(compacted.compression(&path), zstd(3), "{column}");
        }
        for column in IDENTIFIER_COLUMNS {
            let path = ColumnPath::from(*column);
            assert_eq!(write.compression(&path), zstd(1), "{column}");
            assert_eq!(compacted.compression(&path), zstd(3), "{column}");
        }
        let id = ColumnPath::from("event_id");
        let kind = ColumnPath::from("kind");
        for properties in [&write, &compacted] {
            // The query engine skips bloom-filter pruning on that promise.
            for column in ["kind", "session_id", "event_id", "raw"] {
                let path = ColumnPath::from(column);
                assert!(properties.bloom_filter_properties(&path).is_none());
            }
        }
        assert_eq!(write.compression(&kind), Compression::UNCOMPRESSED);
        assert_eq!(compacted.compression(&kind), Compression::UNCOMPRESSED);
        for properties in [&write, &compacted] {
            let raw = ColumnPath::from("raw");
            assert_eq!(
                properties.column_data_page_size_limit(&raw),
                BULK_TEXT_PAGE_BYTES
            );
            assert_eq!(
                properties.column_data_page_size_limit(&id),
                properties.data_page_size_limit(),
                "other columns keep parquet's page size"
            );
        }
    }

    fn events(keys: &[(&str, i64)]) -> Vec<Event> {
        let ts = DateTime::parse_from_rfc3339("2026-03-08T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        keys.iter()
            .enumerate()
            .map(|(i, (session, seq))| {
                let mut e = Event::new(format!("id{i}"), ts, EventKind::UserMessage, "t", "i", ts);
                e.session_id = Some(session.to_string());
                e.seq = Some(*seq);
                e
            })
            .collect()
    }

    fn sessions_and_seqs(batch: &RecordBatch) -> Vec<(String, i64)> {
        let sessions = column::<StringArray>(batch, "session_id").unwrap();
        let seqs = column::<Int64Array>(batch, "seq").unwrap();
        (0..batch.num_rows())
            .map(|i| (sessions.value(i).to_string(), seqs.value(i)))
            .collect()
    }

    #[test]
    fn a_sorted_batch_is_kept_without_a_copy_and_others_are_sorted() {
        let sorted = events_to_batch(&events(&[("a", 1), ("a", 2), ("b", 0)])).unwrap();
        let kept = sorted_by_session_and_seq(std::slice::from_ref(&sorted))
            .unwrap()
            .unwrap();
        // The same buffers, not equal copies.
        let text = |b: &RecordBatch| b.column_by_name("event_id").unwrap().to_data();
        assert!(text(&kept).buffers()[1].ptr_eq(&text(&sorted).buffers()[1]));

        let unsorted = events_to_batch(&events(&[("b", 0), ("a", 2), ("a", 1)])).unwrap();
        let fixed = sorted_by_session_and_seq(&[unsorted]).unwrap().unwrap();
        let expected = vec![
            ("a".to_string(), 1),
            ("a".to_string(), 2),
            ("b".to_string(), 0),
        ];
        assert_eq!(sessions_and_seqs(&fixed), expected);
        // Two batches, each sorted, are merged.
        let first = events_to_batch(&events(&[("a", 2), ("b", 0)])).unwrap();
        let second = events_to_batch(&events(&[("a", 1)])).unwrap();
        let merged = sorted_by_session_and_seq(&[first, second])
            .unwrap()
            .unwrap();
        assert_eq!(sessions_and_seqs(&merged), expected);
    }

    /// The rows of `batches` one after the other.
    fn concatenated(batches: &[RecordBatch]) -> Vec<(String, i64)> {
        batches.iter().flat_map(sessions_and_seqs).collect()
    }

    #[test]
    fn runs_of_whole_sessions_are_sliced_and_short_runs_gathered() {
        let key = |session: &str, seq: i64| (session.to_string(), seq);
        // Two chunks of one day, each sorted, holding disjoint sessions
        // that interleave by name: runs of whole sessions.
        let sessions = |names: &[&str]| {
            let keys: Vec<(&str, i64)> = names
                .iter()
                .flat_map(|name| (0..10).map(move |seq| (*name, seq)))
                .collect();
            events_to_batch(&events(&keys)).unwrap()
        };
        let first = sessions(&["a", "c", "e"]);
        let second = sessions(&["b", "d"]);
        let runs = sorted_runs_by_session_and_seq(&[first.clone(), second.clone()]).unwrap();
        assert_eq!(runs.len(), 5, "one slice per session");
        let expected: Vec<(String, i64)> = ["a", "b", "c", "d", "e"]
            .iter()
            .flat_map(|s| (0..10).map(move |seq| key(s, seq)))
            .collect();
        assert_eq!(concatenated(&runs), expected);
        // Slices share the chunks' buffers.
        let ids = |b: &RecordBatch| b.column_by_name("event_id").unwrap().to_data();
        assert!(ids(&runs[0]).buffers()[1].ptr_eq(&ids(&first).buffers()[1]));
        assert_eq!(
            concatenated(&runs),
            sessions_and_seqs(
                &sorted_by_session_and_seq(&[first, second])
                    .unwrap()
                    .unwrap()
            )
        );
        // Rows interleaved one by one: gathered into one batch.
        let odd = events_to_batch(&events(&[("a", 1), ("a", 3), ("a", 5)])).unwrap();
        let even = events_to_batch(&events(&[("a", 2), ("a", 4), ("a", 6)])).unwrap();
        let gathered = sorted_runs_by_session_and_seq(&[odd, even]).unwrap();
        assert_eq!(gathered.len(), 1);
        assert_eq!(
            sessions_and_seqs(&gathered[0]),
            (1..=6).map(|seq| key("a", seq)).collect::<Vec<_>>()
        );
        // One sorted batch is kept; none gives nothing.
        let sorted = events_to_batch(&events(&[("a", 1), ("b", 0)])).unwrap();
        assert_eq!(sorted_runs_by_session_and_seq(&[sorted]).unwrap().len(), 1);
        assert!(sorted_runs_by_session_and_seq(&[]).unwrap().is_empty());
    }
}
