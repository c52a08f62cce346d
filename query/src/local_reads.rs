//! Column-chunk reads of a local table without a thread hop.
//!
//! `object_store`'s `LocalFileSystem` runs every `get_ranges` call on
//! tokio's blocking pool (`spawn_blocking`), so each Parquet file a query
//! opens costs a hand-off to another thread and back. For the small files
//! of a fresh store (a segment per day, ~100 KB) that hand-off cost more
//! than the read (docs/architecture.md, "Query scans"). [`LocalReads`]
//! answers small range reads in place with positioned reads (`pread`) on
//! the calling thread and hands everything else, large reads included, to
//! the wrapped store unchanged (`trajectory_store::forwarding_object_store!`).

use std::fmt;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use trajectory_store::deltalake::logstore::object_store::{
    self, path::Path, MultipartUpload, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
    PutResult,
};

/// Largest `get_ranges` call (bytes in all) read in place; larger ones go
/// to the wrapped store's blocking pool, so a cold read of a big compacted
/// segment never stalls a query worker for long.
pub const IN_PLACE_READ_BYTES: u64 = 4 << 20;

/// An object store over a local directory whose small range reads run on
/// the calling thread.
#[derive(Debug)]
pub struct LocalReads {
    /// Directory the object paths are relative to.
    root: PathBuf,
    inner: Arc<dyn ObjectStore>,
}

impl LocalReads {
    /// Wraps `inner`, a store rooted at the local directory `root`.
    pub fn new(root: PathBuf, inner: Arc<dyn ObjectStore>) -> LocalReads {
        LocalReads { root, inner }
    }

    fn read_in_place(&self, location: &Path, ranges: &[Range<u64>]) -> std::io::Result<Vec<Bytes>> {
        let mut path = self.root.clone();
        for part in location.parts() {
            path.push(part.as_ref());
        }
        let file = std::fs::File::open(&path)?;
        ranges
            .iter()
            .map(|range| {
                let len = usize::try_from(range.end.saturating_sub(range.start))
                    .map_err(std::io::Error::other)?;
                let mut buffer = vec![0; len];
                file.read_exact_at(&mut buffer, range.start)?;
                Ok(Bytes::from(buffer))
            })
            .collect()
    }
}

impl fmt::Display for LocalReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalReads({})", self.inner)
    }
}

trajectory_store::forwarding_object_store!(LocalReads {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let total: u64 = ranges.iter().map(|r| r.end.saturating_sub(r.start)).sum();
        if total <= IN_PLACE_READ_BYTES {
            // Any failure (a missing file, a short read) is answered by the
            // wrapped store, whose errors say what went wrong in its terms.
            if let Ok(bytes) = self.read_in_place(location, ranges) {
                return Ok(bytes);
            }
        }
        self.inner.get_ranges(location, ranges).await
    }
});

#[cfg(test)]
mod tests {
    use super::*;
    use trajectory_store::deltalake::logstore::object_store::local::LocalFileSystem;

    #[tokio::test]
    async fn small_reads_in_place_match_the_wrapped_store_and_errors_fall_through() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("date=2026-11-01")).unwrap();
        let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        std::fs::write(dir.path().join("date=2026-11-01/part-0.parquet"), &bytes).unwrap();
        let inner: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let store = LocalReads::new(dir.path().to_path_buf(), Arc::clone(&inner));
        let location = Path::from("date=2026-11-01/part-0.parquet");
        let ranges = [2..5, 9_000..10_000, 0..0];
        let direct = store.get_ranges(&location, &ranges).await.unwrap();
        assert_eq!(direct, inner.get_ranges(&location, &ranges).await.unwrap());
        assert_eq!(direct[0].as_ref(), &bytes[2..5]);
        assert_eq!(direct[1].len(), 1_000);
        // Past the end and a missing file: the wrapped store's errors.
        assert!(store
            .get_ranges(&location, std::slice::from_ref(&(9_999..10_001)))
            .await
            .is_err());
        let missing = Path::from("date=2026-11-01/missing.parquet");
        assert!(matches!(
            store
                .get_ranges(&missing, std::slice::from_ref(&(0..1)))
                .await,
            Err(object_store::Error::NotFound { .. })
        ));
    }
}
