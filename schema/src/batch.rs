//! The Arrow schema of the `events` table and the conversion from [`Event`]s.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringBuilder, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use chrono::{DateTime, Utc};

use crate::event::Event;

/// The column the `events` table is partitioned by: the UTC day of `ts`.
pub const EVENTS_PARTITION_COLUMN: &str = "date";

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn int64(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}

fn timestamp_utc(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        nullable,
    )
}

/// The Arrow schema of the `events` table, in column order. Shared, built once.
///
/// Non-null columns: `event_id`, `ts`, `date`, `kind`, `source`, `ingest_id`,
/// `ingested_at`, `schema_version`. Everything else is nullable.
pub fn event_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("event_id", DataType::Utf8, false),
                timestamp_utc("ts", false),
                Field::new(EVENTS_PARTITION_COLUMN, DataType::Date32, false),
                Field::new("kind", DataType::Utf8, false),
                Field::new("source", DataType::Utf8, false),
                utf8("agent_id"),
                utf8("session_id"),
                utf8("session_key"),
                utf8("channel"),
                utf8("entry_id"),
                utf8("parent_id"),
                int64("seq"),
                utf8("role"),
                utf8("provider"),
                utf8("model"),
                utf8("api"),
                utf8("locality"),
                utf8("text"),
                utf8("content"),
                utf8("tool_call_id"),
                utf8("tool_name"),
                utf8("tool_args"),
                utf8("tool_status"),
                Field::new("tool_is_error", DataType::Boolean, true),
                int64("input_tokens"),
                int64("output_tokens"),
                int64("cache_read_tokens"),
                int64("cache_write_tokens"),
                Field::new("cost_usd", DataType::Float64, true),
                utf8("stop_reason"),
                utf8("error"),
                int64("latency_ms"),
                utf8("run_id"),
                utf8("subsystem"),
                utf8("level"),
                utf8("decision"),
                utf8("status"),
                utf8("requested_provider"),
                utf8("requested_model"),
                utf8("next_provider"),
                utf8("next_model"),
                int64("attempt"),
                utf8("attributes"),
                utf8("redactions"),
                utf8("redaction_policy"),
                utf8("source_uri"),
                int64("source_offset"),
                int64("source_line"),
                utf8("line_sha256"),
                utf8("raw"),
                Field::new("ingest_id", DataType::Utf8, false),
                timestamp_utc("ingested_at", false),
                Field::new("schema_version", DataType::Int32, false),
            ]))
        })
        .clone()
}

/// Days since the Unix epoch of the UTC date of `ts` (Arrow `Date32`).
pub fn date32_of(ts: &DateTime<Utc>) -> i32 {
    ts.timestamp().div_euclid(86_400) as i32
}

/// One string column, its value buffer allocated at its exact size.
///
/// `collect::<StringArray>()` starts the value buffer at 1 KiB and doubles it,
/// which for the `raw`, `text` and `content` columns (megabytes per batch)
/// copies each value about twice more and touches twice the memory.
fn strings<'a>(events: &[&'a Event], f: impl Fn(&'a Event) -> Option<&'a str>) -> ArrayRef {
    let bytes = events.iter().filter_map(|&e| f(e)).map(str::len).sum();
    let mut builder = StringBuilder::with_capacity(events.len(), bytes);
    for &event in events {
        builder.append_option(f(event));
    }
    Arc::new(builder.finish())
}

fn ints(events: &[&Event], f: impl Fn(&Event) -> Option<i64>) -> ArrayRef {
    Arc::new(events.iter().map(|e| f(e)).collect::<Int64Array>())
}

fn micros(events: &[&Event], f: impl Fn(&Event) -> i64) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from(events.iter().map(|e| f(e)).collect::<Vec<_>>())
            .with_timezone("UTC"),
    )
}

/// Converts events to one record batch with [`event_schema`], rows in the
/// order given.
///
/// Errors: only if Arrow rejects the arrays, which would be a bug in this crate.
pub fn events_to_batch(events: &[Event]) -> Result<RecordBatch, ArrowError> {
    let events: Vec<&Event> = events.iter().collect();
    batch_of(&events)
}

/// Converts events to one record batch per `date` partition (UTC day of
/// `ts`), days ascending, rows of a day sorted by (`session_id`, `seq`,
/// `event_id`) with nulls first: the order the store keeps inside a segment.
/// Events with equal keys keep their order.
///
/// A store given these batches writes each as it is: no split by partition,
/// no re-sort. Sorting here moves references to events, not their bytes.
///
/// Errors: only if Arrow rejects the arrays, which would be a bug in this crate.
pub fn events_to_day_batches(events: &[Event]) -> Result<Vec<RecordBatch>, ArrowError> {
    let mut sorted: Vec<(i32, &Event)> = events.iter().map(|e| (date32_of(&e.ts), e)).collect();
    sorted.sort_by(|(a_date, a), (b_date, b)| {
        (a_date, a.session_id.as_deref(), a.seq, a.event_id.as_str()).cmp(&(
            b_date,
            b.session_id.as_deref(),
            b.seq,
            b.event_id.as_str(),
        ))
    });
    sorted
        .chunk_by(|(a, _), (b, _)| a == b)
        .map(|day| batch_of(&day.iter().map(|(_, e)| *e).collect::<Vec<_>>()))
        .collect()
}

fn batch_of(events: &[&Event]) -> Result<RecordBatch, ArrowError> {
    let columns: Vec<ArrayRef> = vec![
        strings(events, |e| Some(e.event_id.as_str())),
        micros(events, |e| e.ts.timestamp_micros()),
        Arc::new(Date32Array::from(
            events.iter().map(|e| date32_of(&e.ts)).collect::<Vec<_>>(),
        )),
        strings(events, |e| Some(e.kind.as_str())),
        strings(events, |e| Some(e.source)),
        strings(events, |e| e.agent_id.as_deref()),
        strings(events, |e| e.session_id.as_deref()),
        strings(events, |e| e.session_key.as_deref()),
        strings(events, |e| e.channel.as_deref()),
        strings(events, |e| e.entry_id.as_deref()),
        strings(events, |e| e.parent_id.as_deref()),
        ints(events, |e| e.seq),
        strings(events, |e| e.role.as_deref()),
        strings(events, |e| e.provider.as_deref()),
        strings(events, |e| e.model.as_deref()),
        strings(events, |e| e.api.as_deref()),
        strings(events, |e| e.locality.map(|l| l.as_str())),
        strings(events, |e| e.text.as_deref()),
        strings(events, |e| e.content.as_deref()),
        strings(events, |e| e.tool_call_id.as_deref()),
        strings(events, |e| e.tool_name.as_deref()),
        strings(events, |e| e.tool_args.as_deref()),
        strings(events, |e| e.tool_status.as_deref()),
        Arc::new(
            events
                .iter()
                .map(|e| e.tool_is_error)
                .collect::<BooleanArray>(),
        ),
        ints(events, |e| e.input_tokens),
        ints(events, |e| e.output_tokens),
        ints(events, |e| e.cache_read_tokens),
        ints(events, |e| e.cache_write_tokens),
        Arc::new(events.iter().map(|e| e.cost_usd).collect::<Float64Array>()),
        strings(events, |e| e.stop_reason.as_deref()),
        strings(events, |e| e.error.as_deref()),
        ints(events, |e| e.latency_ms),
        strings(events, |e| e.run_id.as_deref()),
        strings(events, |e| e.subsystem.as_deref()),
        strings(events, |e| e.level.as_deref()),
        strings(events, |e| e.decision.as_deref()),
        strings(events, |e| e.status.as_deref()),
        strings(events, |e| e.requested_provider.as_deref()),
        strings(events, |e| e.requested_model.as_deref()),
        strings(events, |e| e.next_provider.as_deref()),
        strings(events, |e| e.next_model.as_deref()),
        ints(events, |e| e.attempt),
        strings(events, |e| e.attributes.as_deref()),
        strings(events, |e| e.redactions.as_deref()),
        strings(events, |e| e.redaction_policy.as_deref()),
        strings(events, |e| e.source_uri.as_deref()),
        ints(events, |e| e.source_offset),
        ints(events, |e| e.source_line),
        strings(events, |e| e.line_sha256.as_deref()),
        strings(events, |e| e.raw.as_deref()),
        strings(events, |e| Some(e.ingest_id.as_str())),
        micros(events, |e| e.ingested_at.timestamp_micros()),
        Arc::new(
            events
                .iter()
                .map(|e| e.schema_version)
                .collect::<Int32Array>(),
        ),
    ];
    RecordBatch::try_new(event_schema(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::{EventKind, Locality};
    use arrow::array::{Array, StringArray};

    #[test]
    fn batch_matches_schema_and_keeps_values() {
        let ts = DateTime::parse_from_rfc3339("2026-03-08T23:59:59.999Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut e = Event::new("id1".into(), ts, EventKind::LlmCall, "test", "ing", ts);
        e.locality = Some(Locality::Cloud);
        e.cost_usd = Some(0.5);
        let mut other = e.clone();
        other.event_id = "id2".into();
        other.locality = None;
        let batch = events_to_batch(&[e, other]).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), event_schema());
        let date = batch
            .column_by_name("date")
            .unwrap()
            .as_any()
            .downcast_ref::<Date32Array>()
            .unwrap();
        // 2026-03-08 is day 20520 since the epoch.
        assert_eq!(date.value(0), 20520);
        let locality = batch
            .column_by_name("locality")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(locality.value(0), "cloud");
        assert!(locality.is_null(1));
    }

    #[test]
    fn day_batches_split_by_date_and_sort_each_day_by_session_and_seq() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let event = |id: &str, ts: &str, session: Option<&str>, seq: Option<i64>, text: &str| {
            let mut e = Event::new(
                id.into(),
                at(ts),
                EventKind::UserMessage,
                "t",
                "ing",
                at(ts),
            );
            e.session_id = session.map(str::to_string);
            e.seq = seq;
            e.text = Some(text.to_string());
            e
        };
        // Read order: across days and sessions, seq descending in places.
        let events = [
            event("d", "2026-03-09T01:00:00Z", Some("b"), Some(2), "day 2, b2"),
            event("c", "2026-03-08T10:00:00Z", Some("b"), Some(1), "day 1, b1"),
            event("b", "2026-03-08T09:00:00Z", Some("a"), Some(7), "day 1, a7"),
            event("a", "2026-03-08T23:59:59Z", Some("a"), Some(3), "day 1, a3"),
            event("z", "2026-03-08T12:00:00Z", None, None, "day 1, no session"),
            event(
                "y",
                "2026-03-08T12:00:00Z",
                Some("a"),
                None,
                "day 1, a, no seq",
            ),
            event(
                "f",
                "2026-03-09T02:00:00Z",
                Some("a"),
                Some(1),
                "day 2, a1 first",
            ),
            event(
                "e",
                "2026-03-09T02:00:00Z",
                Some("a"),
                Some(1),
                "day 2, a1 second",
            ),
        ];
        let batches = events_to_day_batches(&events).unwrap();
        let column = |batch: &RecordBatch, name: &str| -> Vec<Option<String>> {
            let array = batch
                .column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            array.iter().map(|v| v.map(str::to_string)).collect()
        };
        assert_eq!(batches.len(), 2);
        assert!(batches.iter().all(|b| b.schema() == event_schema()));
        let days: Vec<Vec<i32>> = batches
            .iter()
            .map(|b| {
                let dates = b.column_by_name("date").unwrap();
                let dates = dates.as_any().downcast_ref::<Date32Array>().unwrap();
                dates.values().to_vec()
            })
            .collect();
        assert_eq!(days, vec![vec![20520; 5], vec![20521; 3]]);
        let texts: Vec<Vec<Option<String>>> = batches.iter().map(|b| column(b, "text")).collect();
        let some = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        assert_eq!(
            texts[0],
            some(&[
                "day 1, no session",
                "day 1, a, no seq",
                "day 1, a3",
                "day 1, a7",
                "day 1, b1"
            ])
        );
        // Equal (session, seq): by event id ("e" < "f"), whatever the read order.
        assert_eq!(
            texts[1],
            some(&["day 2, a1 second", "day 2, a1 first", "day 2, b2"])
        );
        assert_eq!(column(&batches[1], "event_id"), some(&["e", "f", "d"]),);
        assert!(events_to_day_batches(&[]).unwrap().is_empty());
    }

    #[test]
    fn date_of_negative_timestamps_rounds_down() {
        let ts = DateTime::parse_from_rfc3339("1969-12-31T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(date32_of(&ts), -1);
    }
}
