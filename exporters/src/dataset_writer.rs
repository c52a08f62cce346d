//! A dataset directory written as its rows arrive: shards per split, the
//! OpenAI JSONL files, the card and the manifest.
//!
//! Rows are pushed one at a time, in the export's deterministic order. Each
//! split gathers at most `rows_per_shard` rows; a full shard is encoded and
//! written at once (one Arrow batch per shard, as a whole-table export did,
//! so the bytes are the same) under a temporary name, and renamed
//! `data/<split>-0000i-of-0000N.parquet` when the export ends and `N` is
//! known. The manifest's per-row lineage goes to a temporary file as rows
//! arrive and is copied into `manifest.json` at the end.
//!
//! Memory: one shard of rows per split (plus the distinct session ids, for
//! the counts), never the whole dataset.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::json::ReaderBuilder;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use serde_json::{json, Value};
use trajectory_query::QueryEngine;

use crate::filters::{split_of, ExportFilters, SPLIT_RULE};
use crate::manifest::ExportManifest;
use crate::shards::{
    clear_previous_shards, dataset_card, file_digest, shard_properties, ShardInfo,
};
use crate::training::{card_body, openai_line, Dataset, Row};
use crate::{ExportError, ExportOptions, ExportSummary};

/// The two splits, in the order the manifest lists them.
const SPLITS: [&str; 2] = ["train", "validation"];

/// One split being written.
struct SplitSink {
    name: &'static str,
    pending: Vec<Value>,
    /// Shards written so far: temporary path, rows, bytes, sha256.
    shards: Vec<(PathBuf, usize, u64, String)>,
    jsonl: Option<BufWriter<File>>,
    sessions: HashSet<String>,
    rows: usize,
}

/// Writes a dataset directory row by row (module docs).
pub(crate) struct DatasetWriter<'a> {
    engine: &'a QueryEngine,
    dataset: Dataset<'a>,
    out_dir: PathBuf,
    options: &'a ExportOptions,
    filters: &'a ExportFilters,
    splits: [SplitSink; 2],
    /// Lineage lines: `[split index, shard index, row, {session, turns, events}]`.
    lineage: BufWriter<File>,
    lineage_path: PathBuf,
}

impl<'a> DatasetWriter<'a> {
    /// Prepares `out_dir`: removes the shards and JSONL files of an earlier
    /// export there, opens the JSONL files when `dataset.jsonl`.
    ///
    /// Errors: I/O errors naming the path.
    pub(crate) fn create(
        engine: &'a QueryEngine,
        dataset: Dataset<'a>,
        out_dir: &Path,
        options: &'a ExportOptions,
        filters: &'a ExportFilters,
    ) -> Result<DatasetWriter<'a>, ExportError> {
        let data_dir = out_dir.join("data");
        std::fs::create_dir_all(&data_dir).map_err(|e| ExportError::io(&data_dir, e))?;
        clear_previous_shards(out_dir)?;
        for stale in ["train.jsonl", "validation.jsonl"] {
            let path = out_dir.join(stale);
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| ExportError::io(&path, e))?;
            }
        }
        let sink = |name: &'static str| -> Result<SplitSink, ExportError> {
            let jsonl = if dataset.jsonl {
                let path = out_dir.join(format!("{name}.jsonl"));
                let file = File::create(&path).map_err(|e| ExportError::io(&path, e))?;
                Some(BufWriter::new(file))
            } else {
                None
            };
            Ok(SplitSink {
                name,
                pending: Vec::new(),
                shards: Vec::new(),
                jsonl,
                sessions: HashSet::new(),
                rows: 0,
            })
        };
        let splits = [sink(SPLITS[0])?, sink(SPLITS[1])?];
        let lineage_path = data_dir.join(".lineage.jsonl.partial");
        let lineage = File::create(&lineage_path)
            .map(BufWriter::new)
            .map_err(|e| ExportError::io(&lineage_path, e))?;
        Ok(DatasetWriter {
            engine,
            dataset,
            out_dir: out_dir.to_path_buf(),
            options,
            filters,
            splits,
            lineage,
            lineage_path,
        })
    }

    /// Adds one row to its session's split; writes a shard when the split
    /// has `rows_per_shard` rows waiting.
    ///
    /// Errors: encoding and I/O errors.
    pub(crate) fn push(&mut self, row: Row) -> Result<(), ExportError> {
        let k = usize::from(split_of(&row.session_id, self.filters.validation_percent) != "train");
        let rows_per_shard = self.options.rows_per_shard.max(1);
        let sink = &mut self.splits[k];
        if let Some(jsonl) = sink.jsonl.as_mut() {
            let line = openai_line(&row.value).to_string();
            writeln!(jsonl, "{line}").map_err(|e| ExportError::io(&self.out_dir, e))?;
        }
        let entry = json!([k, sink.shards.len(), sink.pending.len(),
            {"session_id": row.session_id, "turn_ids": row.turn_ids, "event_ids": row.event_ids}]);
        writeln!(self.lineage, "{entry}").map_err(|e| ExportError::io(&self.lineage_path, e))?;
        if !sink.sessions.contains(&row.session_id) {
            sink.sessions.insert(row.session_id);
        }
        sink.pending.push(row.value);
        sink.rows += 1;
        if sink.pending.len() >= rows_per_shard {
            let schema = Arc::clone(&self.dataset.schema);
            flush_shard(&self.out_dir, sink, schema)?;
        }
        Ok(())
    }

    /// Writes the last shards, names every shard `<split>-i-of-N`, and
    /// writes the card and the manifest (`counts` along with the sessions
    /// per split).
    ///
    /// Errors: encoding and I/O errors.
    pub(crate) fn finish(
        mut self,
        counts: BTreeMap<String, usize>,
        sessions_skipped: usize,
    ) -> Result<ExportSummary, ExportError> {
        let mut shards: Vec<ShardInfo> = Vec::new();
        // Final path of every shard, by split and shard index.
        let mut paths: [Vec<String>; 2] = [Vec::new(), Vec::new()];
        let mut counts = counts;
        let mut total = 0;
        for (k, sink) in self.splits.iter_mut().enumerate() {
            // An empty validation split is left out (loaders reject empty
            // splits); train always has a shard, possibly empty.
            if !sink.pending.is_empty() || (sink.shards.is_empty() && k == 0) {
                flush_shard(&self.out_dir, sink, Arc::clone(&self.dataset.schema))?;
            }
            if let Some(mut jsonl) = sink.jsonl.take() {
                jsonl
                    .flush()
                    .map_err(|e| ExportError::io(&self.out_dir, e))?;
            }
            if sink.rows == 0 && k == 1 {
                let path = self.out_dir.join("validation.jsonl");
                if path.exists() {
                    std::fs::remove_file(&path).map_err(|e| ExportError::io(&path, e))?;
                }
            }
            let count = sink.shards.len();
            for (index, (temp, rows, bytes, sha256)) in sink.shards.iter().enumerate() {
                let name = format!("{}-{index:05}-of-{count:05}.parquet", sink.name);
                let path = self.out_dir.join("data").join(&name);
                std::fs::rename(temp, &path).map_err(|e| ExportError::io(&path, e))?;
                paths[k].push(format!("data/{name}"));
                shards.push(ShardInfo {
                    path: format!("data/{name}"),
                    split: sink.name.to_string(),
                    rows: *rows,
                    bytes: *bytes,
                    sha256: sha256.clone(),
                });
            }
            if sink.rows > 0 || k == 0 {
                counts.insert(format!("sessions_{}", sink.name), sink.sessions.len());
            }
            total += sink.rows;
        }
        self.lineage
            .flush()
            .map_err(|e| ExportError::io(&self.lineage_path, e))?;
        let mut splits: Vec<&str> = vec!["train"];
        if shards.iter().any(|s| s.split == "validation") {
            splits.push("validation");
        }
        let events_version = self.engine.events_version();
        let mut manifest = ExportManifest::new(
            self.dataset.target,
            events_version,
            self.options,
            total,
            sessions_skipped,
            shards.clone(),
            Vec::new(),
        );
        manifest.filters = Some(self.filters.to_json());
        manifest.counts = Some(json!(counts));
        manifest.split = Some(json!({"rule": SPLIT_RULE,
            "validation_percent": self.filters.validation_percent}));
        let manifest_path = self.write_manifest(&manifest, &paths)?;
        let card = dataset_card(
            &format!("{} dataset exported by trajectory", self.dataset.target),
            &splits,
            &card_body(
                &self.dataset,
                events_version,
                self.options,
                self.filters,
                &manifest,
            ),
        );
        let card_path = self.out_dir.join("README.md");
        std::fs::write(&card_path, card).map_err(|e| ExportError::io(&card_path, e))?;
        Ok(ExportSummary {
            target: self.dataset.target.to_string(),
            out_dir: self.out_dir.display().to_string(),
            events_version,
            rows: total,
            sessions_skipped,
            shards,
            manifest: manifest_path.display().to_string(),
        })
    }

    /// `manifest.json`: the manifest's fields, then its `lineage` array
    /// copied entry by entry from the lineage file (each entry's shard
    /// resolved to its final path).
    fn write_manifest(
        &self,
        manifest: &ExportManifest,
        paths: &[Vec<String>; 2],
    ) -> Result<PathBuf, ExportError> {
        let path = self.out_dir.join("manifest.json");
        let head = serde_json::to_string_pretty(manifest)
            .map_err(|e| ExportError::Internal(format!("manifest: {e}")))?;
        // `lineage` is the struct's last field: `  "lineage": []\n}`.
        let head = head
            .strip_suffix("\"lineage\": []\n}")
            .ok_or_else(|| ExportError::Internal("manifest layout changed".into()))?;
        let file = File::create(&path).map_err(|e| ExportError::io(&path, e))?;
        let mut out = BufWriter::new(file);
        let io = |e| ExportError::io(&path, e);
        write!(out, "{head}\"lineage\": [").map_err(io)?;
        let lines = File::open(&self.lineage_path)
            .map(BufReader::new)
            .map_err(|e| ExportError::io(&self.lineage_path, e))?;
        let mut first = true;
        for line in lines.lines() {
            let line = line.map_err(|e| ExportError::io(&self.lineage_path, e))?;
            let entry: Value = serde_json::from_str(&line)
                .map_err(|e| ExportError::Internal(format!("lineage: {e}")))?;
            let (k, shard, row) = (
                entry[0].as_u64().unwrap_or(0) as usize,
                entry[1].as_u64().unwrap_or(0) as usize,
                entry[2].clone(),
            );
            let shard_path = paths
                .get(k)
                .and_then(|p| p.get(shard))
                .cloned()
                .unwrap_or_default();
            let mut record = json!({"shard": shard_path, "row": row});
            if let (Some(record), Some(more)) = (record.as_object_mut(), entry[3].as_object()) {
                record.extend(more.clone());
            }
            let separator = if first { "\n    " } else { ",\n    " };
            first = false;
            write!(out, "{separator}{record}").map_err(io)?;
        }
        let close = if first { "]\n}\n" } else { "\n  ]\n}\n" };
        write!(out, "{close}").map_err(io)?;
        out.flush().map_err(io)?;
        std::fs::remove_file(&self.lineage_path)
            .map_err(|e| ExportError::io(&self.lineage_path, e))?;
        Ok(path)
    }
}

/// Encodes the split's waiting rows as one batch and writes them as its
/// next shard, under a temporary name.
fn flush_shard(out_dir: &Path, sink: &mut SplitSink, schema: SchemaRef) -> Result<(), ExportError> {
    let values = std::mem::take(&mut sink.pending);
    let mut decoder = ReaderBuilder::new(Arc::clone(&schema)).build_decoder()?;
    decoder.serialize(&values)?;
    let batch = decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&schema)));
    if batch.num_rows() != values.len() {
        return Err(ExportError::Internal(format!(
            "{} rows decoded for {} values",
            batch.num_rows(),
            values.len()
        )));
    }
    drop(values);
    let path = out_dir.join("data").join(format!(
        ".{}-{:05}.parquet.partial",
        sink.name,
        sink.shards.len()
    ));
    let file = File::create(&path).map_err(|e| ExportError::io(&path, e))?;
    let mut writer = ArrowWriter::try_new(BufWriter::new(file), schema, Some(shard_properties()?))?;
    writer.write(&batch)?;
    writer.close()?;
    let (bytes, sha256) = file_digest(&path)?;
    sink.shards.push((path, batch.num_rows(), bytes, sha256));
    Ok(())
}
