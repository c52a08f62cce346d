//! A dataset directory written as its rows arrive: shards per split, the
//! OpenAI JSONL files, the card and the manifest.
//!
//! Rows are pushed one at a time, in the export's deterministic order. Each
//! split gathers at most `rows_per_shard` rows and `shard_bytes` of Arrow
//! data (checked every 256 rows); a full shard is written at once, as one
//! Arrow batch (so, without a byte limit, its bytes are those the old
//! whole-table export wrote), under a temporary name, and renamed
//! `data/<split>-0000i-of-0000N.parquet` when the export ends and `N` is
//! known. Each split's per-row lineage goes to a temporary file as rows
//! arrive and is copied into `manifest.json` at the end.
//!
//! Memory: one shard of rows per split, held as Arrow batches (about the
//! size of the rows' JSON text), plus the distinct session ids for the
//! counts; never the whole dataset.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::SchemaRef;
use arrow::json::reader::Decoder;
use arrow::json::ReaderBuilder;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use serde_json::json;
use trajectory_query::QueryEngine;

use crate::filters::{split_of, ExportFilters, SPLIT_RULE};
use crate::manifest::{ExportManifest, LineageSpool, ManifestWriter};
use crate::shards::{
    clear_previous_shards, dataset_card, file_digest, shard_properties, ShardInfo,
};
use crate::training::{card_body, openai_line, Dataset, Row};
use crate::{ExportError, ExportOptions, ExportSummary};

/// Rows decoded from JSON into Arrow at a time: the tape of a few hundred
/// rows is small, and Arrow holds the rows about as compactly as their text.
const DECODE_ROWS: usize = 256;

/// The two splits, in the order the manifest lists them.
const SPLITS: [&str; 2] = ["train", "validation"];

/// One split being written.
struct SplitSink {
    name: &'static str,
    /// The shard being gathered: its last rows as arrow-json's tape (at most
    /// [`DECODE_ROWS`]), the rows before them as Arrow batches, and how many
    /// rows in all.
    decoder: Decoder,
    decoded: Vec<RecordBatch>,
    /// Bytes of Arrow data in `decoded`.
    decoded_bytes: usize,
    pending: usize,
    /// Shards written so far: temporary path, rows, bytes, sha256.
    shards: Vec<(PathBuf, usize, u64, String)>,
    jsonl: Option<BufWriter<File>>,
    /// Lineage lines of the split: `[shard index, row, {session, turns, events}]`.
    lineage: LineageSpool,
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
            let lineage =
                LineageSpool::create(data_dir.join(format!(".{name}-lineage.jsonl.partial")))?;
            Ok(SplitSink {
                name,
                decoder: ReaderBuilder::new(Arc::clone(&dataset.schema)).build_decoder()?,
                decoded: Vec::new(),
                decoded_bytes: 0,
                pending: 0,
                shards: Vec::new(),
                jsonl,
                lineage,
                sessions: HashSet::new(),
                rows: 0,
            })
        };
        let splits = [sink(SPLITS[0])?, sink(SPLITS[1])?];
        Ok(DatasetWriter {
            engine,
            dataset,
            out_dir: out_dir.to_path_buf(),
            options,
            filters,
            splits,
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
        let entry = json!([sink.shards.len(), sink.pending,
            {"session_id": row.session_id, "turn_ids": row.turn_ids, "event_ids": row.event_ids}]);
        sink.lineage.push(&entry)?;
        if !sink.sessions.contains(&row.session_id) {
            sink.sessions.insert(row.session_id);
        }
        sink.decoder.serialize(std::slice::from_ref(&row.value))?;
        sink.pending += 1;
        sink.rows += 1;
        let mut full = sink.pending >= rows_per_shard;
        if sink.decoder.len() >= DECODE_ROWS {
            if let Some(batch) = sink.decoder.flush()? {
                sink.decoded_bytes += data_bytes(&batch);
                sink.decoded.push(batch);
            }
            let limit = self.options.shard_bytes;
            full |= limit > 0 && sink.decoded_bytes >= limit;
        }
        if full {
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
            if sink.pending > 0 || (sink.shards.is_empty() && k == 0) {
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
    /// copied entry by entry from the splits' lineage spools, in shard order
    /// (each entry's shard resolved to its final path).
    fn write_manifest(
        &mut self,
        manifest: &ExportManifest,
        paths: &[Vec<String>; 2],
    ) -> Result<PathBuf, ExportError> {
        let mut out = ManifestWriter::create(&self.out_dir, manifest)?;
        for (k, sink) in self.splits.iter_mut().enumerate() {
            sink.lineage.drain_into(&mut out, |entry| {
                let shard = entry[0].as_u64().unwrap_or(0) as usize;
                let shard_path = paths[k].get(shard).cloned().unwrap_or_default();
                let mut record = json!({"shard": shard_path, "row": entry[1]});
                if let (Some(record), Some(more)) = (record.as_object_mut(), entry[2].as_object()) {
                    record.extend(more.clone());
                }
                record
            })?;
        }
        out.finish()
    }
}

/// Encodes the split's waiting rows as one batch and writes them as its
/// next shard, under a temporary name.
fn flush_shard(out_dir: &Path, sink: &mut SplitSink, schema: SchemaRef) -> Result<(), ExportError> {
    let expected = std::mem::take(&mut sink.pending);
    if let Some(batch) = sink.decoder.flush()? {
        sink.decoded.push(batch);
    }
    sink.decoded_bytes = 0;
    let batch = one_batch(std::mem::take(&mut sink.decoded), &schema)?;
    if batch.num_rows() != expected {
        return Err(ExportError::Internal(format!(
            "{} rows decoded for {expected} values",
            batch.num_rows()
        )));
    }
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

/// Bytes of a batch's data, from the lengths of its buffers (not their
/// capacities), so the same rows always count the same.
fn data_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
        .sum()
}

/// `batches` as one batch, built column by column, each column's pieces
/// dropped once concatenated: the peak is the shard plus its largest
/// column, not twice the shard. The shard is written as one batch so its
/// pages are cut where a whole-table export cut them (the Parquet writer
/// checks page sizes per mini-batch of each `write` call).
fn one_batch(batches: Vec<RecordBatch>, schema: &SchemaRef) -> Result<RecordBatch, ExportError> {
    if batches.len() == 1 {
        return Ok(batches
            .into_iter()
            .next()
            .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(schema))));
    }
    if batches.is_empty() {
        return Ok(RecordBatch::new_empty(Arc::clone(schema)));
    }
    let mut columns: Vec<Vec<ArrayRef>> =
        vec![Vec::with_capacity(batches.len()); schema.fields().len()];
    for batch in batches {
        for (k, column) in batch.columns().iter().enumerate() {
            columns[k].push(Arc::clone(column));
        }
    }
    let mut out = Vec::with_capacity(columns.len());
    for pieces in columns {
        let refs: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
        out.push(arrow::compute::concat(&refs)?);
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), out)?)
}
