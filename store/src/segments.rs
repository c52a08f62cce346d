//! Segments: the Parquet files of a table, written, hashed, read back and
//! committed by the store itself so that every segment's sha256 is recorded.
//!
//! Every table the store writes goes through [`write_segments`] (delta-rs's
//! `RecordBatchWriter`: zstd, partition split, file statistics) and
//! [`commit`] (one Delta commit with put-if-absent, no silent retries). The
//! commit's `commitInfo` carries `trajectory.segments`, a map from each added
//! segment's path to `{"sha256": hex, "size": bytes, "rows": n}`; the same
//! hash is set as the `sha256` tag of the `add` action. `trajectory verify`
//! checks the files against both.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;

use buoyant_kernel::expressions::Scalar;
use indexmap::IndexMap;

use deltalake::arrow::array::{Array, ArrayRef, Date32Array, RecordBatch};
use deltalake::arrow::datatypes::{DataType, SchemaRef};
use deltalake::datafile::writer::{DeltaWriter as PartitionedWriter, WriterConfig};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::DeltaOperation;
use deltalake::table::config::TablePropertiesExt;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError, ObjectStore, Path};
use futures::TryStreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::events::{segment_writer_properties, SegmentEncoding};
use crate::hashed_writes::HashedWrites;
use crate::maintenance::table_arrow_schema;
use crate::StoreError;

/// Metadata key of the per-segment hashes in a commit's `commitInfo`.
pub const SEGMENTS_METADATA_KEY: &str = "trajectory.segments";

/// Tag key of a segment's sha256 on its `add` action.
pub const SHA256_TAG: &str = "sha256";

/// Default target size of a segment written by compaction: 128 MiB.
pub const DEFAULT_TARGET_SEGMENT_BYTES: u64 = 128 * 1024 * 1024;

/// A file the table references, as the store needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// Path relative to the table root (`date=2026-03-08/part-….parquet`).
    pub path: String,
    /// Size in bytes recorded in the log.
    pub size: i64,
    /// Row count recorded in the file statistics, when present.
    pub rows: Option<usize>,
    /// Partition values (`date` → `2026-03-08`).
    pub partition_values: HashMap<String, Option<String>>,
}

/// The active segments of `table` at its loaded version.
pub fn active_segments(table: &DeltaTable) -> Result<Vec<SegmentFile>, StoreError> {
    let snapshot = table.snapshot()?;
    Ok(snapshot
        .log_data()
        .iter()
        .map(|file| SegmentFile {
            path: file.path().to_string(),
            size: file.size(),
            rows: file.num_records(),
            partition_values: file.partition_values_map(),
        })
        .collect())
}

/// Writes `batches` (with the table's full schema, partition columns
/// included) as new segments of `table`, each at most about
/// `target_file_bytes` when given, and returns their `add` actions with the
/// `sha256` tag set: hashed from the bytes as they are written when the
/// batches go to the partition writer (`HashedWrites`), else read back.
/// Segments with a target size (compaction) are encoded for reading, others
/// for writing speed ([`SegmentEncoding`]). Nothing is committed: on failure
/// the files are orphans that `vacuum` removes.
///
/// Errors: Delta/Parquet errors from writing; object-store errors reading back.
pub(crate) async fn write_segments(
    table: &DeltaTable,
    batches: Vec<RecordBatch>,
    target_file_bytes: Option<u64>,
) -> Result<Vec<Add>, StoreError> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(Vec::new());
    }
    // Compaction (the only caller with a target size) writes for reading;
    // everything else writes for speed.
    let encoding = if target_file_bytes.is_some() {
        SegmentEncoding::Compacted
    } else {
        SegmentEncoding::Write
    };
    let properties = segment_writer_properties(encoding)?;
    let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
    // Segments the partition writer writes are hashed on their way out;
    // the others are read back.
    let hashed = Arc::new(HashedWrites::new(table.object_store()));
    let mut adds = match one_day_partitions(table, &batches)? {
        Some(partitions) => {
            let mut writer = partition_writer(
                table,
                Arc::clone(&hashed) as Arc<dyn ObjectStore>,
                properties,
                target_file_bytes,
            )?;
            for (batch, values) in batches.into_iter().zip(partitions) {
                writer.write_partition(batch, &values).await?;
            }
            writer.close().await?
        }
        None => {
            let mut writer = RecordBatchWriter::for_table(table)?
                .with_writer_properties(properties)
                .with_target_file_size(target_file_bytes.unwrap_or(0));
            for batch in batches {
                writer.write(batch).await?;
            }
            writer.flush().await?
        }
    };
    let store = table.object_store();
    for add in &mut adds {
        let sha256 = match hashed.sha256(&segment_location(&add.path)?) {
            Some(sha256) => sha256,
            None => hash_segment(store.as_ref(), &add.path).await?.0,
        };
        add.tags
            .get_or_insert_with(HashMap::new)
            .insert(SHA256_TAG.to_string(), Some(sha256));
    }
    Ok(adds)
}

/// Partition column → value of one segment, as delta-rs's writers take them.
type PartitionValues = IndexMap<String, Scalar>;

/// The partition values of each of `batches` when each of them lies in one
/// `date` partition and has exactly the table's Arrow schema (every write of
/// the `events` table); `None` otherwise.
///
/// delta-rs's `RecordBatchWriter` splits every batch by partition with a
/// `take` of all its columns, a full copy even when the batch holds one
/// partition. Such batches go to the partition writer underneath
/// ([`partition_writer`], `write_partition`) instead, which skips that copy;
/// the files, their statistics and their `add` actions are the same (both
/// build them with delta-rs's `PartitionWriter`). Other tables and mixed
/// batches keep the `RecordBatchWriter`.
///
/// Errors: the table has no loaded snapshot, or its schema does not convert
/// to Arrow.
fn one_day_partitions(
    table: &DeltaTable,
    batches: &[RecordBatch],
) -> Result<Option<Vec<PartitionValues>>, StoreError> {
    let snapshot = table.snapshot()?;
    let partition_columns: Vec<String> = snapshot.metadata().partition_columns().to_vec();
    let [partition_column] = partition_columns.as_slice() else {
        return Ok(None);
    };
    let schema = table_arrow_schema(table)?;
    let mut partitions = Vec::with_capacity(batches.len());
    for batch in batches {
        if batch.schema() != schema {
            return Ok(None);
        }
        let Some(day) = batch
            .column_by_name(partition_column)
            .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
            .and_then(single_day)
        else {
            return Ok(None);
        };
        partitions.push(IndexMap::from([(
            partition_column.clone(),
            Scalar::Date(day),
        )]));
    }
    Ok(Some(partitions))
}

/// delta-rs's partition writer for `table`, writing through `object_store`
/// (the table's store, possibly wrapped), configured from the table's
/// settings as `RecordBatchWriter::for_table` configures it.
fn partition_writer(
    table: &DeltaTable,
    object_store: Arc<dyn ObjectStore>,
    properties: WriterProperties,
    target_file_bytes: Option<u64>,
) -> Result<PartitionedWriter, StoreError> {
    let snapshot = table.snapshot()?;
    let metadata = snapshot.metadata();
    let stats_columns = metadata
        .configuration()
        .get("delta.dataSkippingStatsColumns")
        .map(|v| v.split(',').map(str::to_string).collect());
    let config = WriterConfig::new(
        table_arrow_schema(table)?,
        metadata.partition_columns().to_vec(),
        Some(properties),
        target_file_bytes.and_then(NonZeroU64::new),
        None,
        snapshot.table_config().num_indexed_cols(),
        stats_columns,
    );
    Ok(PartitionedWriter::new(object_store, config))
}

/// The one day every row of `days` holds; `None` when rows differ, a row is
/// null, or there are no rows.
fn single_day(days: &Date32Array) -> Option<i32> {
    if days.is_empty() || days.null_count() > 0 {
        return None;
    }
    let first = days.value(0);
    days.values().iter().all(|d| *d == first).then_some(first)
}

/// sha256 (hex) and byte length of the segment at `path` (table-relative).
pub(crate) async fn hash_segment(
    store: &dyn ObjectStore,
    path: &str,
) -> Result<(String, u64), StoreError> {
    let location = segment_location(path)?;
    let mut stream = store
        .get(&location)
        .await
        .map_err(|e| StoreError::Delta(DeltaTableError::ObjectStore { source: e }))?
        .into_stream();
    let mut hasher = Sha256::new();
    let mut length = 0u64;
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| StoreError::Delta(DeltaTableError::ObjectStore { source: e }))?
    {
        length += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((hex::encode(hasher.finalize()), length))
}

/// The object-store path of a table-relative segment path (percent-decoded).
pub(crate) fn segment_location(path: &str) -> Result<Path, StoreError> {
    Path::from_url_path(path)
        .map_err(|e| StoreError::Delta(DeltaTableError::Generic(e.to_string())))
}

/// The commit metadata entry describing `adds` (path → sha256, size, rows).
fn segments_metadata(adds: &[Add]) -> Value {
    let mut map = serde_json::Map::new();
    for add in adds {
        let sha256 = add
            .tags
            .as_ref()
            .and_then(|t| t.get(SHA256_TAG).cloned().flatten());
        let rows = add
            .stats
            .as_deref()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .and_then(|v| v.get("numRecords").and_then(Value::as_u64));
        map.insert(
            add.path.clone(),
            json!({"sha256": sha256, "size": add.size, "rows": rows}),
        );
    }
    Value::Object(map)
}

/// Why a commit did not land.
#[derive(Debug)]
pub(crate) enum CommitFailure {
    /// Another writer committed the version first; reload and redo the work.
    Conflict,
    /// Anything else.
    Failed(StoreError),
}

/// Commits `actions` (plus the segment hashes of their `add`s) in one Delta
/// commit on top of `table`'s loaded version. Never retries by itself: a
/// concurrent commit surfaces as [`CommitFailure::Conflict`], so the caller
/// can recompute (e.g. dedupe again) before trying again.
pub(crate) async fn commit(
    table: &DeltaTable,
    actions: Vec<Action>,
    operation: DeltaOperation,
    mut metadata: serde_json::Map<String, Value>,
) -> Result<u64, CommitFailure> {
    let adds: Vec<Add> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Add(add) => Some(add.clone()),
            _ => None,
        })
        .collect();
    metadata.insert(SEGMENTS_METADATA_KEY.into(), segments_metadata(&adds));
    let snapshot = table
        .snapshot()
        .map_err(|e| CommitFailure::Failed(e.into()))?;
    let properties = CommitProperties::default()
        .with_create_checkpoint(true)
        .with_cleanup_expired_logs(Some(false))
        .with_max_retries(0);
    let result = CommitBuilder::from(properties)
        .with_actions(actions)
        .with_app_metadata(metadata.into_iter().collect())
        .build(Some(snapshot), table.log_store(), operation)
        .await;
    match result {
        Ok(done) => Ok(done.version()),
        Err(DeltaTableError::Transaction { source }) => match source {
            TransactionError::VersionAlreadyExists(_)
            | TransactionError::MaxCommitAttempts(_)
            | TransactionError::CommitConflict(_) => Err(CommitFailure::Conflict),
            other => Err(CommitFailure::Failed(StoreError::Delta(
                DeltaTableError::Transaction { source: other },
            ))),
        },
        Err(DeltaTableError::VersionAlreadyExists(_)) => Err(CommitFailure::Conflict),
        Err(e) => Err(CommitFailure::Failed(e.into())),
    }
}

/// Reads one segment back as a batch of `schema` (the table's full schema),
/// restoring partition columns (stored only in the path) from
/// `file.partition_values`.
///
/// Errors: object-store or Parquet errors; a partition value that does not
/// parse as the column's type.
pub(crate) async fn read_segment(
    table: &DeltaTable,
    file: &SegmentFile,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, StoreError> {
    let bytes = segment_bytes(table, file).await?;
    let parquet = |e| StoreError::Delta(DeltaTableError::Parquet { source: e });
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(parquet)?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(parquet)?;
    let parts = reader.collect::<Result<Vec<RecordBatch>, _>>()?;
    parts
        .into_iter()
        .map(|part| with_table_schema(part, file, schema))
        .collect()
}

/// The whole content of one segment.
///
/// Errors: object-store errors.
pub(crate) async fn segment_bytes(
    table: &DeltaTable,
    file: &SegmentFile,
) -> Result<bytes::Bytes, StoreError> {
    let store: Arc<dyn ObjectStore> = table.object_store();
    store
        .get(&segment_location(&file.path)?)
        .await
        .map_err(|e| StoreError::Delta(DeltaTableError::ObjectStore { source: e }))?
        .bytes()
        .await
        .map_err(|e| StoreError::Delta(DeltaTableError::ObjectStore { source: e }))
}

/// Re-assembles a file batch into the table schema: file columns by name,
/// partition columns from the path's values, other missing columns as nulls.
fn with_table_schema(
    part: RecordBatch,
    file: &SegmentFile,
    schema: &SchemaRef,
) -> Result<RecordBatch, StoreError> {
    let rows = part.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        if let Some(column) = part.column_by_name(field.name()) {
            let column = if column.data_type() == field.data_type() {
                Arc::clone(column)
            } else {
                deltalake::arrow::compute::cast(column, field.data_type())?
            };
            columns.push(column);
        } else if let Some(value) = file.partition_values.get(field.name()) {
            columns.push(partition_column(field.data_type(), value.as_deref(), rows)?);
        } else {
            columns.push(deltalake::arrow::array::new_null_array(
                field.data_type(),
                rows,
            ));
        }
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

fn partition_column(
    data_type: &DataType,
    value: Option<&str>,
    rows: usize,
) -> Result<ArrayRef, StoreError> {
    match (data_type, value) {
        (_, None) => Ok(deltalake::arrow::array::new_null_array(data_type, rows)),
        (DataType::Date32, Some(text)) => {
            let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| {
                StoreError::Delta(DeltaTableError::Generic(format!(
                    "partition value {text:?} is not a date: {e}"
                )))
            })?;
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            let days = (day - epoch).num_days() as i32;
            Ok(Arc::new(Date32Array::from(vec![days; rows])))
        }
        (other, Some(text)) => {
            let strings = deltalake::arrow::array::StringArray::from(vec![text; rows]);
            Ok(deltalake::arrow::compute::cast(&strings, other)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventStore, EVENTS_TABLE};
    use chrono::{DateTime, Utc};
    use trajectory_schema::{
        event_schema, events_to_batch, Event, EventKind, EVENTS_PARTITION_COLUMN,
    };

    fn events_on(days: &[&str]) -> RecordBatch {
        let events: Vec<Event> = days
            .iter()
            .enumerate()
            .map(|(i, day)| {
                let ts = DateTime::parse_from_rfc3339(&format!("{day}T12:00:00Z"))
                    .unwrap()
                    .with_timezone(&Utc);
                let mut e = Event::new(format!("id{i}"), ts, EventKind::LlmCall, "test", "ing", ts);
                e.session_id = Some("s".into());
                e.text = Some(format!("text {i}"));
                e
            })
            .collect();
        events_to_batch(&events).unwrap()
    }

    /// A store in a temporary directory with its `events` table.
    async fn events_table() -> (tempfile::TempDir, DeltaTable) {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open(dir.path().to_str().unwrap()).unwrap();
        let table = store
            .ensure_table(EVENTS_TABLE, &event_schema(), &[EVENTS_PARTITION_COLUMN])
            .await
            .unwrap();
        (dir, table)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_day_batches_skip_the_partition_split_and_write_the_same_segments() {
        let (_dir, table) = events_table().await;

        let one_day = vec![
            events_on(&["2026-03-08", "2026-03-08"]),
            events_on(&["2026-03-09"]),
        ];
        let partitions = one_day_partitions(&table, &one_day)
            .unwrap()
            .expect("one-day batches of the table's schema take the partition writer");
        assert_eq!(
            partitions,
            vec![
                IndexMap::from([("date".to_string(), Scalar::Date(20520))]),
                IndexMap::from([("date".to_string(), Scalar::Date(20521))]),
            ]
        );
        let two_days = vec![events_on(&["2026-03-08", "2026-03-09"])];
        assert!(one_day_partitions(&table, &two_days).unwrap().is_none());

        // Both paths give segments under the day's directory with the same
        // partition values, row counts and statistics columns.
        let fast = write_segments(&table, one_day, None).await.unwrap();
        let split = write_segments(&table, two_days, None).await.unwrap();
        let describe = |adds: &[Add]| {
            let mut out: Vec<(String, u64, Vec<String>)> = adds
                .iter()
                .map(|a| {
                    let stats: Value = serde_json::from_str(a.stats.as_deref().unwrap()).unwrap();
                    let mut keys: Vec<String> = stats["minValues"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .cloned()
                        .collect();
                    keys.sort();
                    assert!(a.path.starts_with(&format!(
                        "date={}/",
                        a.partition_values["date"].as_deref().unwrap()
                    )));
                    assert!(a.tags.as_ref().unwrap()[SHA256_TAG].is_some());
                    (
                        a.partition_values["date"].clone().unwrap(),
                        stats["numRecords"].as_u64().unwrap(),
                        keys,
                    )
                })
                .collect();
            out.sort();
            out
        };
        let fast = describe(&fast);
        let split = describe(&split);
        assert_eq!(
            fast.iter()
                .map(|(d, n, _)| (d.clone(), *n))
                .collect::<Vec<_>>(),
            vec![("2026-03-08".to_string(), 2), ("2026-03-09".to_string(), 1)]
        );
        assert_eq!(
            split
                .iter()
                .map(|(d, n, _)| (d.clone(), *n))
                .collect::<Vec<_>>(),
            vec![("2026-03-08".to_string(), 1), ("2026-03-09".to_string(), 1)]
        );
        assert_eq!(fast[0].2, split[0].2, "the same columns carry statistics");
        assert!(fast[0].2.contains(&"ts".to_string()));
        assert!(!fast[0].2.contains(&"date".to_string()));
    }

    /// The bulk text columns are cut into pages of at most
    /// `BULK_TEXT_PAGE_BYTES` (plus the value that crosses the limit), in
    /// the files the partition writer actually writes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bulk_text_columns_are_written_in_small_pages() {
        use crate::events::BULK_TEXT_PAGE_BYTES;
        use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};

        let (dir, table) = events_table().await;
        // 48 lines of 24 KiB: 1.1 MiB of `raw`, one page at parquet's default.
        let line_bytes = 24 * 1024;
        let batch = events_on(&["2026-03-08"; 48]);
        let raw: Vec<String> = (0..48)
            .map(|i| format!("{i:04}").repeat(line_bytes / 4))
            .collect();
        let mut columns = batch.columns().to_vec();
        let index = batch.schema().index_of("raw").unwrap();
        columns[index] = Arc::new(deltalake::arrow::array::StringArray::from(raw));
        let batch = RecordBatch::try_new(batch.schema(), columns).unwrap();

        let adds = write_segments(&table, vec![batch], None).await.unwrap();
        assert_eq!(adds.len(), 1);
        let bytes = std::fs::read(dir.path().join("events").join(&adds[0].path)).unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        let row_group = reader.get_row_group(0).unwrap();
        let column = (0..row_group.num_columns())
            .find(|&i| row_group.metadata().column(i).column_path().string() == "raw")
            .unwrap();
        let pages: Vec<usize> = row_group
            .get_column_page_reader(column)
            .unwrap()
            .map(|page| page.unwrap().buffer().len())
            .collect();
        // 1.1 MiB in pages of at most 128 KiB plus the line that crosses it
        // (parquet's default cut it in two pages of ~1 MiB and ~100 KiB).
        assert!(
            pages
                .iter()
                .all(|&bytes| bytes <= BULK_TEXT_PAGE_BYTES + line_bytes + 64),
            "{pages:?}"
        );
        assert!(pages.len() >= 6, "{pages:?}");
    }

    /// Ingest and compaction both write Data Page v2 (the values are
    /// compressed straight from the encoder's buffer) with v1's value
    /// encodings: plain, or a dictionary for the dimension columns, never
    /// parquet's v2 fallbacks (`DELTA_*`), in the files actually written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn segments_are_data_page_v2_with_plain_or_dictionary_values() {
        use deltalake::parquet::basic::Encoding;
        use deltalake::parquet::column::page::Page;
        use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};

        let (dir, table) = events_table().await;
        let batch = events_on(&["2026-03-08"; 40]);
        for target in [None, Some(1 << 20)] {
            let adds = write_segments(&table, vec![batch.clone()], target)
                .await
                .unwrap();
            assert_eq!(adds.len(), 1);
            let bytes = std::fs::read(dir.path().join("events").join(&adds[0].path)).unwrap();
            let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
            let row_group = reader.get_row_group(0).unwrap();
            let mut data_pages = 0;
            for column in 0..row_group.num_columns() {
                let name = row_group.metadata().column(column).column_path().string();
                for page in row_group.get_column_page_reader(column).unwrap() {
                    let page = page.unwrap();
                    match page {
                        Page::DictionaryPage { .. } => {}
                        Page::DataPageV2 { encoding, .. } => {
                            data_pages += 1;
                            assert!(
                                matches!(encoding, Encoding::PLAIN | Encoding::RLE_DICTIONARY),
                                "{name}: {encoding:?} ({target:?})"
                            );
                        }
                        other => panic!("{name}: {:?} ({target:?})", other.page_type()),
                    }
                }
            }
            assert!(data_pages >= row_group.num_columns(), "{target:?}");
        }
    }
}
