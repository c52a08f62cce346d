//! Rows of a query ordered by `session_id`, read in step with another
//! session-ordered stream: several sorted plans (the log's sessions, kept
//! turns, signals, context chains) joined one session at a time in Rust,
//! with one batch of each in memory.

use std::cmp::Ordering;
use std::collections::VecDeque;

use arrow::array::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use trajectory_query::{QueryEngine, QueryError};

use crate::ExportError;

/// Rows of a query keyed by their session id.
pub(crate) type SessionKeyed<T> = Vec<(String, T)>;

/// Decodes one batch of a [`SessionCursor`]'s query.
pub(crate) type DecodeRows<T> = fn(&RecordBatch) -> Result<SessionKeyed<T>, ExportError>;

/// The rows of a query ordered by `session_id`, handed out one session at a
/// time in step with the log's session stream (same order: bytewise).
pub(crate) struct SessionCursor<T> {
    stream: SendableRecordBatchStream,
    decode: DecodeRows<T>,
    pending: VecDeque<(String, T)>,
    done: bool,
}

impl<T> SessionCursor<T> {
    /// Plans `sql` (its first column `session_id`, rows ordered by it).
    ///
    /// Errors: planning errors (a bad `--where`).
    pub(crate) async fn open(
        engine: &QueryEngine,
        sql: &str,
        decode: DecodeRows<T>,
    ) -> Result<SessionCursor<T>, ExportError> {
        let stream = engine.stream(sql).await?;
        Ok(SessionCursor {
            stream,
            decode,
            pending: VecDeque::new(),
            done: false,
        })
    }

    /// Reads the first batch (which runs the plan's sort to its end).
    pub(crate) async fn fill(&mut self) -> Result<(), ExportError> {
        if self.pending.is_empty() && !self.done {
            self.read_batch().await?;
        }
        Ok(())
    }

    async fn read_batch(&mut self) -> Result<(), ExportError> {
        match self.stream.next().await {
            Some(batch) => {
                let batch = batch.map_err(QueryError::from)?;
                self.pending.extend((self.decode)(&batch)?);
            }
            None => self.done = true,
        }
        Ok(())
    }

    /// The rows of `session_id`, in order; rows of sessions before it (with
    /// no events in the log) are passed over.
    ///
    /// Errors: query and decoding errors.
    pub(crate) async fn take(&mut self, session_id: &str) -> Result<Vec<T>, ExportError> {
        let mut out = Vec::new();
        loop {
            while let Some((session, _)) = self.pending.front() {
                match session.as_str().cmp(session_id) {
                    Ordering::Less => {
                        self.pending.pop_front();
                    }
                    Ordering::Equal => out.extend(self.pending.pop_front().map(|(_, row)| row)),
                    Ordering::Greater => return Ok(out),
                }
            }
            if self.done {
                return Ok(out);
            }
            self.read_batch().await?;
        }
    }
}
