//! Derived tables: Delta tables beside `events` (`turns`, `trajectories`,
//! `rewards`, `dedupe_clusters`, ...), each rebuilt whole by a job and
//! recording the `events` version it was built from.
//!
//! Every derived table carries a `session_id` [utf8] column and an
//! `event_ids` [list<utf8>] column (the events each row was derived from), so
//! that `trajectory erase` can remove everything derived from erased events.

use std::collections::HashMap;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::{Action, MetadataExt, StructType};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::events::MAX_COMMIT_ATTEMPTS;
use crate::maintenance::{remove_action, table_arrow_schema};
use crate::segments::{active_segments, commit, write_segments, CommitFailure};
use crate::{EventStore, StoreError};

/// Names of the derived tables a store may hold, in build order. The query
/// engine registers each that exists; erasure visits each.
pub const DERIVED_TABLES: &[&str] = &["turns", "trajectories", "rewards", "dedupe_clusters"];

/// Columns every derived table must have (see the module docs).
pub const DERIVED_LINEAGE_COLUMNS: &[&str] = &["session_id", "event_ids"];

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
        for _attempt in 0..MAX_COMMIT_ATTEMPTS {
            let table = self.ensure_table(name, &schema, &[]).await?;
            let mut actions = Vec::new();
            // A new job version may change the schema: commit the new one.
            let current = table_arrow_schema(&table)?;
            if current.fields() != schema.fields() {
                let kernel: StructType = schema.as_ref().try_into_kernel()?;
                let metadata =
                    MetadataExt::with_schema(table.snapshot()?.metadata().clone(), &kernel)
                        .map_err(|e| StoreError::Delta(DeltaTableError::Generic(e.to_string())))?;
                actions.push(Action::Metadata(metadata));
            }
            let now = chrono::Utc::now().timestamp_millis();
            for file in active_segments(&table)? {
                actions.push(Action::Remove(remove_action(&file, now, true)));
            }
            let adds = write_segments(&table, batches.clone(), None).await?;
            actions.extend(adds.into_iter().map(Action::Add));
            let mut metadata = serde_json::Map::new();
            metadata.insert(
                "trajectory.lineage".into(),
                serde_json::to_value(lineage).unwrap_or(Value::Null),
            );
            metadata.insert("trajectory.job".into(), json!(lineage.job));
            metadata.insert("trajectory.operation".into(), json!("derive"));
            let operation = DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: None,
                predicate: None,
            };
            match commit(&table, actions, operation, metadata).await {
                Ok(version) => return Ok(version),
                Err(CommitFailure::Conflict) => continue,
                Err(CommitFailure::Failed(e)) => return Err(e),
            }
        }
        Err(StoreError::Delta(DeltaTableError::Generic(format!(
            "could not replace {name}: too many concurrent commits"
        ))))
    }

    /// The derived table `name` at its latest version, or `None` if no job has
    /// built it yet.
    pub async fn derived_table(&self, name: &str) -> Result<Option<DeltaTable>, StoreError> {
        self.load_table(name).await
    }

    /// The lineage recorded by the latest build of `name`, or `None` if the
    /// table does not exist (or was written by something else).
    pub async fn derived_lineage(&self, name: &str) -> Result<Option<DerivedLineage>, StoreError> {
        let Some(table) = self.load_table(name).await? else {
            return Ok(None);
        };
        let mut history = table.history(Some(1));
        while let Some(commit) = history.next().await {
            let info: HashMap<String, Value> = commit?.info;
            if let Some(value) = info.get("trajectory.lineage") {
                return Ok(serde_json::from_value(value.clone()).ok());
            }
        }
        Ok(None)
    }
}
