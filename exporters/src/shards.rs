//! Hugging Face style dataset directories: Parquet shards, a dataset card and
//! a manifest.
//!
//! ```text
//! DIR/
//!   data/train-00000-of-00002.parquet   shards, zstd, named as the Hub expects
//!   data/train-00001-of-00002.parquet
//!   README.md                           dataset card; YAML `configs` maps splits to files
//!   manifest.json                       lineage: events version, counts, sha256 per shard
//! ```
//!
//! Shard naming and the `configs` block follow the Hub's "Manual configuration"
//! docs (<https://huggingface.co/docs/hub/datasets-manual-configuration>), so
//! `load_dataset("parquet", data_files=...)` and `load_dataset(DIR)` both work.

use std::fs::{self, File};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ExportError;

/// One written shard, as recorded in the manifest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ShardInfo {
    /// Path relative to the dataset directory, `/`-separated.
    pub path: String,
    pub split: String,
    pub rows: usize,
    pub bytes: u64,
    /// sha256 of the file, hex.
    pub sha256: String,
}

/// Writes `rows` batches of one split as `DIR/data/<split>-0000i-of-0000N.parquet`,
/// at most `rows_per_shard` rows each (at least one shard, possibly empty, so
/// every split has a file).
///
/// Errors: I/O and Parquet encoding errors.
pub fn write_split(
    dir: &Path,
    split: &str,
    schema: SchemaRef,
    batch: &RecordBatch,
    rows_per_shard: usize,
) -> Result<Vec<ShardInfo>, ExportError> {
    let data_dir = dir.join("data");
    fs::create_dir_all(&data_dir).map_err(|e| ExportError::io(&data_dir, e))?;
    let rows_per_shard = rows_per_shard.max(1);
    let total = batch.num_rows();
    let count = total.div_ceil(rows_per_shard).max(1);
    let props = shard_properties()?;
    let mut shards = Vec::with_capacity(count);
    for index in 0..count {
        let name = format!("{split}-{index:05}-of-{count:05}.parquet");
        let path: PathBuf = data_dir.join(&name);
        let start = (index * rows_per_shard).min(total);
        let len = rows_per_shard.min(total - start);
        let slice = batch.slice(start, len);
        let file = File::create(&path).map_err(|e| ExportError::io(&path, e))?;
        let mut writer = ArrowWriter::try_new(
            BufWriter::new(file),
            Arc::clone(&schema),
            Some(props.clone()),
        )?;
        writer.write(&slice)?;
        writer.close()?;
        let (bytes, sha256) = file_digest(&path)?;
        shards.push(ShardInfo {
            path: format!("data/{name}"),
            split: split.to_string(),
            rows: len,
            bytes,
            sha256,
        });
    }
    Ok(shards)
}

/// How shards are encoded: zstd level 3, `created_by` naming this tool.
///
/// Errors: none in practice (the zstd level is valid).
pub fn shard_properties() -> Result<WriterProperties, ExportError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_created_by(format!("trajectory {}", env!("CARGO_PKG_VERSION")))
        .build())
}

/// Size and sha256 (hex) of a file.
pub fn file_digest(path: &Path) -> Result<(u64, String), ExportError> {
    let mut file = File::open(path).map_err(|e| ExportError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| ExportError::io(path, e))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// Removes shards a previous export left in `DIR/data` (files named
/// `<split>-*-of-*.parquet`), so a re-export never mixes old and new shards.
pub fn clear_previous_shards(dir: &Path) -> Result<usize, ExportError> {
    let data_dir = dir.join("data");
    let Ok(entries) = fs::read_dir(&data_dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".parquet") && name.contains("-of-") {
            fs::remove_file(entry.path()).map_err(|e| ExportError::io(&entry.path(), e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The dataset card: YAML front matter with `configs`, then a description.
pub fn dataset_card(title: &str, splits: &[&str], body: &str) -> String {
    let mut card = String::from("---\nconfigs:\n- config_name: default\n  data_files:\n");
    for split in splits {
        card.push_str(&format!("  - split: {split}\n    path: data/{split}-*\n"));
    }
    card.push_str("tags:\n- trajectory\n- openclaw\n- agent\n- tool-use\n---\n\n");
    card.push_str(&format!("# {title}\n\n{body}\n"));
    card
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn shards_split_rows_and_hash_files() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from((0..5).collect::<Vec<i64>>()))],
        )
        .unwrap();
        let shards = write_split(dir.path(), "train", Arc::clone(&schema), &batch, 2).unwrap();
        assert_eq!(shards.len(), 3);
        assert_eq!(shards[2].path, "data/train-00002-of-00003.parquet");
        assert_eq!(shards.iter().map(|s| s.rows).sum::<usize>(), 5);
        let (bytes, sha) = file_digest(&dir.path().join(&shards[0].path)).unwrap();
        assert_eq!(
            (bytes, sha.as_str()),
            (shards[0].bytes, shards[0].sha256.as_str())
        );
        assert_eq!(clear_previous_shards(dir.path()).unwrap(), 3);
        let empty = write_split(dir.path(), "train", schema, &batch.slice(0, 0), 2).unwrap();
        assert_eq!(empty.len(), 1);
        assert_eq!(empty[0].rows, 0);
    }

    #[test]
    fn card_has_configs_for_each_split() {
        let card = dataset_card("t", &["train", "validation"], "body");
        assert!(card.starts_with("---\nconfigs:\n"));
        assert!(card.contains("  - split: validation\n    path: data/validation-*\n"));
    }
}
