//! Writing query results: a text table, CSV, a JSON array, NDJSON or Parquet.

use std::io::Write;
use std::str::FromStr;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::error::ArrowError;
use deltalake::arrow::util::pretty::pretty_format_batches;
use deltalake::parquet::arrow::ArrowWriter;
use trajectory_store::deltalake;

/// An output format of `trajectory sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table for people.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON array of row objects (nulls omitted).
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A Parquet file (zstd) on stdout.
    Parquet,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<OutputFormat, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            "ndjson" | "jsonl" => Ok(OutputFormat::Ndjson),
            "parquet" => Ok(OutputFormat::Parquet),
            other => Err(format!(
                "unknown format {other:?}; use table, csv, json, ndjson or parquet"
            )),
        }
    }
}

/// Writes `batches` (all of `schema`) to `out` in `format`.
///
/// Errors: Arrow/Parquet encoding errors and I/O errors of `out`.
pub fn write_batches<W: Write + Send>(
    format: OutputFormat,
    schema: SchemaRef,
    batches: &[RecordBatch],
    mut out: W,
) -> Result<(), ArrowError> {
    match format {
        OutputFormat::Table => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(out, "(0 rows; columns: {})", names.join(", "))?;
            } else {
                writeln!(out, "{}", pretty_format_batches(batches)?)?;
            }
        }
        OutputFormat::Csv => {
            let mut writer = deltalake::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            // CSV has no nested values: lists and structs become JSON text.
            let flat = flat_schema(&schema);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(flat.clone()))?;
            }
            for batch in batches {
                writer.write(&nested_as_json(batch, &flat)?)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = deltalake::arrow::json::ArrayWriter::new(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            drop(writer);
            writeln!(out)?;
        }
        OutputFormat::Ndjson => {
            let mut writer = deltalake::arrow::json::LineDelimitedWriter::new(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
        OutputFormat::Parquet => {
            let props = deltalake::parquet::file::properties::WriterProperties::builder()
                .set_compression(deltalake::parquet::basic::Compression::ZSTD(
                    Default::default(),
                ))
                .build();
            let mut writer = ArrowWriter::try_new(out, schema, Some(props))
                .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            for batch in batches {
                writer
                    .write(batch)
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            }
            writer
                .close()
                .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
        }
    }
    Ok(())
}

/// `schema` with every nested column (list, struct, map) as Utf8.
fn flat_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<deltalake::arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.data_type().is_nested() {
                deltalake::arrow::datatypes::Field::new(
                    f.name(),
                    deltalake::arrow::datatypes::DataType::Utf8,
                    true,
                )
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    std::sync::Arc::new(deltalake::arrow::datatypes::Schema::new(fields))
}

/// Nested columns of `batch` rendered as JSON text (one value per row).
fn nested_as_json(batch: &RecordBatch, flat: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type().is_nested())
    {
        return Ok(batch.clone());
    }
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (index, field) in batch.schema().fields().iter().enumerate() {
        let column = batch.column(index);
        if !field.data_type().is_nested() {
            columns.push(column.clone());
            continue;
        }
        // One-column batch → JSON objects → the value of that column per row.
        let single = RecordBatch::try_new(
            std::sync::Arc::new(deltalake::arrow::datatypes::Schema::new(vec![field
                .as_ref()
                .clone()])),
            vec![column.clone()],
        )?;
        let mut buffer = Vec::new();
        {
            let mut writer = deltalake::arrow::json::LineDelimitedWriter::new(&mut buffer);
            writer.write(&single)?;
            writer.finish()?;
        }
        let text = String::from_utf8_lossy(&buffer);
        let values: Vec<Option<String>> = text
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get(field.name()).cloned())
                    .map(|v| v.to_string())
            })
            .collect();
        columns.push(std::sync::Arc::new(deltalake::arrow::array::StringArray::from(values)) as _);
    }
    RecordBatch::try_new(flat.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::{Int64Array, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a,b"), None])),
            ],
        )
        .unwrap()
    }

    fn render(format: OutputFormat, batches: &[RecordBatch]) -> String {
        let mut out = Vec::new();
        write_batches(format, batch().schema(), batches, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_render_rows() {
        let b = batch();
        let json: serde_json::Value =
            serde_json::from_str(&render(OutputFormat::Json, std::slice::from_ref(&b))).unwrap();
        assert_eq!(json[0]["n"], 1);
        assert_eq!(json[0]["s"], "a,b");
        assert_eq!(json.as_array().unwrap().len(), 2);
        assert_eq!(
            render(OutputFormat::Ndjson, std::slice::from_ref(&b))
                .lines()
                .count(),
            2
        );
        let csv = render(OutputFormat::Csv, std::slice::from_ref(&b));
        assert!(csv.starts_with("n,s\n1,\"a,b\"\n"), "{csv}");
        assert!(render(OutputFormat::Table, &[b]).contains("| a,b |"));
    }

    #[test]
    fn empty_results_are_valid_documents() {
        let json: serde_json::Value =
            serde_json::from_str(&render(OutputFormat::Json, &[])).unwrap();
        assert_eq!(json, serde_json::json!([]));
        assert_eq!(render(OutputFormat::Csv, &[]), "n,s\n");
        assert!(render(OutputFormat::Table, &[]).contains("0 rows"));
        assert!("xml".parse::<OutputFormat>().is_err());
    }
}
