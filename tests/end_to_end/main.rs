//! End-to-end tests: the `trajectory` binary on the real example transcripts.
//!
//! One test binary with a module per command, so the workspace links once.

mod harness;

mod corpus;
mod crash;
mod dedupe;
mod derive;
mod export;
mod follow;
mod ingest;
mod object_store;
mod redaction;
mod report;
mod sql;
mod store;
mod targets;
