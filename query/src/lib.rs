//! Read-only SQL over the event log: a DataFusion `SessionContext` with the
//! `events` Delta table and the views of [`views`] registered.
//!
//! Read-only is enforced by DataFusion's `SQLOptions` (no DDL, no DML, no
//! `COPY`, no `SET`), not by inspecting the query text, so no statement can
//! write or create anything through `trajectory sql`.

pub mod active_branch;
pub mod local_reads;
pub mod output;
pub mod snapshot_table;
pub mod views;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::RecordBatch;
use deltalake::datafusion::dataframe::DataFrame;
use deltalake::datafusion::datasource::TableProvider;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::context::SQLOptions;
use deltalake::datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use deltalake::datafusion::execution::runtime_env::RuntimeEnvBuilder;
use deltalake::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::DeltaTable;
use snapshot_table::SnapshotTable;
use thiserror::Error;
use trajectory_store::{EventStore, StoreError, EVENTS_TABLE};

use trajectory_store::deltalake;

/// Errors of the query layer.
#[derive(Debug, Error)]
pub enum QueryError {
    /// The store has no events yet.
    #[error("the store at {0} has no events yet")]
    Empty(String),
    /// The statement would change or create something.
    #[error("trajectory sql is read-only: {0}")]
    ReadOnly(String),
    /// The query failed to plan or run (syntax, unknown column, ...).
    #[error("{0}")]
    Sql(#[from] DataFusionError),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--as-of` could not be parsed or resolved.
    #[error("invalid --as-of {0:?}: expected a table version (e.g. 3) or an RFC 3339 time (e.g. 2026-11-22T10:00:00Z)")]
    InvalidAsOf(String),
}

/// A point in the event log's history to read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    /// A Delta table version.
    Version(u64),
    /// The last version committed at or before this time.
    Timestamp(DateTime<Utc>),
}

impl FromStr for AsOf {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<AsOf, QueryError> {
        if let Ok(version) = s.trim().parse::<u64>() {
            return Ok(AsOf::Version(version));
        }
        DateTime::parse_from_rfc3339(s.trim())
            .map(|t| AsOf::Timestamp(t.with_timezone(&Utc)))
            .map_err(|_| QueryError::InvalidAsOf(s.to_string()))
    }
}

impl fmt::Display for AsOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsOf::Version(v) => write!(f, "version {v}"),
            AsOf::Timestamp(t) => write!(f, "{}", t.to_rfc3339()),
        }
    }
}

/// How a job's engine differs from the interactive one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// Bytes of the memory pool the spilling operators (sort, repartition,
    /// aggregate) share fairly: past it they spill to the OS temporary
    /// directory instead of growing. `None` leaves memory unbounded
    /// (DataFusion's default).
    pub memory_limit: Option<usize>,
    /// Evaluate filters inside the Parquet scan (late materialisation): the
    /// filter columns are decoded first and the others only for matching
    /// rows. Worth it for selective filters such as a list of sessions.
    pub pushdown_filters: bool,
    /// Rows per batch (DataFusion's default 8192 when `None`). A job whose
    /// rows carry whole tool outputs sorts smaller batches, so that a merge
    /// of spilled runs fits its memory share.
    pub batch_size: Option<usize>,
    /// Keep joins as written (DataFusion's `optimizer.join_reordering` off):
    /// a hash join holds its left input whole, so a job that writes the
    /// small side first keeps it the build side whatever the statistics say.
    pub keep_join_order: bool,
    /// Partitions of the plans (DataFusion's default, the number of cores,
    /// when `None`). One partition sorts without a final merge of
    /// partitions, so the sort's own merge of spilled runs is the only one
    /// and stays within the pool.
    pub target_partitions: Option<usize>,
}

/// A query session over one version of the event log.
pub struct QueryEngine {
    ctx: SessionContext,
    events_version: u64,
}

impl QueryEngine {
    /// Opens the store's `events` table (at `as_of`, else the latest version)
    /// and registers it with the views.
    ///
    /// Errors: [`QueryError::Empty`] when nothing was ingested yet; a store
    /// error when the version does not exist.
    pub async fn open(store: &EventStore, as_of: Option<&AsOf>) -> Result<QueryEngine, QueryError> {
        QueryEngine::open_with(store, as_of, EngineOptions::default()).await
    }

    /// Like [`QueryEngine::open`], with the [`EngineOptions`] of a job.
    ///
    /// Errors: those of [`QueryEngine::open`].
    pub async fn open_with(
        store: &EventStore,
        as_of: Option<&AsOf>,
        options: EngineOptions,
    ) -> Result<QueryEngine, QueryError> {
        let mut table = match store.events_table().await? {
            Some(table) => table,
            None => return Err(QueryError::Empty(store.location().root().to_string())),
        };
        match as_of {
            Some(AsOf::Version(version)) => table
                .load_version(*version)
                .await
                .map_err(|e| QueryError::Store(StoreError::Delta(e)))?,
            Some(AsOf::Timestamp(time)) => {
                let version = store.events_version_at(*time).await?;
                table
                    .load_version(version)
                    .await
                    .map_err(|e| QueryError::Store(StoreError::Delta(e)))?
            }
            None => {}
        }
        let events_version = table.version().unwrap_or_default();
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("trajectory", "public");
        // Segments carry page statistics on id and time columns only, and a
        // segment is a few row groups: loading each file's page index costs
        // more than the pages it prunes (docs/architecture.md, "Query scans").
        config.options_mut().execution.parquet.enable_page_index = false;
        // The store writes no bloom filters, yet with this on DataFusion
        // evaluates every query's predicate against each file's (absent)
        // filters: 8 % of the audit-query suite over the 51 segments of the
        // 100 MB benchmark history (docs/benchmarks.md, session 24).
        config.options_mut().execution.parquet.bloom_filter_on_read = false;
        config.options_mut().execution.parquet.pushdown_filters = options.pushdown_filters;
        if let Some(partitions) = options.target_partitions {
            config = config.with_target_partitions(partitions.max(1));
        }
        if options.keep_join_order {
            config.options_mut().optimizer.join_reordering = false;
        }
        if let Some(rows) = options.batch_size {
            config = config.with_batch_size(rows.max(1));
        }
        let ctx = match options.memory_limit {
            Some(bytes) => {
                let runtime = RuntimeEnvBuilder::new()
                    // The top consumers are named in a "resources exhausted"
                    // error, so a user sees what to raise.
                    .with_memory_pool(Arc::new(TrackConsumersPool::new(
                        FairSpillPool::new(bytes),
                        std::num::NonZeroUsize::new(5).unwrap_or(std::num::NonZeroUsize::MIN),
                    )))
                    .build_arc()?;
                SessionContext::new_with_config_rt(config, runtime)
            }
            None => SessionContext::new_with_config(config),
        };
        ctx.register_table(EVENTS_TABLE, table_provider(&table, &ctx).await?)?;
        for (name, sql) in views::view_definitions() {
            ctx.sql(&format!("CREATE VIEW {name} AS {sql}")).await?;
        }
        ctx.register_table(
            active_branch::ACTIVE_BRANCH,
            Arc::new(active_branch::ActiveBranchTable::new(ctx.clone())),
        )?;
        // Derived tables (turns, rewards, ...) at their latest version, when built.
        for name in trajectory_store::DERIVED_TABLES {
            if let Some(derived) = store.derived_table(name).await? {
                ctx.register_table(*name, table_provider(&derived, &ctx).await?)?;
            }
        }
        Ok(QueryEngine {
            ctx,
            events_version,
        })
    }

    /// The `events` table version this engine reads.
    pub fn events_version(&self) -> u64 {
        self.events_version
    }

    /// Turns Parquet filter pushdown (see [`EngineOptions::pushdown_filters`])
    /// on or off for the queries planned from now on.
    pub fn set_pushdown_filters(&self, on: bool) {
        self.ctx
            .state_ref()
            .write()
            .config_mut()
            .options_mut()
            .execution
            .parquet
            .pushdown_filters = on;
    }

    /// The task context plans built from this engine execute in (its
    /// configuration and memory pool).
    pub fn task_ctx(&self) -> Arc<TaskContext> {
        self.ctx.task_ctx()
    }

    /// Plans a read-only query.
    ///
    /// Errors: [`QueryError::ReadOnly`] for DDL, DML, `COPY` and other
    /// statements; [`QueryError::Sql`] for anything DataFusion rejects.
    pub async fn frame(&self, sql: &str) -> Result<DataFrame, QueryError> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.ctx
            .sql_with_options(sql, options)
            .await
            .map_err(read_only_or_sql)
    }

    /// Runs a read-only query as a stream of batches (one partition, in
    /// the plan's output order), so a caller holds one batch at a time.
    ///
    /// Errors: as [`QueryEngine::frame`]; execution errors.
    pub async fn stream(&self, sql: &str) -> Result<SendableRecordBatchStream, QueryError> {
        Ok(self.frame(sql).await?.execute_stream().await?)
    }

    /// Runs a read-only query and collects its rows.
    pub async fn collect(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        Ok(self.frame(sql).await?.collect().await?)
    }
}

/// The provider a query reads `table` through: a [`SnapshotTable`] over
/// the loaded snapshot's files, or delta-rs' own provider for the Delta
/// features it does not apply (deletion vectors, column mapping).
async fn table_provider(
    table: &DeltaTable,
    ctx: &SessionContext,
) -> Result<Arc<dyn TableProvider>, QueryError> {
    let delta = |e| QueryError::Store(StoreError::Delta(e));
    Ok(match SnapshotTable::try_new(table, ctx).map_err(delta)? {
        Some(snapshot) => Arc::new(snapshot),
        None => {
            table
                .update_datafusion_session(&ctx.state())
                .map_err(delta)?;
            table.table_provider().await?
        }
    })
}

/// Turns DataFusion's "not supported" plan checks into a clear read-only error.
fn read_only_or_sql(error: DataFusionError) -> QueryError {
    let message = error.to_string();
    for (needle, what) in [
        ("DDL not supported", "DDL (CREATE, DROP, ALTER)"),
        ("DML not supported", "DML (INSERT, UPDATE, DELETE, COPY)"),
        (
            "Statement not supported",
            "SET, PREPARE and transaction statements",
        ),
    ] {
        if message.contains(needle) {
            return QueryError::ReadOnly(format!(
                "{what} is refused; run a SELECT over events or a view ({message})"
            ));
        }
    }
    QueryError::Sql(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_parses_versions_and_times() {
        assert_eq!("3".parse::<AsOf>().unwrap(), AsOf::Version(3));
        assert!(matches!(
            "2026-11-22T10:00:00Z".parse::<AsOf>().unwrap(),
            AsOf::Timestamp(_)
        ));
        assert!("yesterday".parse::<AsOf>().is_err());
    }
}
