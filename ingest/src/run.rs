//! One ingest run: discover, read every source from its checkpoint, apply
//! locality and redaction, commit events and checkpoints together.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;
use trajectory_schema::{events_to_day_batches, Event, EventKind};
use trajectory_store::{CommitInfo, EventStore, StoreError};

use crate::checkpoint::SourceCheckpoint;
use crate::discover::{agent_id_from_path, discover, session_id_from_file_name, SkippedFile};
use crate::jsonl::SourceContext;
use crate::locality::LocalityTable;
use crate::openclaw::{agent_store, session_store, state_store, trajectory_events, transcript};
use crate::redaction::{strip_inline_images, RedactionPolicy, Redactor};
use crate::sources::{read_incremental, Source, SourceKind, SourceRead};

mod pipeline;
use pipeline::{ReaderPool, SegmentWriter};

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
    /// The redaction policy could not be built (an invalid extra rule).
    #[error("redaction: {0}")]
    Redaction(String),
}

/// Events are handed to the store every this many bytes of text (about;
/// the fold holds one such chunk, the writer one more, and the store buffers
/// [`STAGE_BUFFER_CHUNKS`] before writing segments).
pub const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// How many chunks of [`IngestOptions::chunk_bytes`] the store buffers per
/// run before writing partitions out (8 × 4 MiB = the store's
/// default [`trajectory_store::STAGE_BUFFER_BYTES`]).
pub const STAGE_BUFFER_CHUNKS: usize = 8;

/// The text an event carries, for chunk sizing.
fn event_text_bytes(event: &Event) -> usize {
    [
        &event.raw,
        &event.content,
        &event.text,
        &event.attributes,
        &event.tool_args,
    ]
    .iter()
    .map(|f| f.as_ref().map_or(0, |t| t.len()))
    .sum::<usize>()
        + 256
}

/// Default of [`IngestOptions::auto_compact_after`].
pub const DEFAULT_AUTO_COMPACT_AFTER: usize = 32;

/// Options of one ingest run.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Files and directories to read.
    pub paths: Vec<PathBuf>,
    /// Lines longer than this are quarantined (default 64 MiB).
    pub max_line_bytes: usize,
    /// Provider → locality overrides from the user's config.
    pub locality_overrides: Vec<(String, trajectory_schema::Locality)>,
    /// Mask secrets before anything is written (default true; `--no-redact` turns it off).
    pub redact: bool,
    /// Extra redaction rules `(name, regex)` from the user's config.
    pub extra_redaction_rules: Vec<(String, String)>,
    /// Keep base64 images in `raw` (default false: replaced by a sha256 reference).
    pub keep_images: bool,
    /// After committing, compact a `date` partition of `events` once it holds
    /// this many segments smaller than the compaction target (default 32;
    /// `None` never compacts automatically). Keeps frequent small ingests
    /// (`--follow`) from leaving thousands of tiny files.
    pub auto_compact_after: Option<usize>,
    /// Hand events to the store every this many bytes of event text
    /// (default [`CHUNK_BYTES`]); the store buffers [`STAGE_BUFFER_CHUNKS`]
    /// such chunks across `date` partitions before writing segments. Bounds
    /// memory on large inputs.
    pub chunk_bytes: usize,
}

impl IngestOptions {
    /// Options for `paths` with the defaults.
    pub fn new(paths: Vec<PathBuf>) -> IngestOptions {
        IngestOptions {
            paths,
            max_line_bytes: transcript::DEFAULT_MAX_LINE_BYTES,
            locality_overrides: Vec::new(),
            redact: true,
            extra_redaction_rules: Vec::new(),
            keep_images: false,
            auto_compact_after: Some(DEFAULT_AUTO_COMPACT_AFTER),
            chunk_bytes: CHUNK_BYTES,
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
    /// Which reader read it (`transcript`, `gateway_log`, ...).
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Header or schema version of the source, where the format has one.
    pub header_version: Option<i64>,
    /// `read` (from the start), `resumed` (from the checkpoint), `unchanged`
    /// (nothing new, not parsed) or `reread` (rewritten in place).
    pub mode: &'static str,
    /// Bytes of an incomplete last line left for the next run.
    pub pending_bytes: u64,
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
    /// Small segments merged by the automatic compaction after the commit.
    pub segments_compacted: usize,
    pub files: usize,
    pub lines: u64,
    pub bytes: u64,
    pub events_read: u64,
    pub events_added: usize,
    pub events_already_present: usize,
    pub lines_quarantined: u64,
    pub unknown_entries: u64,
    pub files_failed: usize,
    /// Sources with nothing new since their checkpoint.
    pub files_unchanged: usize,
    /// Events in which at least one secret was masked.
    pub events_redacted: usize,
    /// Base64 images replaced by a sha256 reference.
    pub images_replaced: usize,
    /// The redaction policy applied (`None` with `--no-redact`).
    pub redaction_policy: Option<String>,
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

/// Runs one ingest: discover, read every source from its checkpoint, commit once.
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
    // One ingest at a time per store: two runs reading the same checkpoints
    // and ids would both append the same new events. The lock is released
    // when `_lock` drops, after the commit.
    let _lock = store.lock_writers()?;
    let found = discover(&options.paths)?;
    progress(Progress::Discovered {
        files: found.sources.len(),
        bytes: found.sources.iter().map(|f| f.size).sum(),
    });
    let checkpoints: HashMap<String, SourceCheckpoint> = store
        .latest_checkpoints()
        .await?
        .into_iter()
        .filter_map(|row| {
            SourceCheckpoint::from_row(
                &row.source_uri,
                row.source_offset,
                row.source_line,
                row.attributes.as_deref(),
            )
        })
        .map(|cp| (cp.source_uri.clone(), cp))
        .collect();

    let mut locality = LocalityTable::new();
    for (provider, value) in &options.locality_overrides {
        locality.set_override(provider, *value);
    }
    let mut session_routing: HashMap<String, (String, Option<String>)> = HashMap::new();
    let mut new_checkpoints: Vec<SourceCheckpoint> = Vec::new();
    let mut per_file = Vec::with_capacity(found.sources.len());
    let mut skipped: Vec<SkippedSummary> = found.skipped.into_iter().map(Into::into).collect();
    let mut files_failed = 0;
    // Routing (sessions.json) and locality (openclaw.json, models.json) apply
    // to every event, wherever the files sit in the walk: learn them first.
    for source in &found.sources {
        match source.kind {
            SourceKind::SessionStore => learn_session_routing(&source.path, &mut session_routing),
            SourceKind::Config => learn_config(&source.path, &mut locality, &mut skipped),
            _ => {}
        }
    }
    let redactor = if options.redact {
        let mut policy = RedactionPolicy::default();
        for (name, pattern) in &options.extra_redaction_rules {
            policy = policy
                .with_extra_rule(name, pattern)
                .map_err(|e| IngestError::Redaction(e.to_string()))?;
        }
        Some(Redactor::new(policy, redaction_key(store).await?))
    } else {
        None
    };
    // Events are normalised, redacted and written as segments a chunk at a
    // time (about CHUNK_BYTES of text), then committed once at the end.
    // Three stages overlap: reader threads (one per core) read and normalise
    // sources, this task folds them in read order and builds Arrow batches,
    // and a writer task dedupes, sorts, encodes and writes segments.
    let staged = store
        .begin_append()
        .await?
        .with_buffer_limit(options.chunk_bytes.saturating_mul(STAGE_BUFFER_CHUNKS));
    let mut images_replaced = 0;
    let mut events_redacted = 0;
    let mut events_read = 0u64;
    let mut readable: Vec<Source> = found
        .sources
        .iter()
        .filter(|s| s.kind != SourceKind::Config)
        .cloned()
        .collect();
    // Oldest first, so that each chunk covers a few consecutive days and the
    // store writes a day as one segment from a small buffer.
    crate::read_order::order_by_first_record(&mut readable);
    let checkpoints = Arc::new(checkpoints);
    let redactor = redactor.map(Arc::new);
    let normaliser = Arc::new(Normaliser {
        ingest_id: ingest_id.clone(),
        ingested_at,
        options: options.clone(),
        checkpoints: Arc::clone(&checkpoints),
        session_routing,
        locality,
        redactor: redactor.clone(),
    });
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut reads = ReaderPool::start(normaliser, readable.clone(), workers);
    let mut writer = SegmentWriter::start(staged);
    let mut pending: Vec<Event> = Vec::new();
    let mut pending_bytes = 0usize;
    for source in &readable {
        let prepared = reads.next_in_order().await;
        let source_uri = file_uri(&source.path);
        let read = match prepared.read {
            Ok(read) => read,
            Err(e) => {
                files_failed += 1;
                tracing::warn!(path = %source.path.display(), error = %e, "cannot read source");
                skipped.push(SkippedSummary {
                    path: source.path.display().to_string(),
                    reason: format!("read error: {e}"),
                });
                continue;
            }
        };
        images_replaced += prepared.images_replaced;
        events_redacted += prepared.events_redacted;
        progress(Progress::FileRead {
            path: source.path.clone(),
            bytes: source.size,
            events: read.stats.events,
        });
        let mode = if read.unchanged {
            "unchanged"
        } else if read.reread_reason.is_some() {
            "reread"
        } else if checkpoints.contains_key(&source_uri) {
            "resumed"
        } else {
            "read"
        };
        let mut notes = read.stats.notes.clone();
        notes.extend(read.reread_reason.clone());
        per_file.push(FileSummary {
            path: source.path.display().to_string(),
            kind: source.kind.name(),
            session_id: read.events.iter().find_map(|e| e.session_id.clone()),
            header_version: read.stats.format_version,
            mode,
            pending_bytes: read.checkpoint.as_ref().map_or(0, |c| c.pending_bytes),
            lines: read.stats.lines,
            bytes: read.stats.bytes,
            events: read.stats.events,
            quarantined: read.stats.quarantined,
            unknown_entries: read.stats.unknown_entries,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        });
        if let Some(checkpoint) = read.checkpoint {
            if checkpoints.get(&source_uri) != Some(&checkpoint) {
                new_checkpoints.push(checkpoint);
            }
        }
        pending_bytes += read.events.iter().map(event_text_bytes).sum::<usize>();
        events_read += read.events.len() as u64;
        pending.extend(read.events);
        if pending_bytes >= options.chunk_bytes {
            writer.write(events_to_day_batches(&pending)?).await?;
            pending.clear();
            pending_bytes = 0;
        }
    }
    drop(reads);
    let mut staged = writer.finish().await?;

    let files_unchanged = per_file.iter().filter(|f| f.mode == "unchanged").count();
    pending.extend(
        new_checkpoints
            .iter()
            .map(|cp| cp.to_event(&ingest_id, ingested_at)),
    );
    progress(Progress::Committing {
        events: staged.rows_staged() + pending.len(),
    });
    let lines_quarantined = per_file.iter().map(|f| f.quarantined).sum();
    if !pending.is_empty() {
        staged
            .stage_batches(events_to_day_batches(&pending)?)
            .await?;
    }
    drop(pending);
    let outcome = {
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
            staged
                .commit(CommitInfo {
                    ingest_id: ingest_id.clone(),
                    facts,
                })
                .await?,
        )
    };
    let mut segments_compacted = 0;
    if let (Some(min_files), Some(Some(_))) = (
        options.auto_compact_after,
        outcome.as_ref().map(|o| o.version),
    ) {
        let compaction = store
            .compact(
                trajectory_store::EVENTS_TABLE,
                trajectory_store::DEFAULT_TARGET_SEGMENT_BYTES,
                min_files,
            )
            .await?;
        segments_compacted = compaction.files_rewritten;
    }
    let checkpoint_rows_added = new_checkpoints
        .len()
        .min(outcome.as_ref().map_or(0, |o| o.rows_added));

    Ok(IngestSummary {
        ingest_id,
        store: store.location().root().to_string(),
        table_version: outcome.as_ref().and_then(|o| o.version),
        segments_compacted,
        files: per_file.len(),
        lines: per_file.iter().map(|f| f.lines).sum(),
        bytes: per_file.iter().map(|f| f.bytes).sum(),
        events_read,
        events_added: outcome.as_ref().map_or(0, |o| o.rows_added) - checkpoint_rows_added,
        events_already_present: outcome.as_ref().map_or(0, |o| o.rows_already_present),
        lines_quarantined,
        unknown_entries: per_file.iter().map(|f| f.unknown_entries).sum(),
        files_failed,
        files_unchanged,
        events_redacted,
        images_replaced,
        redaction_policy: redactor.as_ref().map(|r| r.policy_id().to_string()),
        seconds: started.elapsed().as_secs_f64(),
        per_file,
        skipped,
    })
}

/// The store's redaction key (see [`EventStore::redaction_key`]); a fresh
/// random key is offered in case the store has none yet.
async fn redaction_key(store: &EventStore) -> Result<[u8; 32], IngestError> {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let fresh = *blake3::hash(&seed).as_bytes();
    store
        .redaction_key(fresh)
        .await
        .map_err(|e| IngestError::Redaction(e.to_string()))
}

/// What every source of a run is read and normalised with (shared by the
/// reader threads).
struct Normaliser {
    ingest_id: String,
    ingested_at: DateTime<Utc>,
    options: IngestOptions,
    checkpoints: Arc<HashMap<String, SourceCheckpoint>>,
    session_routing: HashMap<String, (String, Option<String>)>,
    locality: LocalityTable,
    redactor: Option<Arc<Redactor>>,
}

/// One source read and normalised (routing, locality, images, redaction).
struct Prepared {
    read: std::io::Result<SourceRead>,
    images_replaced: usize,
    events_redacted: usize,
}

impl Prepared {
    fn failed(reason: &str) -> Prepared {
        Prepared {
            read: Err(std::io::Error::other(reason.to_string())),
            images_replaced: 0,
            events_redacted: 0,
        }
    }
}

impl Normaliser {
    fn prepare(&self, source: &Source) -> Prepared {
        let source_uri = file_uri(&source.path);
        let context = SourceContext {
            source_uri: source_uri.clone(),
            agent_id: agent_id_from_path(&source.path),
            // The file stem names the session (transcripts, trajectory
            // sidecars) or the cron job (run logs) when records do not.
            session_id_hint: matches!(
                source.kind,
                SourceKind::Transcript | SourceKind::TrajectoryEvents | SourceKind::CronRunLog
            )
            .then(|| session_id_from_file_name(&source.path)),
            ingest_id: self.ingest_id.clone(),
            ingested_at: self.ingested_at,
            max_line_bytes: self.options.max_line_bytes,
        };
        let mut read = match read_source(source, &context, self.checkpoints.get(&source_uri)) {
            Ok(read) => read,
            Err(e) => {
                return Prepared {
                    read: Err(e),
                    images_replaced: 0,
                    events_redacted: 0,
                }
            }
        };
        let mut images_replaced = 0;
        let mut events_redacted = 0;
        fill_session_routing(&mut read.events, &self.session_routing);
        self.locality.apply(&mut read.events);
        // Offset of the last transcript line in which nothing can be masked
        // (`Redactor::line_is_clean`): the events after its first (tool
        // calls, raw `None`) share it and skip the scan too.
        let mut clean_line: Option<i64> = None;
        for event in &mut read.events {
            let mut raw_stripped = false;
            if !self.options.keep_images {
                for (index, field) in [&mut event.raw, &mut event.content, &mut event.attributes]
                    .into_iter()
                    .enumerate()
                {
                    if let Some(text) = field.as_deref() {
                        let (stripped, count) = strip_inline_images(text);
                        if let std::borrow::Cow::Owned(stripped) = stripped {
                            images_replaced += count;
                            raw_stripped |= index == 0;
                            *field = Some(stripped);
                        }
                    }
                }
            }
            // The shortcut needs the line as read: a line that had inline
            // images (base64 its decoded fields may still hold) takes the
            // per-field scans.
            let clean = match self.redactor.as_deref() {
                Some(redactor)
                    if event.source == transcript::SOURCE
                        && event.kind != EventKind::Quarantined =>
                {
                    match event.raw.as_deref() {
                        Some(raw) => {
                            let clean = !raw_stripped && redactor.line_is_clean(raw);
                            clean_line = event.source_offset.filter(|_| clean);
                            clean
                        }
                        None => event.source_offset.is_some() && event.source_offset == clean_line,
                    }
                }
                _ => false,
            };
            if let Some(redactor) = self.redactor.as_deref() {
                if clean {
                    redactor.mark_clean(event);
                } else {
                    redactor.redact_event(event);
                }
            }
            if event.redactions.is_some() {
                events_redacted += 1;
            }
        }
        Prepared {
            read: Ok(read),
            images_replaced,
            events_redacted,
        }
    }
}

/// Reads one source: incrementally for JSONL, whole for the others.
fn read_source(
    source: &Source,
    context: &SourceContext,
    previous: Option<&SourceCheckpoint>,
) -> std::io::Result<SourceRead> {
    if source.kind.is_incremental() {
        return read_incremental(source, context, previous);
    }
    // Whole-file sources: re-read only when their bytes changed.
    let (bytes, fingerprint) = whole_file_fingerprint(source)?;
    if let Some(previous) = previous {
        if previous.prefix_blake3 == fingerprint && previous.offset == bytes {
            return Ok(SourceRead {
                checkpoint: Some(previous.clone()),
                unchanged: true,
                ..SourceRead::default()
            });
        }
    }
    let checkpoint = |lines: u64| SourceCheckpoint {
        source_uri: context.source_uri.clone(),
        offset: bytes,
        lines,
        prefix_blake3: fingerprint.clone(),
        file_id: crate::checkpoint::file_id(&source.path),
        pending_bytes: 0,
    };
    let whole = |result: Result<(Vec<Event>, crate::jsonl::ReadStats), String>| {
        result
            .map(|(events, stats)| SourceRead {
                checkpoint: Some(checkpoint(stats.lines)),
                reread_reason: previous.map(|_| "changed since the last ingest".to_string()),
                events,
                stats,
                ..SourceRead::default()
            })
            .map_err(std::io::Error::other)
    };
    match source.kind {
        SourceKind::AgentStore | SourceKind::StateStore => {
            let unpacked = unpack_sqlite(&source.path)?;
            let path = unpacked
                .as_ref()
                .map_or(source.path.as_path(), |(_, p)| p.as_path());
            if source.kind == SourceKind::AgentStore {
                whole(agent_store::read_agent_store(path, context).map_err(|e| e.to_string()))
            } else {
                whole(state_store::read_state_store(path, context).map_err(|e| e.to_string()))
            }
        }
        SourceKind::ExportBundle => {
            let dir = source.path.parent().unwrap_or(source.path.as_path());
            whole(trajectory_events::read_export_bundle(dir, context).map_err(|e| e.to_string()))
        }
        SourceKind::SessionStore => {
            let mut bytes = Vec::new();
            crate::discover::open_decoded(&source.path)?.read_to_end(&mut bytes)?;
            whole(session_store::read_session_store(&bytes, context).map_err(|e| e.to_string()))
        }
        _ => Err(std::io::Error::other(format!(
            "no reader for {} sources in this build",
            source.kind.name()
        ))),
    }
}

/// Size and blake3 of everything a whole-file source is read from: the file
/// (a bundle: its directory's files), plus a SQLite store's `-wal`.
fn whole_file_fingerprint(source: &Source) -> std::io::Result<(u64, String)> {
    let mut files = vec![source.path.clone()];
    match source.kind {
        SourceKind::AgentStore | SourceKind::StateStore => {
            let name = source
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let wal = match name.strip_suffix(".zst") {
                Some(stem) => source.path.with_file_name(format!("{stem}-wal.zst")),
                None => source.path.with_file_name(format!("{name}-wal")),
            };
            files.push(wal);
        }
        SourceKind::ExportBundle => {
            if let Some(dir) = source.path.parent() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file() && p != &source.path)
                    .collect();
                entries.sort();
                files.extend(entries);
            }
        }
        _ => {}
    }
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    for file in files {
        let Ok(mut reader) = std::fs::File::open(&file) else {
            continue;
        };
        total += std::io::copy(&mut reader, &mut hasher)?;
    }
    Ok((total, hasher.finalize().to_hex().to_string()))
}

/// A `.sqlite.zst` (as archived or shipped in fixtures) decompressed into a
/// private temporary directory, with its `-wal.zst` beside it when present.
/// `None` for a plain SQLite file, which is read in place.
fn unpack_sqlite(path: &Path) -> std::io::Result<Option<(tempfile::TempDir, PathBuf)>> {
    if path.extension().is_none_or(|e| e != "zst") {
        return Ok(None);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".zst").to_string())
        .unwrap_or_else(|| "store.sqlite".into());
    let dir = tempfile::tempdir()?;
    let target = dir.path().join(&name);
    let mut decoder = zstd::stream::read::Decoder::new(std::fs::File::open(path)?)?;
    std::io::copy(&mut decoder, &mut std::fs::File::create(&target)?)?;
    let wal = path.with_file_name(format!("{name}-wal.zst"));
    if wal.is_file() {
        let mut decoder = zstd::stream::read::Decoder::new(std::fs::File::open(&wal)?)?;
        std::io::copy(
            &mut decoder,
            &mut std::fs::File::create(dir.path().join(format!("{name}-wal")))?,
        )?;
    }
    Ok(Some((dir, target)))
}

/// Reads `sessionId -> (sessionKey, channel)` from a `sessions.json` snapshot.
fn learn_session_routing(path: &Path, routing: &mut HashMap<String, (String, Option<String>)>) {
    let mut bytes = Vec::new();
    let read = crate::discover::open_decoded(path).and_then(|mut r| r.read_to_end(&mut bytes));
    if read.is_ok() {
        routing.extend(session_store::session_channels(&bytes));
    }
}

/// Fills `session_key` and `channel` on events of sessions a `sessions.json`
/// read in this run knows, where the reader left them empty.
fn fill_session_routing(events: &mut [Event], routing: &HashMap<String, (String, Option<String>)>) {
    if routing.is_empty() {
        return;
    }
    for event in events {
        let Some((key, channel)) = event.session_id.as_deref().and_then(|id| routing.get(id))
        else {
            continue;
        };
        if event.session_key.is_none() {
            event.session_key = Some(key.clone());
        }
        if event.channel.is_none() {
            event.channel.clone_from(channel);
        }
    }
}

/// Reads provider base URLs from an OpenClaw config file into the locality table.
fn learn_config(path: &Path, locality: &mut LocalityTable, skipped: &mut Vec<SkippedSummary>) {
    let parsed = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| e.to_string())
        });
    match parsed {
        Ok(config) => {
            let learned = locality.learn_from_config(&config);
            tracing::debug!(path = %path.display(), learned, "provider base URLs");
        }
        Err(reason) => skipped.push(SkippedSummary {
            path: path.display().to_string(),
            reason: format!("config not readable: {reason}"),
        }),
    }
}
