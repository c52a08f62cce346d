//! The two concurrent stages around an ingest run's fold: a pool of reader
//! threads that read and normalise sources ahead of the fold, and a writer
//! task that turns folded chunks into segments while the next chunk is read.
//!
//! Order is kept: the fold receives sources in read order (oldest first,
//! `crate::read_order`) whatever order the readers finish in. Memory is bounded: readers run at most
//! [`READ_AHEAD_PER_WORKER`] sources per worker ahead of the fold, and the
//! writer holds one chunk while the fold builds the next.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use deltalake::arrow::array::RecordBatch;
use tokio::sync::mpsc;
use trajectory_store::{deltalake, StagedAppend, StoreError};

use super::{Normaliser, Prepared};
use crate::sources::Source;

/// How many sources each reader may be ahead of the fold. Large enough to
/// keep readers busy while the fold waits on a slow source or a full writer,
/// small enough that a window of large transcripts fits in memory.
pub const READ_AHEAD_PER_WORKER: usize = 4;

/// Claim bookkeeping shared by the readers and the fold.
struct Window {
    /// `(next index to claim, sources folded so far)`.
    state: Mutex<(usize, usize)>,
    changed: Condvar,
    limit: usize,
    stopped: AtomicBool,
}

/// Reader threads reading `sources` ahead of the fold, in parallel.
pub(super) struct ReaderPool {
    window: Arc<Window>,
    results: mpsc::UnboundedReceiver<(usize, Prepared)>,
    arrived: BTreeMap<usize, Prepared>,
    next: usize,
}

impl ReaderPool {
    /// Starts `workers` threads reading `sources` with `normaliser`.
    pub(super) fn start(
        normaliser: Arc<Normaliser>,
        sources: Vec<Source>,
        workers: usize,
    ) -> ReaderPool {
        let workers = workers.max(1);
        let window = Arc::new(Window {
            state: Mutex::new((0, 0)),
            changed: Condvar::new(),
            limit: workers * READ_AHEAD_PER_WORKER,
            stopped: AtomicBool::new(false),
        });
        let (sender, results) = mpsc::unbounded_channel();
        let sources = Arc::new(sources);
        for _ in 0..workers.min(sources.len()) {
            let (window, sender, sources, normaliser) = (
                Arc::clone(&window),
                sender.clone(),
                Arc::clone(&sources),
                Arc::clone(&normaliser),
            );
            std::thread::spawn(move || {
                while let Some(index) = window.claim(sources.len()) {
                    let prepared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        normaliser.prepare(&sources[index])
                    }))
                    .unwrap_or_else(|_| Prepared::failed("reader thread panicked"));
                    if sender.send((index, prepared)).is_err() {
                        break;
                    }
                }
            });
        }
        ReaderPool {
            window,
            results,
            arrived: BTreeMap::new(),
            next: 0,
        }
    }

    /// The next source in read order, once a reader has it.
    pub(super) async fn next_in_order(&mut self) -> Prepared {
        let index = self.next;
        self.next += 1;
        let prepared = loop {
            if let Some(prepared) = self.arrived.remove(&index) {
                break prepared;
            }
            match self.results.recv().await {
                Some((i, prepared)) => {
                    self.arrived.insert(i, prepared);
                }
                // Every reader has exited without producing it (cannot happen
                // while claims are in order; kept as an error, not a hang).
                None => break Prepared::failed("reader threads stopped early"),
            }
        };
        self.window.folded();
        prepared
    }
}

impl Drop for ReaderPool {
    fn drop(&mut self) {
        self.window.stopped.store(true, Ordering::SeqCst);
        self.window.changed.notify_all();
    }
}

impl Window {
    /// The next source index for a reader, waiting while the readers are
    /// `limit` sources ahead of the fold; `None` when all are claimed or the
    /// run stopped.
    fn claim(&self, total: usize) -> Option<usize> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.stopped.load(Ordering::SeqCst) || state.0 >= total {
                return None;
            }
            if state.0 < state.1 + self.limit {
                state.0 += 1;
                return Some(state.0 - 1);
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn folded(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 += 1;
        drop(state);
        self.changed.notify_all();
    }
}

/// A task writing chunks as segments of a staged append, one at a time,
/// while the caller builds the next.
pub(super) struct SegmentWriter {
    chunks: mpsc::Sender<Vec<RecordBatch>>,
    task: tokio::task::JoinHandle<Result<StagedAppend, StoreError>>,
}

impl SegmentWriter {
    /// Starts the writer task over `staged`.
    pub(super) fn start(mut staged: StagedAppend) -> SegmentWriter {
        let (chunks, mut received) = mpsc::channel::<Vec<RecordBatch>>(1);
        let task = tokio::spawn(async move {
            while let Some(batches) = received.recv().await {
                staged.stage_batches(batches).await?;
            }
            Ok(staged)
        });
        SegmentWriter { chunks, task }
    }

    /// Hands a chunk (its batches, one per day) to the writer, waiting while
    /// it still holds the one before. Errors: the writer's error, if it
    /// failed on an earlier chunk.
    pub(super) async fn write(&mut self, batches: Vec<RecordBatch>) -> Result<(), StoreError> {
        if self.chunks.send(batches).await.is_err() {
            // The task ended early: it failed; its error is the one to report.
            return Err(self.take_error().await);
        }
        Ok(())
    }

    async fn take_error(&mut self) -> StoreError {
        match (&mut self.task).await {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => StoreError::Delta(deltalake::DeltaTableError::Generic(
                "segment writer stopped early".into(),
            )),
            Err(e) => StoreError::Delta(deltalake::DeltaTableError::Generic(format!(
                "segment writer failed: {e}"
            ))),
        }
    }

    /// Waits for every chunk to be written and returns the staged append.
    pub(super) async fn finish(self) -> Result<StagedAppend, StoreError> {
        let SegmentWriter { chunks, task } = self;
        drop(chunks);
        match task.await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Delta(deltalake::DeltaTableError::Generic(
                format!("segment writer failed: {e}"),
            ))),
        }
    }
}
