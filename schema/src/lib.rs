//! The event model of `trajectory`: one row per thing an agent did.
//!
//! Every reader in `trajectory-ingest` turns its input into [`Event`]s; the store
//! writes them as rows of the `events` Delta table with the Arrow schema from
//! [`event_schema`]. The column list is a contract (see `docs/schema.md`):
//! columns are added, never renamed or removed, and [`SCHEMA_VERSION`] is bumped
//! when one is added.
//!
//! ```text
//! reader ──▶ Vec<Event> ──▶ events_to_batch() ──▶ RecordBatch (event_schema()) ──▶ store
//! ```

pub mod batch;
pub mod event;
pub mod kind;
pub mod tree;

pub use batch::{event_schema, events_to_batch, events_to_day_batches, EVENTS_PARTITION_COLUMN};
pub use event::Event;
pub use kind::{EventKind, Locality};

/// Version of the `events` column set written by this build. Stored in every row
/// (`schema_version`), so a reader can tell which columns a row was written with.
pub const SCHEMA_VERSION: i32 = 1;
