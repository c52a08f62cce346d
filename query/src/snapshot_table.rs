//! A DataFusion table over the segments one Delta snapshot references,
//! planned from a file list built once per [`crate::QueryEngine`].
//!
//! delta-rs' own provider plans every query through delta-kernel (log
//! replay, a kernel scan, per-file transforms above the Parquet scan). For
//! the tables this store writes (no deletion vectors, no column mapping:
//! [`SnapshotTable::try_new`] checks both and declines otherwise) a scan is
//! just the snapshot's Parquet files with their `date` partition value, so
//! this provider hands DataFusion's own Parquet scan the file list and lets
//! DataFusion do the rest: partition pruning on `date`, row-group pruning on
//! statistics, projection, footers cached across queries in the session's
//! file-metadata cache. docs/architecture.md ("Query scans") has the
//! measurements behind the choice.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, ScalarValue, Statistics};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::helpers::{expr_applicable_for_cols, filter_partitioned_file};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use trajectory_store::deltalake::logstore::object_store::ObjectMeta;
use trajectory_store::deltalake::{DeltaTable, DeltaTableError, Path};

use crate::local_reads::LocalReads;

/// The segments of one Delta table version, as a DataFusion table.
///
/// Shape: the table's columns in Delta order (`date` keeps its place, e.g.
/// index 2 of `events`); each file contributes its rows with the file's
/// partition values. Read-only.
#[derive(Debug)]
pub struct SnapshotTable {
    /// Columns in the table's (Delta) order.
    schema: SchemaRef,
    /// Columns stored in the files, in table order without the partitions.
    file_schema: SchemaRef,
    /// Partition columns, in the table's partition order.
    partition_fields: Vec<FieldRef>,
    /// For each column of `schema`, its index in the scan's schema
    /// (`file_schema` then `partition_fields`).
    scan_index: Vec<usize>,
    /// The snapshot's files with their partition values, largest first.
    files: Vec<PartitionedFile>,
    /// Row count over all files when every file records one.
    rows: Option<usize>,
    store_url: ObjectStoreUrl,
}

impl SnapshotTable {
    /// Builds the table from `table`'s loaded snapshot and registers the
    /// table's object store (rooted at the table) with `ctx`.
    ///
    /// Returns `Ok(None)` when the snapshot uses a Delta feature this scan
    /// does not apply (deletion vectors, column mapping): the caller falls
    /// back to delta-rs' provider.
    ///
    /// Errors: a snapshot that is not loaded; a partition value that does
    /// not parse as its column's type.
    pub fn try_new(
        table: &DeltaTable,
        ctx: &SessionContext,
    ) -> std::result::Result<Option<SnapshotTable>, DeltaTableError> {
        let state = table.snapshot()?;
        let snapshot = state.snapshot();
        let mapping = snapshot
            .metadata()
            .configuration()
            .get("delta.columnMapping.mode")
            .map(String::as_str);
        if !matches!(mapping, None | Some("none")) {
            return Ok(None);
        }
        let schema = snapshot.arrow_schema();
        let partition_names = snapshot.metadata().partition_columns().to_vec();
        let (mut file_fields, mut partition_fields) = (Vec::new(), Vec::new());
        for field in schema.fields() {
            if partition_names.contains(field.name()) {
                partition_fields.push(Arc::clone(field));
            } else {
                file_fields.push(Arc::clone(field));
            }
        }
        // The scan's columns are the file columns, then the partition
        // columns in the table's partition order.
        partition_fields.sort_by_key(|f| partition_names.iter().position(|p| p == f.name()));
        let scan_names: Vec<&String> = file_fields
            .iter()
            .chain(partition_fields.iter())
            .map(|f| f.name())
            .collect();
        let scan_index = schema
            .fields()
            .iter()
            .map(|f| scan_names.iter().position(|n| *n == f.name()).unwrap_or(0))
            .collect();
        let mut files = Vec::new();
        let mut rows = Some(0usize);
        for file in snapshot.log_data().iter() {
            if file.deletion_vector_descriptor().is_some() {
                return Ok(None);
            }
            let values = file.partition_values_map();
            let partition_values = partition_fields
                .iter()
                .map(|field| match values.get(field.name()).cloned().flatten() {
                    Some(text) => ScalarValue::try_from_string(text, field.data_type()),
                    None => ScalarValue::try_from(field.data_type()),
                })
                .collect::<Result<Vec<_>>>()
                .map_err(|e| {
                    DeltaTableError::Generic(format!("partition value of {}: {e}", file.path()))
                })?;
            let size = u64::try_from(file.size()).unwrap_or(0);
            rows = rows.zip(file.num_records()).map(|(a, b)| a + b);
            let last_modified = DateTime::<Utc>::from_timestamp_millis(file.modification_time())
                .unwrap_or_default();
            files.push(
                PartitionedFile::new_from_meta(ObjectMeta {
                    location: Path::from(file.path().as_ref()),
                    last_modified,
                    size,
                    e_tag: None,
                    version: None,
                })
                .with_partition_values(partition_values),
            );
        }
        files.sort_by_key(|f| std::cmp::Reverse(f.object_meta.size));
        let log_store = table.log_store();
        let store_url = log_store.object_store_url();
        let mut object_store = log_store.object_store(None);
        if let Ok(root) = table.table_url().to_file_path() {
            // A local table: small reads in place (`crate::local_reads`).
            object_store = Arc::new(LocalReads::new(root, object_store));
        }
        ctx.runtime_env()
            .register_object_store(store_url.as_ref(), object_store);
        Ok(Some(SnapshotTable {
            file_schema: Arc::new(Schema::new(file_fields)),
            schema,
            partition_fields,
            scan_index,
            files,
            rows,
            store_url,
        }))
    }

    /// Number of files the snapshot references.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    fn partition_names(&self) -> Vec<&str> {
        self.partition_fields
            .iter()
            .map(|f| f.name().as_str())
            .collect()
    }

    /// The files whose partition values pass every filter that only reads
    /// partition columns.
    fn pruned_files(&self, filters: &[Expr]) -> Result<Vec<PartitionedFile>> {
        let names = self.partition_names();
        let partition_filters: Vec<Expr> = filters
            .iter()
            .filter(|f| !names.is_empty() && expr_applicable_for_cols(&names, f))
            .cloned()
            .collect();
        if partition_filters.is_empty() {
            return Ok(self.files.clone());
        }
        let partition_schema = DFSchema::try_from(Schema::new(
            self.partition_fields
                .iter()
                .map(|f| Field::new(f.name(), f.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ))?;
        let mut kept = Vec::new();
        for file in &self.files {
            if let Some(file) =
                filter_partitioned_file(file.clone(), &partition_filters, &partition_schema)?
            {
                kept.push(file);
            }
        }
        Ok(kept)
    }
}

/// Spreads `files` (largest first) over `groups` groups, each file to the
/// group with the fewest bytes so far.
fn balanced_groups(files: Vec<PartitionedFile>, groups: usize) -> Vec<FileGroup> {
    let groups = groups.max(1).min(files.len().max(1));
    let mut buckets: Vec<(u64, Vec<PartitionedFile>)> =
        (0..groups).map(|_| (0, Vec::new())).collect();
    for file in files {
        let lightest = buckets
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("at least one group");
        lightest.0 += file.object_meta.size;
        lightest.1.push(file);
    }
    buckets
        .into_iter()
        .filter(|(_, files)| !files.is_empty())
        .map(|(_, files)| FileGroup::new(files))
        .collect()
}

#[async_trait]
impl TableProvider for SnapshotTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let files = self.pruned_files(filters)?;
        let projected: Vec<usize> = match projection {
            Some(columns) => columns.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        if files.is_empty() {
            return Ok(Arc::new(EmptyExec::new(Arc::new(
                self.schema.project(&projected)?,
            ))));
        }
        let all_files = files.len() == self.files.len();
        let scan_projection: Vec<usize> = projected.iter().map(|i| self.scan_index[*i]).collect();
        let table_schema = TableSchema::builder(Arc::clone(&self.file_schema))
            .with_table_partition_cols(self.partition_fields.clone())
            .build();
        let mut statistics = Statistics::new_unknown(table_schema.table_schema());
        // File bytes of what is scanned (after `date` pruning), as an estimate.
        let scanned_bytes: u64 = files.iter().map(|f| f.object_meta.size).sum();
        statistics.total_byte_size = Precision::Inexact(scanned_bytes as usize);
        if let (Some(rows), true) = (self.rows, all_files) {
            statistics.num_rows = Precision::Exact(rows);
        }
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let source = format.file_source(table_schema);
        let groups = balanced_groups(files, state.config().target_partitions());
        let config = FileScanConfigBuilder::new(self.store_url.clone(), source)
            .with_file_groups(groups)
            .with_statistics(statistics)
            .with_projection_indices(Some(scan_projection))?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let names = self.partition_names();
        Ok(filters
            .iter()
            .map(|filter| {
                if !names.is_empty() && expr_applicable_for_cols(&names, filter) {
                    // Answered by the file list: a file's rows all share
                    // its partition values.
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }
}
