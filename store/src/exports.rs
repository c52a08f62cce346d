//! The store's register of exports: every dataset written from it, so that
//! an erasure can name the shards that contained erased events.
//!
//! One small JSON object per export at `<root>/_trajectory/exports/<export_id>.json`
//! (written once, put-if-absent), holding where the export's `manifest.json` is.

use deltalake::logstore::object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use deltalake::{DeltaTableError, Path};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::{EventStore, StoreError};

const EXPORTS_PREFIX: &str = "_trajectory/exports";

/// One export, as registered in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// Unique id of the export run.
    pub export_id: String,
    /// The target format (`trl-sft`, ...).
    pub target: String,
    /// The dataset directory (absolute path on the machine that exported).
    pub out_dir: String,
    /// The export's `manifest.json` (absolute path).
    pub manifest_path: String,
    /// The `events` version the export read.
    pub events_version: u64,
    /// When, RFC 3339 UTC.
    pub created_at: String,
}

fn object_error(source: deltalake::ObjectStoreError) -> StoreError {
    StoreError::Delta(DeltaTableError::ObjectStore { source })
}

impl EventStore {
    /// Registers an export.
    ///
    /// Errors: object-store errors (including an existing record with the
    /// same id).
    pub async fn record_export(&self, record: &ExportRecord) -> Result<(), StoreError> {
        let store = self.location().object_store()?;
        let path = Path::from(format!("{EXPORTS_PREFIX}/{}.json", record.export_id));
        let body = serde_json::to_vec_pretty(record)
            .map_err(|e| StoreError::Delta(DeltaTableError::Generic(e.to_string())))?;
        store
            .put_opts(
                &path,
                PutPayload::from(body),
                PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                },
            )
            .await
            .map_err(object_error)?;
        Ok(())
    }

    /// Every registered export, oldest first. Unreadable records are skipped
    /// with a warning.
    pub async fn exports(&self) -> Result<Vec<ExportRecord>, StoreError> {
        let store = self.location().object_store()?;
        let prefix = Path::from(EXPORTS_PREFIX);
        let metas: Vec<_> = store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(object_error)?;
        let mut out = Vec::new();
        for meta in metas {
            let bytes = store
                .get(&meta.location)
                .await
                .map_err(object_error)?
                .bytes()
                .await
                .map_err(object_error)?;
            match serde_json::from_slice::<ExportRecord>(&bytes) {
                Ok(record) => out.push(record),
                Err(e) => tracing::warn!("skipping export record {}: {e}", meta.location),
            }
        }
        out.sort_by(|a, b| (&a.created_at, &a.export_id).cmp(&(&b.created_at, &b.export_id)));
        Ok(out)
    }
}
