//! Readers for OpenClaw and pi records, and the ingest run that commits their
//! events to the store.
//!
//! ```text
//! paths ──discover──▶ sources ──readers (openclaw::*)──▶ Vec<Event> ──locality, redaction──▶ one RecordBatch
//!                        │                                                                       │
//!                  checkpoints ◀──── EventStore::append_events (events + checkpoints, one Delta commit)
//! ```
//!
//! An ingest is one Delta commit: the good events, the quarantined lines and
//! the per-source checkpoints of every source land together or not at all.
//! Event ids are deterministic, so ingesting the same input again adds 0 events.
//!
//! The readers (`openclaw::*`, `jsonl`, `lines`, `redaction`, `locality`)
//! need no store; the `store` feature (on by default) adds the ingest run
//! ([`run`]), which writes to a `trajectory_store::EventStore`. The fuzz
//! targets build the readers alone.

pub mod checkpoint;
pub mod content;
pub mod discover;
pub mod json_spans;
pub mod jsonl;
pub mod lines;
pub mod locality;
mod on_cores;
pub mod openclaw;
pub mod read_order;
pub mod redaction;
#[cfg(feature = "store")]
pub mod run;
pub mod sources;

#[cfg(feature = "store")]
pub use run::{
    ingest, FileSummary, IngestError, IngestOptions, IngestSummary, Progress, SkippedSummary,
    CHUNK_BYTES,
};
