//! Readers for the files OpenClaw and its pi runtime write.
//!
//! One module per format; each emits [`trajectory_schema::Event`]s.

pub mod transcript;
