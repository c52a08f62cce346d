//! Arrow columns in and out: reading query results into Rust values whatever
//! the physical string type (`Utf8`, `LargeUtf8`, `Utf8View`), and building
//! the derived tables' columns.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListBuilder, RecordBatch,
    StringBuilder, TimestampMicrosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, TimeUnit};

use crate::DeriveError;

/// Typed access to the columns of one batch, by name.
pub(crate) struct Columns<'a> {
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    pub(crate) fn new(batch: &'a RecordBatch) -> Columns<'a> {
        Columns { batch }
    }

    fn cast(&self, name: &str, to: &DataType) -> Result<ArrayRef, DeriveError> {
        let column = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| DeriveError::Column(format!("missing column {name}")))?;
        cast(column, to).map_err(|e| DeriveError::Column(format!("column {name}: {e}")))
    }

    pub(crate) fn strings(&self, name: &str) -> Result<Vec<Option<String>>, DeriveError> {
        let array = self.cast(name, &DataType::Utf8)?;
        let array = array.as_string::<i32>();
        Ok((0..array.len())
            .map(|i| (!array.is_null(i)).then(|| array.value(i).to_string()))
            .collect())
    }

    pub(crate) fn ints(&self, name: &str) -> Result<Vec<Option<i64>>, DeriveError> {
        let array = self.cast(name, &DataType::Int64)?;
        let array = array.as_primitive::<Int64Type>();
        Ok((0..array.len())
            .map(|i| (!array.is_null(i)).then(|| array.value(i)))
            .collect())
    }

    pub(crate) fn floats(&self, name: &str) -> Result<Vec<Option<f64>>, DeriveError> {
        let array = self.cast(name, &DataType::Float64)?;
        let array = array.as_primitive::<Float64Type>();
        Ok((0..array.len())
            .map(|i| (!array.is_null(i)).then(|| array.value(i)))
            .collect())
    }

    pub(crate) fn bools(&self, name: &str) -> Result<Vec<Option<bool>>, DeriveError> {
        let array = self.cast(name, &DataType::Boolean)?;
        let array = array.as_boolean();
        Ok((0..array.len())
            .map(|i| (!array.is_null(i)).then(|| array.value(i)))
            .collect())
    }
}

/// The Arrow type of timestamp columns in derived tables (µs, UTC), the same
/// as `events.ts`.
pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The `event_ids` field every derived table carries: `List<Utf8>`.
pub(crate) fn event_ids_field() -> Field {
    Field::new(
        "event_ids",
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        false,
    )
}

/// A string column of `values`, its buffers allocated once at their final
/// size (collecting grows the value buffer by doubling: a copy of the
/// column per growth, costly for megabyte contexts).
pub(crate) fn utf8<'a, I: IntoIterator<Item = Option<&'a str>>>(values: I) -> ArrayRef {
    let values: Vec<Option<&str>> = values.into_iter().collect();
    let bytes = values.iter().flatten().map(|v| v.len()).sum();
    let mut builder = StringBuilder::with_capacity(values.len(), bytes);
    builder.extend(values);
    Arc::new(builder.finish())
}

pub(crate) fn int64<I: IntoIterator<Item = Option<i64>>>(values: I) -> ArrayRef {
    Arc::new(values.into_iter().collect::<Int64Array>())
}

pub(crate) fn float64<I: IntoIterator<Item = Option<f64>>>(values: I) -> ArrayRef {
    Arc::new(values.into_iter().collect::<Float64Array>())
}

pub(crate) fn boolean<I: IntoIterator<Item = Option<bool>>>(values: I) -> ArrayRef {
    Arc::new(values.into_iter().collect::<BooleanArray>())
}

pub(crate) fn timestamps<I: IntoIterator<Item = Option<i64>>>(values: I) -> ArrayRef {
    Arc::new(
        values
            .into_iter()
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    )
}

/// A `List<Utf8>` column with one list per row.
pub(crate) fn string_lists<'a, R, I>(rows: R) -> ArrayRef
where
    R: IntoIterator<Item = I>,
    I: IntoIterator<Item = &'a str>,
{
    let mut builder = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::Utf8,
        true,
    )));
    for row in rows {
        for value in row {
            builder.values().append_value(value);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

/// A 32-hex-char blake3 id over `parts` (NUL-separated), the width of event ids.
pub(crate) fn stable_id(parts: &[&str]) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    hasher.finalize().to_hex()[..32].to_string()
}
