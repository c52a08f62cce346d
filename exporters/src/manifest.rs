//! `manifest.json`: what an export was built from and what it wrote.
//!
//! Shape (version 1):
//!
//! ```json
//! {"manifest_version": 1, "target": "trl-sft", "tool": "trajectory 0.1.0",
//!  "created_at": "2026-11-22T03:00:00Z", "store": "file:///…/", "events_table_version": 3,
//!  "as_of": null, "rows": {"train": 17}, "sessions_skipped": 2,
//!  "shards": [{"path": "data/train-00000-of-00001.parquet", "split": "train",
//!              "rows": 17, "bytes": 12345, "sha256": "…"}],
//!  "lineage": [{"session_id": "…", "event_ids": ["…"]}]}
//! ```
//!
//! `lineage` lists the events behind every row, so an erasure can find every
//! shard that contained an erased event.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::shards::ShardInfo;
use crate::{ExportError, ExportOptions};

/// Version of the manifest layout.
pub const MANIFEST_VERSION: u32 = 1;

/// The manifest of one export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportManifest {
    pub manifest_version: u32,
    pub target: String,
    pub tool: String,
    pub created_at: String,
    pub store: String,
    pub events_table_version: u64,
    pub as_of: Option<String>,
    pub rows: BTreeMap<String, usize>,
    pub sessions_skipped: usize,
    pub shards: Vec<ShardInfo>,
    /// The export's row filters, when any were possible (derived-table targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Value>,
    /// Lineage of the derived tables read (job versions, parameters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Value>,
    /// Counts along the way (turns read, pairs per source, sessions per split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Value>,
    /// The split rule and its percentage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<Value>,
    pub lineage: Vec<Value>,
}

impl ExportManifest {
    /// A manifest for shards written from `events_table_version`.
    pub fn new(
        target: &str,
        events_table_version: u64,
        options: &ExportOptions,
        rows: usize,
        sessions_skipped: usize,
        shards: Vec<ShardInfo>,
        lineage: Vec<Value>,
    ) -> ExportManifest {
        let mut per_split: BTreeMap<String, usize> = BTreeMap::new();
        for shard in &shards {
            *per_split.entry(shard.split.clone()).or_default() += shard.rows;
        }
        debug_assert_eq!(per_split.values().sum::<usize>(), rows);
        ExportManifest {
            manifest_version: MANIFEST_VERSION,
            target: target.to_string(),
            tool: format!("trajectory {}", env!("CARGO_PKG_VERSION")),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            store: options.store.clone(),
            events_table_version,
            as_of: options.as_of.clone(),
            rows: per_split,
            sessions_skipped,
            shards,
            filters: None,
            jobs: options.jobs.clone(),
            counts: None,
            split: None,
            lineage,
        }
    }
}

/// Writes `DIR/manifest.json` (pretty JSON) and returns its path.
pub fn write_manifest(dir: &Path, manifest: &ExportManifest) -> Result<PathBuf, ExportError> {
    let path = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(manifest)
        .map_err(|e| ExportError::Internal(format!("manifest: {e}")))?;
    std::fs::write(&path, text + "\n").map_err(|e| ExportError::io(&path, e))?;
    Ok(path)
}

/// Lineage entries spooled to a temporary JSON-lines file while an export
/// writes its rows, so that a manifest's lineage (one entry per row, each
/// listing the row's events) is never held in memory.
pub(crate) struct LineageSpool {
    path: PathBuf,
    file: BufWriter<File>,
}

impl LineageSpool {
    /// Creates (truncates) the spool file at `path`.
    ///
    /// Errors: I/O errors naming the path.
    pub(crate) fn create(path: PathBuf) -> Result<LineageSpool, ExportError> {
        let file = File::create(&path)
            .map(BufWriter::new)
            .map_err(|e| ExportError::io(&path, e))?;
        Ok(LineageSpool { path, file })
    }

    /// Appends one entry.
    pub(crate) fn push(&mut self, entry: &Value) -> Result<(), ExportError> {
        writeln!(self.file, "{entry}").map_err(|e| ExportError::io(&self.path, e))
    }

    /// Copies every entry, in order and passed through `map`, into
    /// `manifest`, then removes the spool file (the spool takes no more
    /// entries after this).
    ///
    /// Errors: I/O errors; a line that is not JSON (the file was changed
    /// under the export).
    pub(crate) fn drain_into(
        &mut self,
        manifest: &mut ManifestWriter,
        mut map: impl FnMut(Value) -> Value,
    ) -> Result<(), ExportError> {
        self.file
            .flush()
            .map_err(|e| ExportError::io(&self.path, e))?;
        let lines = File::open(&self.path)
            .map(BufReader::new)
            .map_err(|e| ExportError::io(&self.path, e))?;
        for line in lines.lines() {
            let line = line.map_err(|e| ExportError::io(&self.path, e))?;
            let entry: Value = serde_json::from_str(&line)
                .map_err(|e| ExportError::Internal(format!("lineage spool: {e}")))?;
            manifest.push(&map(entry))?;
        }
        std::fs::remove_file(&self.path).map_err(|e| ExportError::io(&self.path, e))
    }
}

/// `DIR/manifest.json` written as a stream: the manifest's fields, then its
/// `lineage` array one entry (compact JSON) per line.
pub(crate) struct ManifestWriter {
    path: PathBuf,
    out: BufWriter<File>,
    first: bool,
}

impl ManifestWriter {
    /// Writes `manifest`'s fields (its `lineage` must be empty: entries come
    /// through [`ManifestWriter::push`]).
    ///
    /// Errors: I/O errors naming the path.
    pub(crate) fn create(
        dir: &Path,
        manifest: &ExportManifest,
    ) -> Result<ManifestWriter, ExportError> {
        let path = dir.join("manifest.json");
        let head = serde_json::to_string_pretty(manifest)
            .map_err(|e| ExportError::Internal(format!("manifest: {e}")))?;
        // `lineage` is the struct's last field: `  "lineage": []\n}`.
        let head = head
            .strip_suffix("\"lineage\": []\n}")
            .ok_or_else(|| ExportError::Internal("manifest layout changed".into()))?;
        let file = File::create(&path).map_err(|e| ExportError::io(&path, e))?;
        let mut out = BufWriter::new(file);
        write!(out, "{head}\"lineage\": [").map_err(|e| ExportError::io(&path, e))?;
        Ok(ManifestWriter {
            path,
            out,
            first: true,
        })
    }

    /// Appends one lineage entry.
    pub(crate) fn push(&mut self, entry: &Value) -> Result<(), ExportError> {
        let separator = if self.first { "\n    " } else { ",\n    " };
        self.first = false;
        write!(self.out, "{separator}{entry}").map_err(|e| ExportError::io(&self.path, e))
    }

    /// Closes the array and the object; the manifest's path.
    pub(crate) fn finish(mut self) -> Result<PathBuf, ExportError> {
        let close = if self.first { "]\n}\n" } else { "\n  ]\n}\n" };
        write!(self.out, "{close}").map_err(|e| ExportError::io(&self.path, e))?;
        self.out
            .flush()
            .map_err(|e| ExportError::io(&self.path, e))?;
        Ok(self.path)
    }
}
