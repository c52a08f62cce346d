//! Erasure: remove events, and everything derived from them, for good.
//!
//! `erase` (1) finds the matching events, (2) rewrites every segment of
//! `events` that holds one without those rows, in one commit that also
//! appends an `erasure` event (the selector and the counts, never content),
//! (3) removes the rows of every derived table whose `event_ids` include an
//! erased event, (4) vacuums with zero retention so the old segments are
//! deleted from storage, and (5) lists every registered export whose
//! manifest lineage included an erased event.
//!
//! Content never reaches the Delta log: tables keep statistics only on id
//! and time columns (see [`crate::events::table_properties`]).

use std::collections::{BTreeSet, HashSet};

use deltalake::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::datatypes::DataType;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::Action;
use deltalake::protocol::DeltaOperation;
use deltalake::{DeltaTable, DeltaTableError};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use trajectory_schema::{events_to_batch, Event, EventKind};

use crate::derived::DERIVED_TABLES;
use crate::events::MAX_COMMIT_ATTEMPTS;
use crate::maintenance::{remove_action, sort_rows, table_arrow_schema};
use crate::segments::{active_segments, commit, read_segment, write_segments, CommitFailure};
use crate::{EventStore, StoreError, EVENTS_TABLE};

/// Which events to erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErasureSelector {
    /// Every event of one session (`session_id`).
    Session(String),
    /// Every event of one agent (`agent_id`).
    Agent(String),
    /// Every event matching a SQL predicate over the `events` columns.
    Where(String),
}

impl ErasureSelector {
    /// The SQL predicate over `events`.
    pub fn predicate(&self) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        match self {
            ErasureSelector::Session(id) => format!("session_id = {}", quote(id)),
            ErasureSelector::Agent(id) => format!("agent_id = {}", quote(id)),
            ErasureSelector::Where(sql) => sql.clone(),
        }
    }

    /// How the selector is recorded: ids verbatim, a free predicate only as
    /// its sha256 (it may quote the very content being erased).
    fn recorded(&self) -> Value {
        match self {
            ErasureSelector::Session(id) => json!({"session_id": id}),
            ErasureSelector::Agent(id) => json!({"agent_id": id}),
            ErasureSelector::Where(sql) => {
                json!({"where_sha256": hex::encode(Sha256::digest(sql.as_bytes()))})
            }
        }
    }
}

/// Rows removed from one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableErasure {
    pub table: String,
    pub rows_removed: usize,
    /// Matching rows still present after the erasure (always 0 on success).
    pub rows_left: usize,
    pub segments_rewritten: usize,
    pub version: Option<u64>,
}

/// An export that contained erased events.
#[derive(Debug, Clone, Serialize)]
pub struct AffectedExport {
    pub export_id: String,
    pub target: String,
    pub manifest_path: String,
    /// Shard files (relative to the dataset directory) holding erased rows;
    /// every shard of the export when its lineage does not name shards.
    pub shards: Vec<String>,
    /// Dataset rows built from erased events.
    pub rows: usize,
    /// Whether the manifest could be read (it may have been moved).
    pub manifest_found: bool,
}

/// What `erase` did: printed as the receipt.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureReceipt {
    pub erasure_id: String,
    pub selector: Value,
    pub matched_events: usize,
    pub sessions: usize,
    pub tables: Vec<TableErasure>,
    pub files_vacuumed: usize,
    pub exports: Vec<AffectedExport>,
}

impl ErasureReceipt {
    /// Whether no matching row is left anywhere.
    pub fn is_complete(&self) -> bool {
        self.tables.iter().all(|t| t.rows_left == 0)
    }
}

impl EventStore {
    /// Erases the events `selector` matches and everything derived from them,
    /// then vacuums (zero retention: time travel to earlier versions ends).
    ///
    /// Errors: [`StoreError::NoEventsTable`]; a scan error for a bad
    /// predicate; Delta errors. A failure before the events commit leaves the
    /// store unchanged; after it, running the same erase again finishes it.
    pub async fn erase(&self, selector: &ErasureSelector) -> Result<ErasureReceipt, StoreError> {
        let predicate = selector.predicate();
        let erasure_id = uuid::Uuid::new_v4().to_string();
        let mut tables = Vec::new();
        let mut matched_events = 0;
        let mut erased: HashSet<String> = HashSet::new();
        let mut sessions: BTreeSet<String> = BTreeSet::new();
        let mut events_done = false;
        for _attempt in 0..MAX_COMMIT_ATTEMPTS {
            let table = self
                .load_table(EVENTS_TABLE)
                .await?
                .ok_or_else(|| StoreError::NoEventsTable(self.location().root().to_string()))?;
            let matches = matching_events(&table, &predicate).await?;
            erased = matches.ids;
            sessions = matches.sessions;
            matched_events = erased.len();
            let schema = table_arrow_schema(&table)?;
            let mut actions = Vec::new();
            let mut kept = Vec::new();
            let mut rewritten = 0;
            let now = chrono::Utc::now();
            for file in active_segments(&table)? {
                let date = file.partition_values.get("date").cloned().flatten();
                if !matches.dates.is_empty() && date.is_some_and(|d| !matches.dates.contains(&d)) {
                    continue;
                }
                let batches = read_segment(&table, &file, &schema).await?;
                let mut removed_here = 0;
                let mut remaining = Vec::new();
                for batch in batches {
                    let keep = keep_mask(&batch, |row_ids| {
                        row_ids.is_some_and(|id| erased.contains(id))
                    })?;
                    removed_here += keep.false_count();
                    remaining.push(filter_record_batch(&batch, &keep)?);
                }
                if removed_here > 0 {
                    rewritten += 1;
                    actions.push(Action::Remove(remove_action(
                        &file,
                        now.timestamp_millis(),
                        true,
                    )));
                    kept.extend(remaining.into_iter().filter(|b| b.num_rows() > 0));
                }
            }
            let mut record = Event::new(
                format!("erasure-{erasure_id}"),
                now,
                EventKind::Erasure,
                "trajectory",
                &erasure_id,
                now,
            );
            record.attributes = Some(
                json!({
                    "erasure_id": erasure_id,
                    "selector": selector.recorded(),
                    "matched_events": matched_events,
                    "sessions": sessions.len(),
                    "segments_rewritten": rewritten,
                })
                .to_string(),
            );
            let record = events_to_batch(&[record])?;
            let mut to_write: Vec<RecordBatch> = Vec::new();
            if !kept.is_empty() {
                let merged = deltalake::arrow::compute::concat_batches(&schema, &kept)?;
                to_write.push(sort_rows(&merged)?);
            }
            to_write.push(record);
            let adds = write_segments(&table, to_write, None).await?;
            actions.extend(adds.into_iter().map(Action::Add));
            let operation = DeltaOperation::Delete {
                predicate: Some(format!("erasure {erasure_id}")),
            };
            let metadata = serde_json::Map::from_iter([
                ("trajectory.operation".to_string(), json!("erase")),
                ("trajectory.erasure_id".to_string(), json!(erasure_id)),
                ("trajectory.rows_removed".to_string(), json!(matched_events)),
            ]);
            match commit(&table, actions, operation, metadata).await {
                Ok(version) => {
                    tables.push(TableErasure {
                        table: EVENTS_TABLE.to_string(),
                        rows_removed: matched_events,
                        rows_left: 0,
                        segments_rewritten: rewritten,
                        version: Some(version),
                    });
                    events_done = true;
                    break;
                }
                Err(CommitFailure::Conflict) => continue,
                Err(CommitFailure::Failed(e)) => return Err(e),
            }
        }
        if !events_done {
            return Err(StoreError::Delta(DeltaTableError::Generic(
                "erasure kept losing commit races with other writers; run it again".into(),
            )));
        }
        for name in DERIVED_TABLES {
            if let Some(outcome) = self
                .erase_derived(name, &erased, &sessions, selector)
                .await?
            {
                tables.push(outcome);
            }
        }
        let vacuumed = self.vacuum(chrono::Duration::zero(), false).await?;
        let files_vacuumed = vacuumed.iter().map(|v| v.files_deleted).sum();

        // What is left: the events predicate again, and derived rows again.
        let table = self.load_table(EVENTS_TABLE).await?;
        if let (Some(table), Some(entry)) = (table, tables.first_mut()) {
            let left = matching_events(&table, &predicate).await?;
            entry.rows_left = left.ids.len();
        }
        for entry in tables.iter_mut().skip(1) {
            if let Some(table) = self.load_table(&entry.table).await? {
                entry.rows_left =
                    count_derived_matches(&table, &erased, &sessions, selector).await?;
            }
        }
        let exports = self.affected_exports(&erased).await?;
        Ok(ErasureReceipt {
            erasure_id,
            selector: selector.recorded(),
            matched_events,
            sessions: sessions.len(),
            tables,
            files_vacuumed,
            exports,
        })
    }

    async fn erase_derived(
        &self,
        name: &str,
        erased: &HashSet<String>,
        sessions: &BTreeSet<String>,
        selector: &ErasureSelector,
    ) -> Result<Option<TableErasure>, StoreError> {
        for _attempt in 0..MAX_COMMIT_ATTEMPTS {
            let Some(table) = self.load_table(name).await? else {
                return Ok(None);
            };
            let schema = table_arrow_schema(&table)?;
            let now = chrono::Utc::now().timestamp_millis();
            let mut actions = Vec::new();
            let mut kept = Vec::new();
            let mut rows_removed = 0;
            let mut rewritten = 0;
            for file in active_segments(&table)? {
                let batches = read_segment(&table, &file, &schema).await?;
                let mut removed_here = 0;
                let mut remaining = Vec::new();
                for batch in batches {
                    let keep = derived_keep_mask(&batch, erased, sessions, selector)?;
                    removed_here += keep.false_count();
                    remaining.push(filter_record_batch(&batch, &keep)?);
                }
                if removed_here > 0 {
                    rows_removed += removed_here;
                    rewritten += 1;
                    actions.push(Action::Remove(remove_action(&file, now, true)));
                    kept.extend(remaining.into_iter().filter(|b| b.num_rows() > 0));
                }
            }
            if actions.is_empty() {
                return Ok(Some(TableErasure {
                    table: name.to_string(),
                    rows_removed: 0,
                    rows_left: 0,
                    segments_rewritten: 0,
                    version: None,
                }));
            }
            let adds = write_segments(&table, kept, None).await?;
            actions.extend(adds.into_iter().map(Action::Add));
            let metadata = serde_json::Map::from_iter([
                ("trajectory.operation".to_string(), json!("erase")),
                ("trajectory.rows_removed".to_string(), json!(rows_removed)),
            ]);
            let operation = DeltaOperation::Delete {
                predicate: Some("erasure".into()),
            };
            match commit(&table, actions, operation, metadata).await {
                Ok(version) => {
                    return Ok(Some(TableErasure {
                        table: name.to_string(),
                        rows_removed,
                        rows_left: 0,
                        segments_rewritten: rewritten,
                        version: Some(version),
                    }))
                }
                Err(CommitFailure::Conflict) => continue,
                Err(CommitFailure::Failed(e)) => return Err(e),
            }
        }
        Err(StoreError::Delta(DeltaTableError::Generic(format!(
            "erasure of {name} kept losing commit races; run it again"
        ))))
    }

    /// Registered exports whose manifest lineage includes an erased event.
    async fn affected_exports(
        &self,
        erased: &HashSet<String>,
    ) -> Result<Vec<AffectedExport>, StoreError> {
        let mut out = Vec::new();
        for record in self.exports().await? {
            let Ok(text) = std::fs::read_to_string(&record.manifest_path) else {
                out.push(AffectedExport {
                    export_id: record.export_id,
                    target: record.target,
                    manifest_path: record.manifest_path,
                    shards: Vec::new(),
                    rows: 0,
                    manifest_found: false,
                });
                continue;
            };
            let Ok(manifest) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let mut rows = 0;
            let mut shards: BTreeSet<String> = BTreeSet::new();
            let mut unnamed = false;
            for entry in manifest
                .get("lineage")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let hit = entry
                    .get("event_ids")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(|id| erased.contains(id));
                if hit {
                    rows += 1;
                    match entry.get("shard").and_then(Value::as_str) {
                        Some(shard) => {
                            shards.insert(shard.to_string());
                        }
                        None => unnamed = true,
                    }
                }
            }
            if rows == 0 {
                continue;
            }
            if unnamed {
                for shard in manifest
                    .get("shards")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(path) = shard.get("path").and_then(Value::as_str) {
                        shards.insert(path.to_string());
                    }
                }
            }
            out.push(AffectedExport {
                export_id: record.export_id,
                target: record.target,
                manifest_path: record.manifest_path,
                shards: shards.into_iter().collect(),
                rows,
                manifest_found: true,
            });
        }
        Ok(out)
    }
}

struct Matches {
    ids: HashSet<String>,
    sessions: BTreeSet<String>,
    /// `date` partitions (YYYY-MM-DD) holding matches.
    dates: HashSet<String>,
}

/// The events `predicate` matches (erasure records themselves excluded).
async fn matching_events(table: &DeltaTable, predicate: &str) -> Result<Matches, StoreError> {
    let ctx = SessionContext::new();
    table.update_datafusion_session(&ctx.state())?;
    ctx.register_table(EVENTS_TABLE, table.table_provider().await?)?;
    let sql = format!(
        "SELECT event_id, session_id, CAST(date AS VARCHAR) FROM {EVENTS_TABLE} \
         WHERE kind <> 'erasure' AND ({predicate})"
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    let mut matches = Matches {
        ids: HashSet::new(),
        sessions: BTreeSet::new(),
        dates: HashSet::new(),
    };
    for batch in batches {
        let ids = as_utf8(batch.column(0))?;
        let sessions = as_utf8(batch.column(1))?;
        let dates = as_utf8(batch.column(2))?;
        for row in 0..batch.num_rows() {
            if ids.is_valid(row) {
                matches.ids.insert(ids.value(row).to_string());
            }
            if sessions.is_valid(row) {
                matches.sessions.insert(sessions.value(row).to_string());
            }
            if dates.is_valid(row) {
                matches.dates.insert(dates.value(row).to_string());
            }
        }
    }
    Ok(matches)
}

fn as_utf8(
    column: &deltalake::arrow::array::ArrayRef,
) -> Result<deltalake::arrow::array::StringArray, StoreError> {
    let cast = deltalake::arrow::compute::cast(column, &DataType::Utf8)?;
    Ok(cast.as_string::<i32>().clone())
}

/// A keep-mask over `batch` from its `event_id` column: false where `erase` says so.
fn keep_mask(
    batch: &RecordBatch,
    erase: impl Fn(Option<&str>) -> bool,
) -> Result<BooleanArray, StoreError> {
    let Some(column) = batch.column_by_name("event_id") else {
        return Ok(BooleanArray::from(vec![true; batch.num_rows()]));
    };
    let ids = as_utf8(column)?;
    Ok(ids.iter().map(|id| Some(!erase(id))).collect())
}

/// Rows of a derived table to keep: those whose `event_ids` include no
/// erased event (and, erasing a session or agent by id, whose `session_id`
/// is not an erased session).
fn derived_keep_mask(
    batch: &RecordBatch,
    erased: &HashSet<String>,
    sessions: &BTreeSet<String>,
    selector: &ErasureSelector,
) -> Result<BooleanArray, StoreError> {
    let rows = batch.num_rows();
    let mut keep = vec![true; rows];
    if let Some(column) = batch.column_by_name("event_ids") {
        let lists = match column.data_type() {
            DataType::List(_) => Some(column.as_list::<i32>().clone()),
            DataType::LargeList(_) => None,
            _ => None,
        };
        if let Some(lists) = lists {
            for (row, slot) in keep.iter_mut().enumerate() {
                if lists.is_null(row) {
                    continue;
                }
                let values = as_utf8(&lists.value(row))?;
                if values.iter().flatten().any(|id| erased.contains(id)) {
                    *slot = false;
                }
            }
        } else if let DataType::LargeList(_) = column.data_type() {
            let lists = column.as_list::<i64>();
            for (row, slot) in keep.iter_mut().enumerate() {
                if lists.is_null(row) {
                    continue;
                }
                let values = as_utf8(&lists.value(row))?;
                if values.iter().flatten().any(|id| erased.contains(id)) {
                    *slot = false;
                }
            }
        }
    }
    if !matches!(selector, ErasureSelector::Where(_)) {
        if let Some(column) = batch.column_by_name("session_id") {
            let ids = as_utf8(column)?;
            for (row, slot) in keep.iter_mut().enumerate() {
                if ids.is_valid(row) && sessions.contains(ids.value(row)) {
                    *slot = false;
                }
            }
        }
    }
    Ok(BooleanArray::from(keep))
}

async fn count_derived_matches(
    table: &DeltaTable,
    erased: &HashSet<String>,
    sessions: &BTreeSet<String>,
    selector: &ErasureSelector,
) -> Result<usize, StoreError> {
    let schema = table_arrow_schema(table)?;
    let mut count = 0;
    for file in active_segments(table)? {
        for batch in read_segment(table, &file, &schema).await? {
            count += derived_keep_mask(&batch, erased, sessions, selector)?.false_count();
        }
    }
    Ok(count)
}
