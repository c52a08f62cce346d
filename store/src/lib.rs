//! The event store: Delta Lake tables under one root (a local directory, or
//! object storage in a later release).
//!
//! ```text
//! <root>/
//!   events/                    Delta table, partitioned by `date`
//!     _delta_log/00000…N.json  one commit per ingest
//!     date=2026-03-08/part-….zstd.parquet
//! ```
//!
//! Invariants:
//! - **Atomic visibility.** An ingest's good events and its quarantined lines
//!   are rows of the same table and land in one Delta commit: either all of an
//!   ingest is visible or none of it is.
//! - **Idempotence.** Event ids are deterministic; [`EventStore::append_events`]
//!   drops rows whose `event_id` is already in the table (or repeated within the
//!   batch), so appending the same input twice adds nothing.
//! - **Append-only.** Nothing here rewrites or deletes rows.
//! - Rows inside a segment are sorted by (`session_id`, `seq`).

mod derived;
mod erase;
mod error;
mod events;
mod exports;
mod forwarding_store;
mod hashed_writes;
mod location;
mod maintenance;
mod root_files;
pub mod segments;
mod staged;
pub use segments::DEFAULT_TARGET_SEGMENT_BYTES;

pub use derived::{
    DerivedCommit, DerivedLineage, DerivedReplace, DerivedTableWriter, DERIVED_LINEAGE_COLUMNS,
    DERIVED_SEGMENT_BYTES, DERIVED_TABLES,
};
pub use erase::{AffectedExport, ErasureReceipt, ErasureSelector, TableErasure};
pub use error::StoreError;
pub use events::{AppendOutcome, CheckpointRow, CommitInfo, EventStore, EVENTS_TABLE};
pub use exports::ExportRecord;
pub use location::StoreLocation;
pub use maintenance::{
    CompactionSummary, HistoryEntry, SegmentProblem, VacuumSummary, VerifyReport,
};
pub use staged::{StagedAppend, STAGE_BUFFER_BYTES};

/// For [`forwarding_object_store!`]'s expansion in other crates.
#[doc(hidden)]
pub use async_trait::async_trait as __async_trait;
/// Re-export of the Delta Lake crate the store is built on, so that `query`
/// and the exporters use the very same version.
pub use deltalake;
#[doc(hidden)]
pub use futures as __futures;
