//! Reading typed columns out of query results, whatever string encoding
//! (`Utf8`, `LargeUtf8`, `Utf8View`) DataFusion chose.

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};

use crate::ExportError;

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, ExportError> {
    batch
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| ExportError::Internal(format!("query result has no column {name}")))
}

/// A string column as `Utf8`.
pub fn strings(batch: &RecordBatch, name: &str) -> Result<StringArray, ExportError> {
    let casted = cast(column(batch, name)?, &DataType::Utf8)?;
    Ok(casted.as_string::<i32>().clone())
}

/// An integer column as `Int64` values (nulls as `None`).
pub fn ints(batch: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>, ExportError> {
    let casted = cast(column(batch, name)?, &DataType::Int64)?;
    Ok(casted.as_primitive::<Int64Type>().iter().collect())
}

/// A float column as `Float64` values (nulls as `None`).
pub fn floats(batch: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>, ExportError> {
    let casted = cast(column(batch, name)?, &DataType::Float64)?;
    Ok(casted.as_primitive::<Float64Type>().iter().collect())
}

/// The value at `row` of a string column, owned.
pub fn value(array: &StringArray, row: usize) -> Option<String> {
    (!array.is_null(row)).then(|| array.value(row).to_string())
}
