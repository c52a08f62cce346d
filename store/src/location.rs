//! Where a store lives: `--store` / `TRAJECTORY_STORE` parsed into a URL.

use std::path::{Path, PathBuf};

use url::Url;

use crate::StoreError;

/// A parsed store root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    root: Url,
}

impl StoreLocation {
    /// Parses a store location.
    ///
    /// Accepted: a directory path (relative or absolute; created if missing) or a
    /// `file://` URL. Object-store URLs (`s3://…`) are recognised and refused with
    /// a hint until object storage support lands.
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
                "s3" | "s3a" | "gs" | "az" | "abfss" => Err(invalid(
                    "object storage is not supported by this build yet; use a local directory",
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
        self.root.to_file_path().ok()
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
        let err = StoreLocation::parse("s3://bucket/prefix").unwrap_err();
        assert!(err.to_string().contains("object storage"), "{err}");
        let err = StoreLocation::parse("ftp://x").unwrap_err();
        assert!(err.to_string().contains("unknown scheme"), "{err}");
        assert!(StoreLocation::parse("").is_err());
    }
}
