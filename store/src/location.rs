//! Where a store lives: `--store` / `TRAJECTORY_STORE` parsed into a URL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use deltalake::{DeltaTableBuilder, ObjectStore};
use url::Url;

use crate::StoreError;

/// Registers delta-rs's S3 handlers (`s3://`, `s3a://`) once per process.
fn register_object_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| deltalake::aws::register_handlers(None));
}

/// A parsed store root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    root: Url,
}

impl StoreLocation {
    /// Parses a store location.
    ///
    /// Accepted: a directory path (relative or absolute; created if missing), a
    /// `file://` URL, or `s3://bucket/prefix` (also `s3a://`). S3 credentials,
    /// region and endpoint come from the usual AWS variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL` for S3-compatible servers; an `http://` endpoint is
    /// allowed without further settings). Commits use put-if-absent
    /// (`If-None-Match: *`), so the server must support conditional writes.
    ///
    /// Errors: [`StoreError::InvalidLocation`] for other URL schemes,
    /// [`StoreError::Io`] if the directory cannot be created.
    pub fn parse(location: &str) -> Result<StoreLocation, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidLocation {
            location: location.to_string(),
            reason: reason.to_string(),
        };
        if location.trim().is_empty() {
            return Err(invalid("empty location"));
        }
        if let Some((scheme, _)) = location.split_once("://") {
            return match scheme {
                "file" => {
                    let url = Url::parse(location).map_err(|e| invalid(&e.to_string()))?;
                    let path = url
                        .to_file_path()
                        .map_err(|_| invalid("file URL without a local path"))?;
                    StoreLocation::from_dir(&path, location)
                }
                "s3" | "s3a" => {
                    let mut url = Url::parse(location).map_err(|e| invalid(&e.to_string()))?;
                    if url.host_str().unwrap_or_default().is_empty() {
                        return Err(invalid("no bucket: use s3://BUCKET/PREFIX"));
                    }
                    if !url.path().ends_with('/') {
                        let path = format!("{}/", url.path());
                        url.set_path(&path);
                    }
                    register_object_stores();
                    Ok(StoreLocation { root: url })
                }
                "gs" | "az" | "abfss" => Err(invalid(
                    "only local directories and s3:// (S3-compatible) stores are supported",
                )),
                other => Err(invalid(&format!(
                    "unknown scheme {other:?}; use a directory path or file:// URL"
                ))),
            };
        }
        StoreLocation::from_dir(Path::new(location), location)
    }

    fn from_dir(path: &Path, original: &str) -> Result<StoreLocation, StoreError> {
        std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let absolute: PathBuf = path.canonicalize().map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let root =
            Url::from_directory_path(&absolute).map_err(|_| StoreError::InvalidLocation {
                location: original.to_string(),
                reason: "not an absolute directory path".into(),
            })?;
        Ok(StoreLocation { root })
    }

    /// The root URL, ending in `/`.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// URL of a table under the root (`<root>/<name>/`).
    pub fn table_url(&self, name: &str) -> Url {
        // The root always ends in '/', so join appends.
        self.root
            .join(&format!("{name}/"))
            .unwrap_or_else(|_| self.root.clone())
    }

    /// The local directory of the root, if the store is on local disk.
    pub fn local_path(&self) -> Option<PathBuf> {
        if self.root.scheme() != "file" {
            return None;
        }
        self.root.to_file_path().ok()
    }

    /// Whether the store is on object storage (not a local directory).
    pub fn is_remote(&self) -> bool {
        self.root.scheme() != "file"
    }

    /// Storage options passed to delta-rs / object_store. Credentials and the
    /// endpoint are read from the environment by the S3 factory itself; this
    /// only adds what a plain-HTTP S3-compatible endpoint needs.
    pub fn storage_options(&self) -> HashMap<String, String> {
        let mut options = HashMap::new();
        if self.is_remote() {
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .unwrap_or_default();
            if endpoint.starts_with("http://") {
                options.insert("aws_allow_http".into(), "true".into());
            }
            if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err()
            {
                options.insert("aws_region".into(), "us-east-1".into());
            }
        }
        options
    }

    /// A delta-rs table builder for the table `name` under the root.
    ///
    /// Errors: a Delta error if the URL has no registered object store.
    pub fn table_builder(&self, name: &str) -> Result<DeltaTableBuilder, StoreError> {
        Ok(DeltaTableBuilder::from_url(self.table_url(name))?
            .with_storage_options(self.storage_options()))
    }

    /// An object store rooted at the store root: paths are relative to it
    /// (`events/_delta_log/…`, `_trajectory/…`).
    ///
    /// Errors: a Delta error if the URL has no registered object store.
    pub fn object_store(&self) -> Result<std::sync::Arc<dyn ObjectStore>, StoreError> {
        Ok(deltalake::logstore::store_for(
            &self.root,
            self.storage_options(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_is_created_and_tables_nest_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b");
        let loc = StoreLocation::parse(target.to_str().unwrap()).unwrap();
        assert!(target.is_dir());
        assert!(loc.root().as_str().ends_with("/a/b/"));
        assert!(loc.table_url("events").as_str().ends_with("/a/b/events/"));
        assert_eq!(loc.local_path().unwrap(), target.canonicalize().unwrap());
    }

    #[test]
    fn unsupported_schemes_are_refused_with_a_reason() {
        let loc = StoreLocation::parse("s3://bucket/prefix").unwrap();
        assert!(loc.is_remote() && loc.local_path().is_none());
        assert_eq!(
            loc.table_url("events").as_str(),
            "s3://bucket/prefix/events/"
        );
        let err = StoreLocation::parse("gs://bucket/x").unwrap_err();
        assert!(err.to_string().contains("s3://"), "{err}");
        assert!(StoreLocation::parse("s3:///nobucket").is_err());
        let err = StoreLocation::parse("ftp://x").unwrap_err();
        assert!(err.to_string().contains("unknown scheme"), "{err}");
        assert!(StoreLocation::parse("").is_err());
    }
}
