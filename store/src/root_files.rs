//! Files the store keeps beside its tables, under `<root>/_trajectory/`:
//! the writer lock (local stores) and the redaction key.

use std::fs::File;

use deltalake::logstore::object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use deltalake::{DeltaTableError, ObjectStoreError, Path};

use crate::{EventStore, StoreError};

const REDACTION_KEY: &str = "_trajectory/redaction.key";

impl EventStore {
    /// An exclusive lock on `<root>/_trajectory/ingest.lock` held until the
    /// returned file is dropped (or the process dies: it is an OS file lock,
    /// so a killed writer never leaves it stuck). Waits for the holder.
    /// `None` for object-storage stores, whose writers rely on put-if-absent
    /// commits and re-deduplicate after losing a race instead.
    ///
    /// Errors: [`StoreError::Io`] if the lock file cannot be created or locked.
    pub fn lock_writers(&self) -> Result<Option<File>, StoreError> {
        let Some(root) = self.location().local_path() else {
            return Ok(None);
        };
        let dir = root.join("_trajectory");
        let io = |source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("ingest.lock"))
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(Some(file))
    }

    /// The store's 32-byte redaction key at `<root>/_trajectory/redaction.key`,
    /// created from `fresh` on first use (put-if-absent, so concurrent first
    /// writers agree on one key). Local key files get mode 0600.
    ///
    /// Errors: a key of the wrong length (restore it from a backup: masks made
    /// with it cannot be joined otherwise); storage errors.
    pub async fn redaction_key(&self, fresh: [u8; 32]) -> Result<[u8; 32], StoreError> {
        let store = self.location().object_store()?;
        let path = Path::from(REDACTION_KEY);
        let object = |source| StoreError::Delta(DeltaTableError::ObjectStore { source });
        for _ in 0..3 {
            match store.get(&path).await {
                Ok(found) => {
                    let bytes = found.bytes().await.map_err(object)?;
                    return <[u8; 32]>::try_from(bytes.as_ref()).map_err(|_| {
                        StoreError::InvalidTable(format!(
                            "{REDACTION_KEY} under {} is not a 32-byte key; restore it from a backup \
                             (masks made with it cannot be re-joined otherwise)",
                            self.location().root()
                        ))
                    });
                }
                Err(ObjectStoreError::NotFound { .. }) => {}
                Err(e) => return Err(object(e)),
            }
            let put = store
                .put_opts(
                    &path,
                    PutPayload::from(fresh.to_vec()),
                    PutOptions {
                        mode: PutMode::Create,
                        ..Default::default()
                    },
                )
                .await;
            match put {
                Ok(_) => {
                    #[cfg(unix)]
                    if let Some(root) = self.location().local_path() {
                        use std::os::unix::fs::PermissionsExt;
                        let file = root.join(REDACTION_KEY);
                        let _ =
                            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600));
                    }
                    return Ok(fresh);
                }
                Err(ObjectStoreError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(object(e)),
            }
        }
        Err(StoreError::InvalidTable(format!(
            "could not read or create {REDACTION_KEY}"
        )))
    }
}
