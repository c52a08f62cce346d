//! Derive as a DataFusion plan, session by session.
//!
//! ```text
//! events ──SQL scan──▶ RepartitionExec(hash session_id, N) ──▶ SortExec(session_id, part, pos, event_id)
//!        ──▶ SessionDeriveExec (per partition: one session at a time)
//!        ──▶ batches of four struct columns: turn | trajectory | reward | session
//! ```
//!
//! The input rows are a session's transcript events (`part` 0, in `seq`
//! order) followed by its side events (`part` 1: cron runs, fallback
//! decisions, annotations, in time order). [`SessionDeriveExec`] folds each
//! partition's sorted stream one session at a time: it gathers the session's
//! rows, runs the per-session jobs ([`turns::segment`],
//! [`trajectories::segment_episodes`], [`rewards::compute_rewards`]) and
//! emits the rows of `turns`, `trajectories` and `rewards`. Memory is the
//! largest session plus one output batch per table; the sort below it spills
//! to disk under the engine's memory pool.
//!
//! Each output batch holds the rows of one table in its struct column (the
//! other three columns are null): [`split_output`] turns it back into a batch
//! of that table's schema. The `session` column has one row per session
//! derived (its `session_id`), so that a consumer can count sessions.
//!
//! Everything the operator needs is in [`SessionDeriveParams`] (plain
//! numbers), so a distributed engine can ship it to an executor.
//!
//! GRPO advantages compare trajectories of different sessions: the operator
//! leaves them within-session, and [`crate::derive`] re-normalises them over
//! all trajectories sharing a prompt hash once every session is derived.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, RecordBatch, StructArray};
use arrow::compute::{concat_batches, filter_record_batch, is_not_null};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::col;
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, OrderingRequirements, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;

use crate::columns::Columns;
use crate::rewards::{self, RewardParams};
use crate::trajectories::{self, EpisodeRule};
use crate::transcript::Session;
use crate::transcript::{SideEvent, TranscriptEvent};
use crate::turns;
use crate::DeriveError;
use trajectory_query::QueryEngine;

/// Kinds of the side events the reward rules read.
pub const SIDE_KINDS: [&str; 3] = ["cron_run", "fallback_decision", "annotation"];

/// Output rows a table gathers before the operator emits them as one batch.
const OUTPUT_BATCH_ROWS: usize = 4096;

/// Bytes of output a table gathers before the operator emits them: a turn
/// carries its whole context, so rows alone do not bound a batch.
const OUTPUT_BATCH_BYTES: usize = 2 * 1024 * 1024;

/// What the per-session jobs run with: the reward and episode parameters and
/// the `events` version written into every row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionDeriveParams {
    pub rewards: RewardParams,
    pub episodes: EpisodeRule,
    pub events_version: u64,
}

/// The tables [`SessionDeriveExec`] emits, in the order of its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivedOutput {
    Turns,
    Trajectories,
    Rewards,
    /// One row (`session_id`) per session derived.
    Sessions,
}

impl DerivedOutput {
    pub const ALL: [DerivedOutput; 4] = [
        DerivedOutput::Turns,
        DerivedOutput::Trajectories,
        DerivedOutput::Rewards,
        DerivedOutput::Sessions,
    ];

    /// The column name in the operator's output.
    pub fn column(self) -> &'static str {
        match self {
            DerivedOutput::Turns => "turn",
            DerivedOutput::Trajectories => "trajectory",
            DerivedOutput::Rewards => "reward",
            DerivedOutput::Sessions => "session",
        }
    }

    /// The schema of the table's rows.
    pub fn schema(self) -> SchemaRef {
        match self {
            DerivedOutput::Turns => turns::turns_schema(),
            DerivedOutput::Trajectories => trajectories::trajectories_schema(),
            DerivedOutput::Rewards => rewards::rewards_schema(),
            DerivedOutput::Sessions => Arc::new(Schema::new(vec![Field::new(
                "session_id",
                DataType::Utf8,
                false,
            )])),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The SQL of the operator's input: transcript events (`part` 0, `pos` =
/// `seq`) and side events (`part` 1, `pos` = `ts` in µs) of every session,
/// or of `sessions` only. Only the columns the jobs read; `text` only for
/// transcript events and `attributes` only for side events.
///
/// Transcript events are `source = 'openclaw_transcript'` rows with an
/// `entry_id` (quarantined lines are never read); side events are
/// [`SIDE_KINDS`] rows with a `session_id`.
pub fn input_sql(sessions: Option<&HashSet<String>>) -> String {
    let transcript = "(source = 'openclaw_transcript' AND kind <> 'quarantined' \
                      AND entry_id IS NOT NULL)";
    let side = SIDE_KINDS
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let only = sessions
        .map(|ids| format!(" AND {}", sessions_predicate(ids)))
        .unwrap_or_default();
    format!(
        "SELECT session_id, \
           CASE WHEN {transcript} THEN 0 ELSE 1 END AS part, \
           CASE WHEN {transcript} THEN seq ELSE CAST(ts AS BIGINT) END AS pos, \
           event_id, CAST(ts AS BIGINT) AS ts_us, kind, agent_id, entry_id, parent_id, seq, \
           role, provider, model, locality, \
           CASE WHEN {transcript} THEN text END AS text, \
           tool_call_id, tool_name, tool_args, tool_status, tool_is_error, stop_reason, error, \
           input_tokens, output_tokens, cost_usd, status, decision, requested_provider, \
           requested_model, next_provider, next_model, \
           CASE WHEN {transcript} THEN NULL ELSE attributes END AS attributes \
         FROM events \
         WHERE session_id IS NOT NULL AND ({transcript} OR kind IN ({side})){only}"
    )
}

/// `session_id IN ('a', 'b', ...)` over `sessions` (sorted, quoted), or
/// `FALSE` when there are none.
pub(crate) fn sessions_predicate(sessions: &HashSet<String>) -> String {
    if sessions.is_empty() {
        return "FALSE".to_string();
    }
    let mut ids: Vec<&String> = sessions.iter().collect();
    ids.sort();
    let list = ids
        .iter()
        .map(|id| format!("'{}'", id.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");
    format!("session_id IN ({list})")
}

/// The plan that derives every session of `input` (the output of
/// [`input_sql`]): hash-partitioned by `session_id` into `partitions`,
/// sorted within each partition, folded by [`SessionDeriveExec`].
///
/// Errors: a missing input column.
pub fn derive_plan(
    input: Arc<dyn ExecutionPlan>,
    partitions: usize,
    params: SessionDeriveParams,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = input.schema();
    let repartitioned = Arc::new(RepartitionExec::try_new(
        input,
        Partitioning::Hash(vec![col("session_id", &schema)?], partitions.max(1)),
    )?);
    let sorted = Arc::new(
        SortExec::new(input_ordering(&schema)?, repartitioned).with_preserve_partitioning(true),
    );
    Ok(Arc::new(SessionDeriveExec::try_new(sorted, params)?))
}

/// (`session_id`, `part`, `pos`, `event_id`) ascending, nulls last: a
/// session's transcript in `seq` order, then its side events in time order.
fn input_ordering(schema: &SchemaRef) -> DfResult<LexOrdering> {
    let options = arrow::compute::SortOptions {
        descending: false,
        nulls_first: false,
    };
    let exprs = ["session_id", "part", "pos", "event_id"]
        .iter()
        .map(|name| Ok(PhysicalSortExpr::new(col(name, schema)?, options)))
        .collect::<DfResult<Vec<_>>>()?;
    LexOrdering::new(exprs)
        .ok_or_else(|| DataFusionError::Internal("empty derive input ordering".into()))
}

/// The custom operator: folds a partition sorted by [`input_ordering`] one
/// session at a time into derived rows (see the module docs).
#[derive(Debug)]
pub struct SessionDeriveExec {
    input: Arc<dyn ExecutionPlan>,
    params: SessionDeriveParams,
    properties: Arc<PlanProperties>,
}

impl SessionDeriveExec {
    /// Wraps `input`, which must be partitioned by `session_id` and sorted
    /// by [`input_ordering`] within each partition.
    ///
    /// Errors: `input` lacks a column of [`input_sql`].
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        params: SessionDeriveParams,
    ) -> DfResult<SessionDeriveExec> {
        input_ordering(&input.schema())?;
        let properties = PlanProperties::new(
            EquivalenceProperties::new(output_schema()),
            Partitioning::UnknownPartitioning(
                input.properties().output_partitioning().partition_count(),
            ),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(SessionDeriveExec {
            input,
            params,
            properties: Arc::new(properties),
        })
    }

    /// The parameters the operator runs with.
    pub fn params(&self) -> &SessionDeriveParams {
        &self.params
    }
}

/// The operator's output: one nullable struct column per [`DerivedOutput`].
pub fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(
        DerivedOutput::ALL
            .iter()
            .map(|o| Field::new(o.column(), struct_type(&o.schema()), true))
            .collect::<Vec<_>>(),
    ))
}

/// The struct type holding a row of `schema` (every child nullable, since
/// the rows of other tables are null in it).
fn struct_type(schema: &SchemaRef) -> DataType {
    DataType::Struct(Fields::from(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

impl DisplayAs for SessionDeriveExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SessionDeriveExec: credit={}, events_version={}",
            self.params.rewards.credit.name(),
            self.params.events_version
        )
    }
}

impl ExecutionPlan for SessionDeriveExec {
    fn name(&self) -> &str {
        "SessionDeriveExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        match self.input.schema().index_of("session_id") {
            Ok(_) => match col("session_id", &self.input.schema()) {
                Ok(expr) => vec![Distribution::KeyPartitioned(vec![expr])],
                Err(_) => vec![Distribution::UnspecifiedDistribution],
            },
            Err(_) => vec![Distribution::UnspecifiedDistribution],
        }
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        vec![input_ordering(&self.input.schema())
            .ok()
            .map(OrderingRequirements::from)]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "SessionDeriveExec takes one input".into(),
            ));
        }
        Ok(Arc::new(SessionDeriveExec::try_new(
            children.swap_remove(0),
            self.params,
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let fold = SessionFold {
            input,
            params: self.params,
            rows: SessionRows::default(),
            pending: Default::default(),
            done: false,
        };
        let stream = futures::stream::try_unfold(fold, |mut fold| async move {
            loop {
                if let Some(batch) = fold.ready_batch()? {
                    return Ok(Some((batch, fold)));
                }
                if fold.done {
                    return Ok(None);
                }
                match fold.input.next().await {
                    Some(batch) => fold.consume(&batch?)?,
                    None => {
                        fold.finish_session()?;
                        fold.done = true;
                    }
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            output_schema(),
            stream,
        )))
    }
}

/// One partition's fold: the session being gathered and the output rows not
/// yet emitted.
struct SessionFold {
    input: SendableRecordBatchStream,
    params: SessionDeriveParams,
    rows: SessionRows,
    pending: [Vec<RecordBatch>; 4],
    done: bool,
}

impl SessionFold {
    /// Adds the rows of `batch`, deriving each session as the next one starts.
    fn consume(&mut self, batch: &RecordBatch) -> DfResult<()> {
        let complete = self
            .rows
            .push(batch)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        for (session, side) in complete {
            self.derive(session, side)?;
        }
        Ok(())
    }

    /// Derives the last gathered session.
    fn finish_session(&mut self) -> DfResult<()> {
        if let Some((session, side)) = self.rows.finish() {
            self.derive(session, side)?;
        }
        Ok(())
    }

    fn derive(&mut self, session: Session, side: Vec<SideEvent>) -> DfResult<()> {
        let batches = derive_session(&session, &side, &self.params)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        for (output, batch) in DerivedOutput::ALL.iter().zip(batches) {
            if batch.num_rows() > 0 {
                self.pending[output.index()].push(batch);
            }
        }
        Ok(())
    }

    /// The next output batch: a table with [`OUTPUT_BATCH_ROWS`] or [`OUTPUT_BATCH_BYTES`] pending
    /// rows, or any pending rows once the input is done.
    fn ready_batch(&mut self) -> DfResult<Option<RecordBatch>> {
        for output in DerivedOutput::ALL {
            let pending = &mut self.pending[output.index()];
            let rows: usize = pending.iter().map(RecordBatch::num_rows).sum();
            let bytes: usize = pending.iter().map(RecordBatch::get_array_memory_size).sum();
            let full = rows >= OUTPUT_BATCH_ROWS || bytes >= OUTPUT_BATCH_BYTES;
            if rows == 0 || !(full || self.done) {
                continue;
            }
            let batch = concat_batches(&output.schema(), pending.iter())?;
            pending.clear();
            return Ok(Some(wrap_output(output, batch)?));
        }
        Ok(None)
    }
}

/// Gathers rows of [`input_sql`], sorted by (`session_id`, `part`, `pos`,
/// `event_id`), into whole sessions: each session is complete when the next
/// one starts (or at [`SessionRows::finish`]). Holds one session at a time.
#[derive(Default)]
pub struct SessionRows {
    current: Option<(Session, Vec<SideEvent>)>,
}

impl SessionRows {
    /// Adds the rows of `batch`; returns the sessions it completed, each with
    /// its side events in time order. Sessions without transcript events are
    /// dropped.
    ///
    /// Errors: [`DeriveError::Column`] when a column of [`input_sql`] is
    /// missing or has another type.
    pub fn push(
        &mut self,
        batch: &RecordBatch,
    ) -> Result<Vec<(Session, Vec<SideEvent>)>, DeriveError> {
        let mut complete = Vec::new();
        let c = Columns::new(batch);
        let (session, part, mut event_id, mut kind, mut agent) = (
            c.strings("session_id")?,
            c.ints("part")?,
            c.strings("event_id")?,
            c.strings("kind")?,
            c.strings("agent_id")?,
        );
        let (mut entry, mut parent, mut role, mut provider, mut model, mut locality, mut text) = (
            c.strings("entry_id")?,
            c.strings("parent_id")?,
            c.strings("role")?,
            c.strings("provider")?,
            c.strings("model")?,
            c.strings("locality")?,
            c.strings("text")?,
        );
        let (mut call_id, mut tool_name, mut tool_args, mut tool_status) = (
            c.strings("tool_call_id")?,
            c.strings("tool_name")?,
            c.strings("tool_args")?,
            c.strings("tool_status")?,
        );
        let tool_is_error = c.bools("tool_is_error")?;
        let (mut stop_reason, mut error, mut status, mut decision) = (
            c.strings("stop_reason")?,
            c.strings("error")?,
            c.strings("status")?,
            c.strings("decision")?,
        );
        let (mut req_p, mut req_m, mut next_p, mut next_m, mut attributes) = (
            c.strings("requested_provider")?,
            c.strings("requested_model")?,
            c.strings("next_provider")?,
            c.strings("next_model")?,
            c.strings("attributes")?,
        );
        let (ts, seq, input, output) = (
            c.ints("ts_us")?,
            c.ints("seq")?,
            c.ints("input_tokens")?,
            c.ints("output_tokens")?,
        );
        let cost = c.floats("cost_usd")?;
        for i in 0..batch.num_rows() {
            let Some(session_id) = session[i].as_deref() else {
                continue;
            };
            if self
                .current
                .as_ref()
                .is_none_or(|(s, _)| s.session_id != session_id)
            {
                complete.extend(self.finish());
                self.current = Some((
                    Session {
                        session_id: session_id.to_string(),
                        ..Session::default()
                    },
                    Vec::new(),
                ));
            }
            let Some((current, side)) = self.current.as_mut() else {
                continue;
            };
            let kind_i = kind[i].take().unwrap_or_default();
            if SIDE_KINDS.contains(&kind_i.as_str()) {
                side.push(SideEvent {
                    event_id: event_id[i].clone().unwrap_or_default(),
                    ts_us: ts[i].unwrap_or_default(),
                    kind: kind_i.clone(),
                    session_id: Some(session_id.to_string()),
                    status: status[i].take(),
                    decision: decision[i].take(),
                    requested_provider: req_p[i].take(),
                    requested_model: req_m[i].take(),
                    next_provider: next_p[i].take(),
                    next_model: next_m[i].take(),
                    attributes: attributes[i].take(),
                });
            }
            if part[i] != Some(0) {
                continue;
            }
            let Some(entry_id) = entry[i].take() else {
                continue;
            };
            if current.agent_id.is_none() {
                current.agent_id = agent[i].take();
            }
            current.events.push(TranscriptEvent {
                event_id: event_id[i].take().unwrap_or_default(),
                ts_us: ts[i].unwrap_or_default(),
                kind: kind_i,
                entry_id,
                parent_id: parent[i].take(),
                seq: seq[i].unwrap_or_default(),
                role: role[i].take(),
                provider: provider[i].take(),
                model: model[i].take(),
                locality: locality[i].take(),
                text: text[i].take(),
                tool_call_id: call_id[i].take(),
                tool_name: tool_name[i].take(),
                tool_args: tool_args[i].take(),
                tool_status: tool_status[i].take(),
                tool_is_error: tool_is_error[i],
                stop_reason: stop_reason[i].take(),
                error: error[i].take(),
                input_tokens: input[i],
                output_tokens: output[i],
                cost_usd: cost[i],
            });
        }
        Ok(complete)
    }

    /// The session being gathered, if it has transcript events; call once
    /// the input is done.
    pub fn finish(&mut self) -> Option<(Session, Vec<SideEvent>)> {
        let (session, mut side) = self.current.take()?;
        if session.events.is_empty() {
            return None;
        }
        // Transcript rows arrive by seq; side rows by time already, but a
        // transcript event of a side kind sorts among the transcript.
        side.sort_by(|a, b| (a.ts_us, &a.event_id).cmp(&(b.ts_us, &b.event_id)));
        Some((session, side))
    }
}

/// Every session of the log (or of `sessions`) with its side events, in
/// `session_id` order, read through one sorted DataFusion stream (the sort
/// spills under the engine's memory pool): one session in memory at a time.
///
/// Errors: planning or execution errors of the query.
pub async fn stream_sessions(
    engine: &QueryEngine,
    sessions: Option<&HashSet<String>>,
) -> Result<impl futures::Stream<Item = Result<(Session, Vec<SideEvent>), DeriveError>>, DeriveError>
{
    let sql = format!(
        "{} ORDER BY session_id, part, pos, event_id",
        input_sql(sessions)
    );
    let stream = engine.stream(&sql).await?;
    let state = (
        stream,
        SessionRows::default(),
        std::collections::VecDeque::new(),
        false,
    );
    Ok(futures::stream::try_unfold(
        state,
        |(mut stream, mut rows, mut ready, mut done)| async move {
            loop {
                if let Some(next) = ready.pop_front() {
                    return Ok(Some((next, (stream, rows, ready, done))));
                }
                if done {
                    return Ok(None);
                }
                match stream.next().await {
                    Some(batch) => {
                        let batch = batch.map_err(trajectory_query::QueryError::from)?;
                        ready.extend(rows.push(&batch)?);
                    }
                    None => {
                        ready.extend(rows.finish());
                        done = true;
                    }
                }
            }
        },
    ))
}

/// Derives one session: its `turns`, `trajectories`, `rewards` rows and its
/// `session` marker row, as batches of the [`DerivedOutput`] schemas.
///
/// `side` holds the session's cron runs, fallback decisions and annotations
/// in time order. With GRPO credit, advantages are normalised within the
/// session only (see the module docs).
pub fn derive_session(
    session: &Session,
    side: &[SideEvent],
    params: &SessionDeriveParams,
) -> Result<[RecordBatch; 4], DeriveError> {
    let session_turns = turns::segment(session);
    let episodes = trajectories::segment_episodes(0, session, &session_turns, &params.episodes);
    let rows = rewards::compute_rewards(
        std::slice::from_ref(session),
        std::slice::from_ref(&session_turns),
        &episodes,
        side,
        &params.rewards,
    );
    let marker = RecordBatch::try_new(
        DerivedOutput::Sessions.schema(),
        vec![Arc::new(arrow::array::StringArray::from(vec![session
            .session_id
            .as_str()])) as ArrayRef],
    )?;
    Ok([
        turns::turns_batch(&[(session, &session_turns)], params.events_version)?,
        trajectories::trajectories_batch(
            std::slice::from_ref(session),
            std::slice::from_ref(&session_turns),
            &episodes,
            params.events_version,
        )?,
        rewards::rewards_batch(&rows, params.events_version)?,
        marker,
    ])
}

/// `batch` (rows of `output`'s table) as an operator output batch.
fn wrap_output(output: DerivedOutput, batch: RecordBatch) -> DfResult<RecordBatch> {
    let rows = batch.num_rows();
    let schema = output_schema();
    let columns = DerivedOutput::ALL
        .iter()
        .zip(schema.fields())
        .map(|(o, field)| -> DfResult<ArrayRef> {
            if *o != output {
                return Ok(new_null_array(field.data_type(), rows));
            }
            let DataType::Struct(fields) = field.data_type() else {
                return Err(DataFusionError::Internal(
                    "derive output is not a struct".into(),
                ));
            };
            Ok(Arc::new(StructArray::try_new(
                fields.clone(),
                batch.columns().to_vec(),
                None,
            )?))
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The rows of `output`'s table in an operator output batch, as a batch of
/// its schema (`None` when the batch holds none).
///
/// Errors: the batch is not of [`output_schema`].
pub fn split_output(
    batch: &RecordBatch,
    output: DerivedOutput,
) -> Result<Option<RecordBatch>, DeriveError> {
    let column = batch
        .column_by_name(output.column())
        .ok_or_else(|| DeriveError::Column(format!("missing column {}", output.column())))?;
    if column.null_count() == column.len() {
        return Ok(None);
    }
    let column: ArrayRef = if column.null_count() > 0 {
        let keep = is_not_null(column)?;
        filter_record_batch(
            &RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new(
                    "c",
                    column.data_type().clone(),
                    true,
                )])),
                vec![Arc::clone(column)],
            )?,
            &keep,
        )?
        .column(0)
        .clone()
    } else {
        Arc::clone(column)
    };
    let rows = column.as_struct();
    Ok(Some(RecordBatch::try_new(
        output.schema(),
        rows.columns().to_vec(),
    )?))
}
