//! `active_branch`: for every transcript event that sits in the tree, whether
//! its entry is on the session's active branch.
//!
//! The active leaf is the last entry in file order (highest `seq`); the active
//! branch is the path from it to the root ([`trajectory_schema::tree`]).
//! Entries on other paths are abandoned sibling branches. Computed from the
//! events when the table is scanned (not stored), so it is always true to the
//! version being read.
//!
//! Columns: `event_id` (utf8), `session_id` (utf8), `entry_id` (utf8),
//! `on_active_branch` (bool). Join it to `events` on `event_id`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use deltalake::arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use deltalake::datafusion::catalog::{Session, TableProvider};
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::error::Result;
use deltalake::datafusion::logical_expr::{Expr, TableType};
use deltalake::datafusion::physical_plan::ExecutionPlan;
use deltalake::datafusion::prelude::SessionContext;
use trajectory_schema::tree::{active_branch, TreeNode};
use trajectory_store::deltalake;

/// The name the table is registered under.
pub const ACTIVE_BRANCH: &str = "active_branch";

/// Schema of [`ActiveBranchTable`].
pub fn active_branch_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("event_id", DataType::Utf8, false),
                Field::new("session_id", DataType::Utf8, true),
                Field::new("entry_id", DataType::Utf8, false),
                Field::new("on_active_branch", DataType::Boolean, false),
            ]))
        })
        .clone()
}

/// Computes the active branch of every session from `events` in `context`.
#[derive(Clone)]
pub struct ActiveBranchTable {
    context: SessionContext,
}

impl std::fmt::Debug for ActiveBranchTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveBranchTable").finish_non_exhaustive()
    }
}

impl ActiveBranchTable {
    /// A table reading the `events` registered in `context`.
    pub fn new(context: SessionContext) -> ActiveBranchTable {
        ActiveBranchTable { context }
    }

    async fn compute(&self) -> Result<RecordBatch> {
        let batches = self
            .context
            .sql(
                "SELECT event_id, session_id, entry_id, parent_id, seq, kind FROM events \
                 WHERE entry_id IS NOT NULL AND kind <> 'quarantined' \
                 AND source = 'openclaw_transcript'",
            )
            .await?
            .collect()
            .await?;
        struct Row {
            event_id: String,
            session_id: Option<String>,
            entry_id: String,
            parent_id: Option<String>,
            seq: i64,
            in_tree: bool,
            is_header: bool,
        }
        let mut rows = Vec::new();
        for batch in &batches {
            let text = |i: usize| -> Result<StringArray> {
                Ok(cast(batch.column(i), &DataType::Utf8)?
                    .as_string::<i32>()
                    .clone())
            };
            let (event_id, session_id, entry_id, parent_id, kind) =
                (text(0)?, text(1)?, text(2)?, text(3)?, text(5)?);
            let seq = cast(batch.column(4), &DataType::Int64)?;
            let seq = seq.as_primitive::<Int64Type>();
            for i in 0..batch.num_rows() {
                let value = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
                rows.push(Row {
                    event_id: event_id.value(i).to_string(),
                    session_id: value(&session_id),
                    entry_id: entry_id.value(i).to_string(),
                    parent_id: value(&parent_id),
                    seq: if seq.is_null(i) { 0 } else { seq.value(i) },
                    // Tool calls share their assistant line's entry id.
                    in_tree: kind.value(i) != "tool_call",
                    is_header: kind.value(i) == "session_start",
                });
            }
        }
        let mut by_session: HashMap<Option<&str>, Vec<usize>> = HashMap::new();
        for (index, row) in rows.iter().enumerate() {
            by_session
                .entry(row.session_id.as_deref())
                .or_default()
                .push(index);
        }
        let mut on_branch = vec![false; rows.len()];
        for indices in by_session.values() {
            let nodes: Vec<TreeNode<'_>> = indices
                .iter()
                .map(|&i| &rows[i])
                .filter(|r| r.in_tree)
                .map(|r| TreeNode {
                    entry_id: &r.entry_id,
                    parent_id: r.parent_id.as_deref(),
                    seq: r.seq,
                })
                .collect();
            let branch = active_branch(&nodes);
            for &i in indices {
                // The header is the root of every branch.
                on_branch[i] = rows[i].is_header || branch.contains(rows[i].entry_id.as_str());
            }
        }
        Ok(RecordBatch::try_new(
            active_branch_schema(),
            vec![
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r.event_id.as_str()))
                        .collect::<StringArray>(),
                ),
                Arc::new(
                    rows.iter()
                        .map(|r| r.session_id.as_deref())
                        .collect::<StringArray>(),
                ),
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r.entry_id.as_str()))
                        .collect::<StringArray>(),
                ),
                Arc::new(BooleanArray::from(on_branch)),
            ],
        )?)
    }
}

#[async_trait]
impl TableProvider for ActiveBranchTable {
    fn schema(&self) -> SchemaRef {
        active_branch_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.compute().await?;
        let table = MemTable::try_new(active_branch_schema(), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}
