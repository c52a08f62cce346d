//! Readers for OpenClaw and pi records, and the ingest run that commits their
//! events to the store.
//!
//! ```text
//! paths ──discover──▶ files ──openclaw::transcript──▶ Vec<Event> ──▶ one RecordBatch
//!                                                                     │
//!                                     EventStore::append_events ◀─────┘  (one Delta commit)
//! ```
//!
//! An ingest is one Delta commit: the good events and the quarantined lines of
//! every file land together or not at all. Event ids are deterministic, so
//! ingesting the same input again adds 0 events.

pub mod discover;
pub mod jsonl;
pub mod lines;
pub mod locality;
pub mod openclaw;
pub mod redaction;

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;
use trajectory_schema::{events_to_batch, Event};
use trajectory_store::{CommitInfo, EventStore, StoreError};

use crate::discover::{
    agent_id_from_path, discover, open_decoded, session_id_from_file_name, SkippedFile,
};
use crate::jsonl::SourceContext;
use crate::openclaw::transcript;

/// Errors that stop an ingest run. Bad input never does: it is quarantined.
#[derive(Debug, Error)]
pub enum IngestError {
    /// A path given on the command line does not exist or cannot be listed.
    #[error("cannot read input: {0}")]
    Input(#[from] std::io::Error),
    /// The store refused the commit; nothing from this run is visible.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Building the Arrow batch failed (a bug).
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Options of one ingest run.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Files and directories to read.
    pub paths: Vec<PathBuf>,
    /// Lines longer than this are quarantined (default 64 MiB).
    pub max_line_bytes: usize,
}

impl IngestOptions {
    /// Options for `paths` with the defaults.
    pub fn new(paths: Vec<PathBuf>) -> IngestOptions {
        IngestOptions {
            paths,
            max_line_bytes: transcript::DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Progress reported while an ingest runs.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Discovery finished: this many files, this many bytes on disk.
    Discovered { files: usize, bytes: u64 },
    /// One file was read.
    FileRead {
        path: PathBuf,
        bytes: u64,
        events: u64,
    },
    /// All files are read; the commit is being written.
    Committing { events: usize },
}

/// Per-file outcome, in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub path: String,
    pub session_id: String,
    pub header_version: Option<i64>,
    pub lines: u64,
    pub bytes: u64,
    pub events: u64,
    pub quarantined: u64,
    pub unknown_entries: u64,
    /// Set when the header version is newer than this build knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The summary an ingest run ends with (also printed as `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    pub ingest_id: String,
    pub store: String,
    /// Delta version of the commit; `None` when nothing new was found.
    pub table_version: Option<u64>,
    pub files: usize,
    pub lines: u64,
    pub bytes: u64,
    pub events_read: u64,
    pub events_added: usize,
    pub events_already_present: usize,
    pub lines_quarantined: u64,
    pub unknown_entries: u64,
    pub files_failed: usize,
    pub seconds: f64,
    pub per_file: Vec<FileSummary>,
    pub skipped: Vec<SkippedSummary>,
}

/// A file that was seen and not read.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedSummary {
    pub path: String,
    pub reason: String,
}

impl From<SkippedFile> for SkippedSummary {
    fn from(s: SkippedFile) -> SkippedSummary {
        SkippedSummary {
            path: s.path.display().to_string(),
            reason: s.reason,
        }
    }
}

fn file_uri(path: &Path) -> String {
    let absolute = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    url_for(&absolute)
}

fn url_for(path: &Path) -> String {
    // Percent-encoding is left to consumers; paths are stored as plain file URIs.
    format!("file://{}", path.display())
}

/// Runs one ingest: discover, read every file, commit once.
///
/// `progress` is called from this thread as work advances.
///
/// Errors: a missing input path, or a failed commit (then nothing is visible).
/// Unreadable lines are quarantined and unreadable files counted in
/// `files_failed`; neither stops the run.
pub async fn ingest(
    store: &EventStore,
    options: &IngestOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<IngestSummary, IngestError> {
    let started = Instant::now();
    let ingested_at: DateTime<Utc> = Utc::now();
    let ingest_id = uuid::Uuid::new_v4().to_string();
    let found = discover(&options.paths)?;
    progress(Progress::Discovered {
        files: found.files.len(),
        bytes: found.files.iter().map(|f| f.size).sum(),
    });

    let mut events: Vec<Event> = Vec::new();
    let mut per_file = Vec::with_capacity(found.files.len());
    let mut skipped: Vec<SkippedSummary> = found.skipped.into_iter().map(Into::into).collect();
    let mut files_failed = 0;
    for file in &found.files {
        let session_id_hint = session_id_from_file_name(&file.path);
        let context = SourceContext {
            source_uri: file_uri(&file.path),
            agent_id: agent_id_from_path(&file.path),
            session_id_hint: Some(session_id_hint.clone()),
            ingest_id: ingest_id.clone(),
            ingested_at,
            max_line_bytes: options.max_line_bytes,
        };
        let read = open_decoded(&file.path).and_then(|r| transcript::read_transcript(r, &context));
        let (file_events, stats) = match read {
            Ok(read) => read,
            Err(e) => {
                files_failed += 1;
                tracing::warn!(path = %file.path.display(), error = %e, "cannot read file");
                skipped.push(SkippedSummary {
                    path: file.path.display().to_string(),
                    reason: format!("read error: {e}"),
                });
                continue;
            }
        };
        progress(Progress::FileRead {
            path: file.path.clone(),
            bytes: file.size,
            events: stats.events,
        });
        let session_id = file_events
            .iter()
            .find_map(|e| e.session_id.clone())
            .unwrap_or(session_id_hint);
        let note = (!stats.notes.is_empty()).then(|| stats.notes.join("; "));
        per_file.push(FileSummary {
            path: file.path.display().to_string(),
            session_id,
            header_version: stats.format_version,
            lines: stats.lines,
            bytes: stats.bytes,
            events: stats.events,
            quarantined: stats.quarantined,
            unknown_entries: stats.unknown_entries,
            note,
        });
        events.extend(file_events);
    }

    progress(Progress::Committing {
        events: events.len(),
    });
    let events_read = events.len() as u64;
    let lines_quarantined = per_file.iter().map(|f| f.quarantined).sum();
    let outcome = if events.is_empty() {
        None
    } else {
        let batch = events_to_batch(&events)?;
        drop(events);
        let mut facts = serde_json::Map::new();
        facts.insert("trajectory.operation".into(), json!("ingest"));
        facts.insert("trajectory.files".into(), json!(per_file.len()));
        facts.insert(
            "trajectory.lines_quarantined".into(),
            json!(lines_quarantined),
        );
        facts.insert(
            "trajectory.version".into(),
            json!(env!("CARGO_PKG_VERSION")),
        );
        Some(
            store
                .append_events(
                    batch,
                    CommitInfo {
                        ingest_id: ingest_id.clone(),
                        facts,
                    },
                )
                .await?,
        )
    };

    Ok(IngestSummary {
        ingest_id,
        store: store.location().root().to_string(),
        table_version: outcome.as_ref().and_then(|o| o.version),
        files: per_file.len(),
        lines: per_file.iter().map(|f| f.lines).sum(),
        bytes: per_file.iter().map(|f| f.bytes).sum(),
        events_read,
        events_added: outcome.as_ref().map_or(0, |o| o.rows_added),
        events_already_present: outcome.as_ref().map_or(0, |o| o.rows_already_present),
        lines_quarantined,
        unknown_entries: per_file.iter().map(|f| f.unknown_entries).sum(),
        files_failed,
        seconds: started.elapsed().as_secs_f64(),
        per_file,
        skipped,
    })
}
