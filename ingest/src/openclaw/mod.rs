//! Readers for the files OpenClaw and its pi runtime write.
//!
//! One module per format; each emits [`trajectory_schema::Event`]s.
//! Format sources and edge cases: `shared/docs/openclaw-formats.md`.

pub mod agent_store;
pub mod cache_trace;
pub mod commands_log;
pub mod config_audit;
pub mod cron_run_log;
pub mod gateway_log;
pub mod session_store;
pub mod state_store;
pub mod trajectory_events;
pub mod transcript;
