//! Staged appends: events handed over chunk by chunk, buffered per `date`
//! partition up to a byte limit and written as segments, committed once. An
//! ingest of any size keeps only the buffer in memory, and still lands in
//! one atomic Delta commit.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use deltalake::arrow::array::{Array, BooleanArray, Date32Array, RecordBatch, StringArray};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::kernel::{Action, Add};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::json;
use trajectory_schema::{event_schema, EVENTS_PARTITION_COLUMN};

use crate::events::{
    existing_event_ids, keep_fresh_rows, sorted_by_session_and_seq, sorted_runs_by_session_and_seq,
    AppendOutcome, CommitInfo, MAX_COMMIT_ATTEMPTS,
};
use crate::maintenance::table_arrow_schema;
use crate::segments::{commit, read_segment, write_segments, CommitFailure, SegmentFile};
use crate::{EventStore, StoreError, EVENTS_TABLE};

/// A 128-bit key of an event id (blake3 of the id): what the staged
/// append remembers per row, 16 bytes instead of the id string.
fn id_key(id: &str) -> u128 {
    let hash = blake3::hash(id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    u128::from_le_bytes(bytes)
}

/// Arrow bytes of deduplicated rows an append buffers across `date`
/// partitions before it writes the partitions no chunk has touched for
/// longest (then the largest) out as segments.
///
/// Buffering per partition makes a segment hold a partition's rows from
/// many chunks (fewer, larger files) and keeps only one partition's Parquet
/// writer (one set of column encoders and codec contexts) alive per core.
/// An ingest reads its sources oldest first, so a day is usually complete
/// by the time it is written: one segment per day from a buffer of a few
/// days (32 MiB held 1 GB of generated history as 487 segments, one per
/// day, at 414 MB peak RSS).
pub const STAGE_BUFFER_BYTES: usize = 32 * 1024 * 1024;

/// A buffered partition that this many chunks in a row
/// ([`StagedAppend::stage_batches`] calls) added no rows to, and that lies
/// before the oldest day of the latest chunk, is written before the buffer
/// is full (once it holds [`EARLY_WRITE_MIN_SHARE`] of its limit).
///
/// An ingest reads its sources oldest first, so such a day is complete:
/// the reading has passed it and no recent chunk touched it. Writing it
/// then rather than when the buffer overflows leaves only the last few days
/// to write after the last chunk, when the reader threads are done and only
/// the writes use the cores (with a full 32 MiB buffer, the last 0.19 s of
/// the 100 MB ingest ran on 1.4 cores), and holds less in memory. The
/// "passed" condition keeps the days of a source spanning the whole history
/// (a cron run log, `commands.log`, read first by its first record) in the
/// buffer until the transcripts of those days are read; a day that a later
/// source still touches (a SQLite store, read last) gets a second segment,
/// which compaction merges.
const IDLE_STAGES_BEFORE_WRITE: u64 = 2;

/// Idle days are written early only once the buffer holds more than this
/// share (1 / N) of its limit: a history smaller than that is written whole
/// at the commit, one segment per day, as before idle days were written.
const EARLY_WRITE_MIN_SHARE: usize = 4;

/// The rows of one `date` partition waiting to be written.
#[derive(Default)]
struct Buffered {
    batches: Vec<RecordBatch>,
    /// Arrow bytes of `batches`.
    bytes: usize,
    /// The [`StagedAppend::stage`] call that last added rows.
    last_staged: u64,
}

/// An append in progress: segments written, not yet committed. Dropping it
/// without [`StagedAppend::commit`] leaves only unreferenced files, which
/// `vacuum` removes.
pub struct StagedAppend {
    table: DeltaTable,
    adds: Vec<Add>,
    /// Deduplicated rows not yet written, per `date` partition.
    buffered: BTreeMap<i32, Buffered>,
    /// Calls of [`StagedAppend::stage`] so far (the clock of
    /// [`Buffered::last_staged`]).
    stages: u64,
    /// The oldest `date` (days since the epoch) the latest chunk added rows
    /// to: how far the reading has got.
    reading_from: Option<i32>,
    buffered_bytes: usize,
    buffer_limit: usize,
    /// Partitions being sorted, encoded and written (at most one per core),
    /// while the next chunks are staged.
    writing: tokio::task::JoinSet<Result<Vec<Add>, StoreError>>,
    /// Keys of the ids staged so far (duplicates within the run are dropped).
    staged: HashSet<u128>,
    /// `date` partitions (days since the epoch) the staged rows fall in.
    dates: BTreeSet<i32>,
    rows_added: usize,
    rows_already_present: usize,
}

impl EventStore {
    /// Starts a staged append to `events` (creating the table if needed).
    pub async fn begin_append(&self) -> Result<StagedAppend, StoreError> {
        let table = self
            .ensure_table(EVENTS_TABLE, &event_schema(), &[EVENTS_PARTITION_COLUMN])
            .await?;
        Ok(StagedAppend {
            table,
            adds: Vec::new(),
            buffered: BTreeMap::new(),
            stages: 0,
            reading_from: None,
            buffered_bytes: 0,
            buffer_limit: STAGE_BUFFER_BYTES,
            writing: tokio::task::JoinSet::new(),
            staged: HashSet::new(),
            dates: BTreeSet::new(),
            rows_added: 0,
            rows_already_present: 0,
        })
    }
}

impl StagedAppend {
    /// Rows staged so far (after deduplication).
    pub fn rows_staged(&self) -> usize {
        self.rows_added
    }

    /// Sets how many Arrow bytes of rows are buffered across partitions
    /// before segments are written (default [`STAGE_BUFFER_BYTES`]).
    pub fn with_buffer_limit(mut self, bytes: usize) -> StagedAppend {
        self.buffer_limit = bytes;
        self
    }

    /// Deduplicates `batch` (event schema) against the table and against
    /// what was staged before, and buffers its rows per `date` partition.
    /// Complete days (idle for [`IDLE_STAGES_BEFORE_WRITE`] calls and
    /// before the latest chunk's oldest day, once the buffer holds
    /// [`EARLY_WRITE_MIN_SHARE`] of its limit) and, while the buffer holds
    /// more than its limit, the least recently staged then largest, are
    /// sorted by (`session_id`, `seq`, `event_id`) and written as segments; the writes go on in the background (at most
    /// one per core) and [`StagedAppend::commit`] writes the rest and waits
    /// for them.
    ///
    /// Errors: a schema mismatch; scan, Parquet or storage errors.
    pub async fn stage(&mut self, batch: RecordBatch) -> Result<(), StoreError> {
        self.stage_batches(vec![batch]).await
    }

    /// [`StagedAppend::stage`] for the batches of one chunk (event schema),
    /// deduplicated as one: the table is scanned once for all of them.
    /// Batches from [`trajectory_schema::events_to_day_batches`] (one day
    /// each, sorted) are buffered as they are and, when a day is written
    /// from one such batch, written without a copy.
    ///
    /// Errors: a schema mismatch; scan, Parquet or storage errors.
    pub async fn stage_batches(&mut self, batches: Vec<RecordBatch>) -> Result<(), StoreError> {
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        if batches.is_empty() {
            return Ok(());
        }
        let existing = existing_event_ids(&self.table, &batches).await?;
        self.stages += 1;
        let mut oldest_date: Option<i32> = None;
        for batch in batches {
            let fresh = keep_fresh_rows(&batch, &existing)?;
            let fresh = self.drop_staged(&fresh)?;
            self.rows_already_present += batch.num_rows() - fresh.num_rows();
            if fresh.num_rows() == 0 {
                continue;
            }
            let ids = string_column(&fresh, "event_id")?;
            self.staged.extend(ids.iter().flatten().map(id_key));
            if let Some(dates) = fresh
                .column_by_name(EVENTS_PARTITION_COLUMN)
                .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
            {
                self.dates.extend(dates.iter().flatten());
            }
            self.rows_added += fresh.num_rows();
            for (date, rows) in split_by_date(&fresh)? {
                oldest_date = Some(oldest_date.map_or(date, |d| d.min(date)));
                let bytes = batch_bytes(&rows);
                let slot = self.buffered.entry(date).or_default();
                slot.batches.push(rows);
                slot.bytes += bytes;
                slot.last_staged = self.stages;
                self.buffered_bytes += bytes;
            }
        }
        if oldest_date.is_some() {
            self.reading_from = oldest_date;
        }
        self.write_partitions(self.partitions_to_write()).await
    }

    /// The buffered partitions to write now: once the buffer holds more
    /// than [`EARLY_WRITE_MIN_SHARE`] of its limit, every partition the
    /// last [`IDLE_STAGES_BEFORE_WRITE`] chunks did not touch and the
    /// reading has passed (read oldest-first, such a day is complete: one
    /// segment); then, while the buffer is still over its limit, the least
    /// recently staged and largest. So writing keeps pace with reading
    /// instead of stalling it in bursts, and what is left for
    /// [`StagedAppend::commit`] to write after the last chunk (when only the
    /// writes can use the cores) is the last few days.
    fn partitions_to_write(&self) -> Vec<i32> {
        let early = self.buffered_bytes > self.buffer_limit / EARLY_WRITE_MIN_SHARE;
        let mut by_age: Vec<(u64, usize, i32)> = self
            .buffered
            .iter()
            .map(|(date, b)| (b.last_staged, b.bytes, *date))
            .collect();
        by_age.sort_by_key(|(last, bytes, _)| (*last, std::cmp::Reverse(*bytes)));
        let mut remaining = self.buffered_bytes;
        let mut dates = Vec::new();
        for (last, bytes, date) in by_age {
            let complete = early
                && self.stages - last >= IDLE_STAGES_BEFORE_WRITE
                && self.reading_from.is_some_and(|reading| date < reading);
            if !complete && remaining <= self.buffer_limit {
                break;
            }
            remaining -= bytes;
            dates.push(date);
        }
        dates
    }

    /// Starts writing the buffered rows of `dates` as one segment per
    /// partition, up to one partition per core at a time; returns once the
    /// last one has started (the writes go on while the next chunk is
    /// staged; [`StagedAppend::finish_writes`] waits for them).
    async fn write_partitions(&mut self, dates: Vec<i32>) -> Result<(), StoreError> {
        let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
        for date in dates {
            let Some(Buffered { batches, bytes, .. }) = self.buffered.remove(&date) else {
                continue;
            };
            self.buffered_bytes -= bytes;
            tracing::debug!(date, bytes, batches = batches.len(), "writing a partition");
            while self.writing.len() >= parallel {
                if let Some(done) = self.writing.join_next().await {
                    self.adds.extend(joined(done)?);
                }
            }
            let table = self.table.clone();
            self.writing.spawn(async move {
                let sorted = sorted_runs_by_session_and_seq(&batches)?;
                drop(batches);
                write_segments(&table, sorted, None).await
            });
        }
        Ok(())
    }

    /// Waits for the partitions being written.
    async fn finish_writes(&mut self) -> Result<(), StoreError> {
        while let Some(done) = self.writing.join_next().await {
            self.adds.extend(joined(done)?);
        }
        Ok(())
    }

    /// Writes every buffered partition and waits for all writes.
    async fn write_buffered(&mut self) -> Result<(), StoreError> {
        let dates: Vec<i32> = self.buffered.keys().copied().collect();
        self.write_partitions(dates).await?;
        self.finish_writes().await
    }

    /// Drops rows whose id was staged by an earlier chunk.
    fn drop_staged(&self, batch: &RecordBatch) -> Result<RecordBatch, StoreError> {
        if self.staged.is_empty() {
            return Ok(batch.clone());
        }
        let ids = string_column(batch, "event_id")?;
        let keep: BooleanArray = ids
            .iter()
            .map(|id| Some(!self.staged.contains(&id_key(id.unwrap_or_default()))))
            .collect();
        if keep.true_count() == batch.num_rows() {
            return Ok(batch.clone());
        }
        Ok(filter_record_batch(batch, &keep)?)
    }

    /// Commits everything staged in one Delta commit carrying `info`.
    ///
    /// When another writer committed first, the table is reloaded and the
    /// staged rows are checked against it: if the winner stored none of
    /// them the same segments are committed on top; otherwise the staged
    /// segments are rewritten without those rows first. Each event is
    /// stored once whichever writer wins.
    ///
    /// Errors: Delta errors; nothing is visible then.
    pub async fn commit(mut self, info: CommitInfo) -> Result<AppendOutcome, StoreError> {
        self.write_buffered().await?;
        if self.adds.is_empty() {
            return Ok(AppendOutcome {
                version: None,
                rows_added: 0,
                rows_already_present: self.rows_already_present,
            });
        }
        for _attempt in 0..MAX_COMMIT_ATTEMPTS {
            let mut metadata = info.facts.clone();
            metadata.insert("trajectory.ingest_id".into(), json!(info.ingest_id));
            metadata.insert("trajectory.rows_added".into(), json!(self.rows_added));
            let operation = DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: Some(vec![EVENTS_PARTITION_COLUMN.to_string()]),
                predicate: None,
            };
            let actions = self.adds.iter().cloned().map(Action::Add).collect();
            match commit(&self.table, actions, operation, metadata).await {
                Ok(version) => {
                    return Ok(AppendOutcome {
                        version: Some(version),
                        rows_added: self.rows_added,
                        rows_already_present: self.rows_already_present,
                    })
                }
                Err(CommitFailure::Conflict) => {
                    tracing::info!(
                        "another writer committed first; checking its rows against ours"
                    );
                    self.table.update_state().await?;
                    self.drop_rows_stored_by_others().await?;
                    if self.adds.is_empty() {
                        return Ok(AppendOutcome {
                            version: None,
                            rows_added: 0,
                            rows_already_present: self.rows_already_present,
                        });
                    }
                }
                Err(CommitFailure::Failed(e)) => return Err(e),
            }
        }
        Err(StoreError::Delta(DeltaTableError::Generic(format!(
            "gave up after {MAX_COMMIT_ATTEMPTS} commit conflicts with concurrent writers"
        ))))
    }

    /// After losing a race: rewrites the staged segments without the rows
    /// the table now holds.
    async fn drop_rows_stored_by_others(&mut self) -> Result<(), StoreError> {
        let stored = stored_keys(&self.table, &self.dates, &self.staged).await?;
        if stored.is_empty() {
            return Ok(());
        }
        let schema = table_arrow_schema(&self.table)?;
        let mut kept = Vec::new();
        for add in std::mem::take(&mut self.adds) {
            let file = SegmentFile {
                path: add.path.clone(),
                size: add.size,
                rows: None,
                partition_values: add.partition_values.clone(),
            };
            for batch in read_segment(&self.table, &file, &schema).await? {
                let ids = string_column(&batch, "event_id")?;
                let keep: BooleanArray = ids
                    .iter()
                    .map(|id| Some(!stored.contains(&id_key(id.unwrap_or_default()))))
                    .collect();
                kept.push(filter_record_batch(&batch, &keep)?);
            }
        }
        let removed = stored.len();
        self.rows_added = self.rows_added.saturating_sub(removed);
        self.rows_already_present += removed;
        for key in &stored {
            self.staged.remove(key);
        }
        let kept: Vec<RecordBatch> = kept.into_iter().filter(|b| b.num_rows() > 0).collect();
        if let Some(sorted) = sorted_by_session_and_seq(&kept)? {
            self.adds = write_segments(&self.table, vec![sorted], None).await?;
        }
        Ok(())
    }
}

/// Keys among `staged` that the table holds in the `dates` partitions.
async fn stored_keys(
    table: &DeltaTable,
    dates: &BTreeSet<i32>,
    staged: &HashSet<u128>,
) -> Result<HashSet<u128>, StoreError> {
    use deltalake::datafusion::prelude::{col, lit, SessionContext};
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state())?;
    ctx.register_table(EVENTS_TABLE, table.table_provider().await?)?;
    let filter = dates
        .iter()
        .map(|d| lit(deltalake::datafusion::scalar::ScalarValue::Date32(Some(*d))))
        .collect::<Vec<_>>();
    let frame = ctx
        .table(EVENTS_TABLE)
        .await?
        .filter(col(EVENTS_PARTITION_COLUMN).in_list(filter, false))?
        .select(vec![col("event_id")])?;
    let mut found = HashSet::new();
    for part in frame.collect().await? {
        let ids = deltalake::arrow::compute::cast(
            part.column(0),
            &deltalake::arrow::datatypes::DataType::Utf8,
        )?;
        let ids = ids.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
            StoreError::Delta(DeltaTableError::Generic("event_id is not utf8".into()))
        })?;
        for id in ids.iter().flatten() {
            let key = id_key(id);
            if staged.contains(&key) {
                found.insert(key);
            }
        }
    }
    Ok(found)
}

/// The rows of `batch` per `date` partition (days since the epoch), in
/// their order within the batch.
fn split_by_date(batch: &RecordBatch) -> Result<Vec<(i32, RecordBatch)>, StoreError> {
    let dates = batch
        .column_by_name(EVENTS_PARTITION_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
        .ok_or_else(|| {
            StoreError::Delta(DeltaTableError::Generic(format!(
                "batch has no date32 column {EVENTS_PARTITION_COLUMN}"
            )))
        })?;
    let mut rows: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
    for (row, date) in dates.iter().enumerate() {
        // The column is not nullable; a null would be a bug upstream, and
        // Delta would refuse it at write time with a clear error.
        rows.entry(date.unwrap_or_default())
            .or_default()
            .push(row as u32);
    }
    // One date: the batch as it is. Several: a copy per date (a zero-copy
    // slice would keep the whole chunk alive until its last slice is written).
    if rows.len() == 1 {
        let date = rows.keys().next().copied().unwrap_or_default();
        return Ok(vec![(date, batch.clone())]);
    }
    rows.into_iter()
        .map(|(date, indices)| {
            let indices = deltalake::arrow::array::UInt32Array::from(indices);
            Ok((
                date,
                deltalake::arrow::compute::take_record_batch(batch, &indices)?,
            ))
        })
        .collect()
}

/// Arrow bytes `batch` holds.
fn batch_bytes(batch: &RecordBatch) -> usize {
    batch.get_array_memory_size()
}

/// The segments a partition-writing task produced, or its error.
fn joined(
    done: Result<Result<Vec<Add>, StoreError>, tokio::task::JoinError>,
) -> Result<Vec<Add>, StoreError> {
    done.map_err(|e| {
        StoreError::Delta(DeltaTableError::Generic(format!(
            "segment writer task failed: {e}"
        )))
    })?
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, StoreError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| {
            StoreError::Delta(DeltaTableError::Generic(format!(
                "batch has no utf8 column {name}"
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use trajectory_schema::{events_to_batch, Event, EventKind};

    /// One event per day in `days`, ids prefixed by `chunk`.
    fn chunk(chunk: &str, days: &[&str]) -> Vec<RecordBatch> {
        let events: Vec<Event> = days
            .iter()
            .map(|day| {
                let ts = DateTime::parse_from_rfc3339(&format!("{day}T12:00:00Z"))
                    .unwrap()
                    .with_timezone(&Utc);
                let mut e = Event::new(
                    format!("{chunk}-{day}"),
                    ts,
                    EventKind::LlmCall,
                    "test",
                    "ing",
                    ts,
                );
                e.session_id = Some("s".into());
                e
            })
            .collect();
        vec![events_to_batch(&events).unwrap()]
    }

    fn day(date: &str) -> i32 {
        let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        (date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
    }

    /// Segments per `date` value in the committed table.
    fn segments_per_day(table: &DeltaTable) -> BTreeMap<String, usize> {
        let mut days = BTreeMap::new();
        for segment in crate::segments::active_segments(table).unwrap() {
            let date = segment.partition_values["date"].clone().unwrap();
            *days.entry(date).or_default() += 1;
        }
        days
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_day_the_reading_passed_and_no_recent_chunk_touched_is_written_early() {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open(dir.path().to_str().unwrap()).unwrap();
        let mut staged = store.begin_append().await.unwrap();
        // A source spanning the history (03-01 and 03-05), then sources
        // read oldest first.
        staged
            .stage_batches(chunk("1", &["2026-03-01", "2026-03-05"]))
            .await
            .unwrap();
        staged
            .stage_batches(chunk("2", &["2026-03-02"]))
            .await
            .unwrap();
        assert_eq!(staged.buffered.len(), 3, "nothing is idle yet");
        // Far under the limit, but over the share that allows early writes.
        staged.buffer_limit = staged.buffered_bytes * 3;
        staged
            .stage_batches(chunk("3", &["2026-03-02", "2026-03-03"]))
            .await
            .unwrap();
        assert!(staged.buffered_bytes < staged.buffer_limit);
        // 03-01 is idle and before the reading (03-02): written. 03-05 is
        // idle too, but the reading has not got there.
        assert_eq!(
            staged.buffered.keys().copied().collect::<Vec<_>>(),
            [day("2026-03-02"), day("2026-03-03"), day("2026-03-05")]
        );
        staged.finish_writes().await.unwrap();
        assert_eq!(staged.adds.len(), 1);
        // A later chunk touching a written day gives it a second segment.
        staged
            .stage_batches(chunk("4", &["2026-03-01"]))
            .await
            .unwrap();
        let info = CommitInfo {
            ingest_id: "ing".into(),
            facts: serde_json::Map::new(),
        };
        let outcome = staged.commit(info).await.unwrap();
        assert_eq!(outcome.rows_added, 6);
        let table = store.load_table(EVENTS_TABLE).await.unwrap().unwrap();
        assert_eq!(
            segments_per_day(&table),
            BTreeMap::from([
                ("2026-03-01".to_string(), 2),
                ("2026-03-02".to_string(), 1),
                ("2026-03-03".to_string(), 1),
                ("2026-03-05".to_string(), 1),
            ])
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_history_under_the_early_write_share_is_written_at_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open(dir.path().to_str().unwrap()).unwrap();
        let mut staged = store.begin_append().await.unwrap();
        for (i, days) in [
            ["2026-03-01"],
            ["2026-03-02"],
            ["2026-03-03"],
            ["2026-03-04"],
        ]
        .iter()
        .enumerate()
        {
            staged
                .stage_batches(chunk(&i.to_string(), days))
                .await
                .unwrap();
        }
        // Tiny against the default 32 MiB limit: nothing written yet.
        assert_eq!(staged.buffered.len(), 4);
        staged.finish_writes().await.unwrap();
        assert!(staged.adds.is_empty());
    }
}
