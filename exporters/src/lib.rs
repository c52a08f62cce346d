//! Writers of what leaves the event log: training shards and reports.
//!
//! One module per target: [`trl`] (`trl-sft`, from the events),
//! [`openai_sft`], [`openai_dpo`], [`preference`] (`trl-preference`), [`kto`],
//! [`grpo`], [`rl_turns`] (from the derived tables, driven by [`training`]),
//! [`openclaw_rl`] (OpenClaw-RL's JSONL records),
//! [`compliance`] (the compliance report). Shared pieces: [`conversation`]
//! rebuilds a session's active branch, [`messages`] converts message shapes,
//! [`filters`] holds the row filters and the train/validation split,
//! [`shards`] writes Hugging Face style dataset directories, [`manifest`]
//! records lineage.

pub mod columns;
pub mod compliance;
pub mod conversation;
mod dataset_writer;
pub mod filters;
pub mod grpo;
pub mod kto;
pub mod manifest;
pub mod messages;
pub mod openai_dpo;
pub mod openai_sft;
pub mod openclaw_rl;
pub mod preference;
pub mod rl_turns;
mod session_cursor;
pub mod shards;
pub mod training;
pub mod trl;

use std::path::Path;

use serde::Serialize;
use thiserror::Error;
use trajectory_query::QueryError;

pub use filters::{split_of, ExportFilters};
pub use shards::ShardInfo;
pub use training::{export_training, TrainingTarget};

/// The engine options an export runs with: its sorts spill past `memory`
/// bytes (`export --memory-limit`, default 384 MiB), and batches of 128
/// rows: a turn carries its whole context, so late turns of long sessions
/// are MiBs each, and at 10x a 256-row batch of them was 201 MB, more than
/// the sort could reserve beside the join's build side (83 MB) in 256 MiB.
/// Smaller batches cost more: at 64 rows the build side was counted at
/// 240 MB.
pub fn export_engine_options(memory: usize) -> trajectory_query::EngineOptions {
    trajectory_query::EngineOptions {
        memory_limit: Some(memory),
        pushdown_filters: false,
        batch_size: Some(128),
        keep_join_order: true,
        target_partitions: Some(1),
    }
}

/// [`ExportOptions::shard_bytes`] by default: 32 MiB.
pub const DEFAULT_SHARD_BYTES: usize = 32 * 1024 * 1024;

/// [`export_engine_options`]' default memory: 384 MiB.
pub const DEFAULT_EXPORT_MEMORY_BYTES: usize = 384 * 1024 * 1024;

/// Errors of the exporters.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The query behind the export failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Writing an output file failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Arrow could not build a batch.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Parquet could not encode a shard.
    #[error("parquet error: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A broken invariant inside the exporter.
    #[error("internal error: {0}")]
    Internal(String),
    /// An option or filter value that cannot work (the message says which).
    #[error("{0}")]
    Invalid(String),
    /// A derived table the target reads does not exist (its name).
    #[error("the derived table `{0}` does not exist (this export reads the derived tables turns and rewards)")]
    MissingDerived(String),
}

impl ExportError {
    fn io(path: &Path, source: std::io::Error) -> ExportError {
        ExportError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl From<deltalake_arrow_error::DataFusionError> for ExportError {
    fn from(e: deltalake_arrow_error::DataFusionError) -> ExportError {
        ExportError::Query(QueryError::Sql(e))
    }
}

mod deltalake_arrow_error {
    pub use trajectory_store::deltalake::datafusion::error::DataFusionError;
}

/// Options shared by every exporter.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The store URL, recorded in the manifest.
    pub store: String,
    /// The `--as-of` the export was pinned to, recorded in the manifest.
    pub as_of: Option<String>,
    /// Maximum rows per Parquet shard.
    pub rows_per_shard: usize,
    /// Maximum bytes of Arrow data a shard gathers before it is written
    /// (0: no limit); checked every 256 rows, so a shard it closes holds a
    /// multiple of 256 rows. Bounds an export's memory when rows are large.
    pub shard_bytes: usize,
    /// The derived tables' lineage (job, job version, events version,
    /// parameters) the export read, recorded in the manifest as `jobs`.
    pub jobs: Option<serde_json::Value>,
}

impl ExportOptions {
    /// Defaults: 10,000 rows and 32 MiB of Arrow data per shard, no `--as-of`.
    pub fn new(store: String) -> ExportOptions {
        ExportOptions {
            store,
            as_of: None,
            rows_per_shard: 10_000,
            shard_bytes: DEFAULT_SHARD_BYTES,
            jobs: None,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub target: String,
    pub out_dir: String,
    pub events_version: u64,
    pub rows: usize,
    pub sessions_skipped: usize,
    pub shards: Vec<ShardInfo>,
    pub manifest: String,
}
