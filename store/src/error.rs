use thiserror::Error;

/// Errors of the event store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The `--store` value is neither a directory path nor a supported URL.
    #[error("invalid store location {location:?}: {reason}")]
    InvalidLocation { location: String, reason: String },

    /// A local store directory could not be created or read.
    #[error("store directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A table name or schema the store does not accept.
    #[error("invalid table: {0}")]
    InvalidTable(String),

    /// The `events` table does not exist yet.
    #[error("the store at {0} has no events table yet")]
    NoEventsTable(String),

    /// Delta Lake refused an operation (commit conflict, corrupt log, I/O).
    #[error("delta table error: {0}")]
    Delta(#[from] deltalake::DeltaTableError),

    /// DataFusion failed while scanning the table.
    #[error("scan failed: {0}")]
    Scan(#[from] deltalake::datafusion::error::DataFusionError),

    /// Arrow rejected a batch (a bug: batches are built from the event schema).
    #[error("arrow error: {0}")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),
}
