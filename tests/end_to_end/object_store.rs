//! `--store s3://bucket/prefix` against a real S3-compatible server process
//! on loopback (moto's server, which honours `If-None-Match: *` on PUT; see
//! docs/operations.md), started by the test.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{examples, public, python, Workspace};

const BUCKET: &str = "trajectory-test";

/// A moto S3 server on a free loopback port, stopped on drop.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    fn start() -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "python3 -m moto.server (scripts/test installs moto[server] from requirements-test.txt)",
            );
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the S3 server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        server.boto(&format!("s3.create_bucket(Bucket='{BUCKET}')"));
        server
    }

    /// Runs Python with a boto3 client `s3` for this server.
    fn boto(&self, code: &str) -> String {
        let script = format!(
            "import boto3, json, sys\n\
             s3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='testing', \
             aws_secret_access_key='testing', region_name='us-east-1')\n{code}\n",
            self.endpoint
        );
        python(&script, &[])
    }

    /// `trajectory --store s3://BUCKET/PREFIX ARGS` with the AWS variables set.
    fn trajectory(&self, prefix: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_trajectory"));
        command
            .arg("--store")
            .arg(format!("s3://{BUCKET}/{prefix}"))
            .args(args)
            .env_remove("TRAJECTORY_STORE")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1");
        command
    }

    fn ok(&self, prefix: &str, args: &[&str]) -> String {
        let out: Output = self.trajectory(prefix, args).output().unwrap();
        assert!(
            out.status.success(),
            "trajectory {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn count(&self, prefix: &str, sql: &str) -> i64 {
        let rows: Value =
            serde_json::from_str(&self.ok(prefix, &["sql", "--format", "json", sql])).unwrap();
        rows[0]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_i64()
            .unwrap()
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self.boto(&format!(
            "keys = []\n\
             for page in s3.get_paginator('list_objects_v2').paginate(Bucket='{BUCKET}', Prefix='{prefix}'):\n\
             \x20   keys += [o['Key'] for o in page.get('Contents', [])]\n\
             print(json.dumps(keys))"
        ));
        serde_json::from_str(&out).unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ingest_json(server: &S3Server, prefix: &str, path: &Path) -> Value {
    serde_json::from_str(&server.ok(prefix, &["ingest", "--json", path.to_str().unwrap()])).unwrap()
}

#[test]
fn s3_store_holds_the_same_log_as_a_local_one() {
    let server = S3Server::start();
    let local = Workspace::new();
    local.ingest(&[&examples()]);
    let expected = local.count("SELECT count(*) FROM events WHERE kind <> 'source_checkpoint'");

    let first = ingest_json(&server, "store", &examples());
    assert_eq!(first["store"], format!("s3://{BUCKET}/store/"));
    let stored = "SELECT count(*) FROM events WHERE kind <> 'source_checkpoint'";
    assert_eq!(server.count("store", stored), expected);
    // Exactly once on object storage too: checkpoints resume, nothing is re-added.
    let again = ingest_json(&server, "store", &examples());
    assert_eq!(again["events_added"], 0, "{again}");
    assert_eq!(
        server.count(
            "store",
            "SELECT count(*) - count(DISTINCT event_id) FROM events"
        ),
        0
    );
    // Everything lives in the bucket: the table, its log, the redaction key.
    let keys = server.keys("store/");
    assert!(keys
        .iter()
        .any(|k| k.starts_with("store/events/_delta_log/")));
    assert!(keys.iter().any(|k| k.ends_with(".parquet")));
    assert!(keys.contains(&"store/_trajectory/redaction.key".to_string()));

    // Upkeep commands work the same.
    let verify: Value = serde_json::from_str(&server.ok("store", &["verify", "--json"])).unwrap();
    assert_eq!(verify["problems"], serde_json::json!([]));
    assert!(verify["segments_checked"].as_u64().unwrap() > 0);
    let history: Vec<Value> =
        serde_json::from_str(&server.ok("store", &["history", "--json"])).unwrap();
    assert_eq!(history[0]["ingest_id"], first["ingest_id"]);
    server.ok("store", &["compact"]);
    let session = local.sql(
        "SELECT session_id FROM events WHERE session_id IS NOT NULL GROUP BY session_id ORDER BY count(*) ASC, session_id LIMIT 1",
    )[0]["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let receipt: Value =
        serde_json::from_str(&server.ok("store", &["erase", "--session", &session, "--json"]))
            .unwrap();
    assert_eq!(receipt["tables"][0]["rows_left"], 0);
    let removed = receipt["matched_events"].as_i64().unwrap();
    assert!(removed > 0);
    let left = server.count("store", stored);
    assert_eq!(
        left,
        expected - removed + 1,
        "minus the session, plus the erasure record"
    );

    // Python deltalake reads the table from the bucket with the same rows.
    let script = format!(
        r#"
import json, os, sys
from deltalake import DeltaTable
t = DeltaTable("s3://{BUCKET}/store/events", storage_options={{
    "AWS_ENDPOINT_URL": "{endpoint}", "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}})
print(json.dumps(t.to_pyarrow_table().num_rows))
sys.stdout.flush(); os._exit(0)
"#,
        endpoint = server.endpoint
    );
    let theirs: i64 = python(&script, &[]).trim().parse().unwrap();
    assert_eq!(theirs, server.count("store", "SELECT count(*) FROM events"));
}

#[test]
fn s3_commits_are_put_if_absent() {
    let server = S3Server::start();
    let first = ingest_json(
        &server,
        "race",
        &public("openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl"),
    );
    let next = first["table_version"].as_u64().unwrap() + 1;
    // Another writer takes the next version first (a commit with only its
    // commitInfo). Our commit must not overwrite it: it lands after it.
    let key = format!("race/events/_delta_log/{next:020}.json");
    let planted = r#"{"commitInfo":{"timestamp":1767225600000,"operation":"WRITE","operationParameters":{"mode":"Append"},"other_writer":"planted"}}"#;
    server.boto(&format!(
        "s3.put_object(Bucket='{BUCKET}', Key='{key}', Body={planted:?}.encode(), IfNoneMatch='*')"
    ));
    let second = ingest_json(
        &server,
        "race",
        &public("openclaw-v3-moltbot-anthropic-thinking.excerpt.jsonl"),
    );
    assert_eq!(second["table_version"].as_u64(), Some(next + 1), "{second}");
    let body = server.boto(&format!(
        "print(s3.get_object(Bucket='{BUCKET}', Key='{key}')['Body'].read().decode())"
    ));
    assert!(
        body.contains("\"other_writer\":\"planted\""),
        "the other writer's commit is intact: {body}"
    );
}

#[test]
fn concurrent_s3_ingests_store_each_event_once() {
    let server = S3Server::start();
    let public_dir = examples().join("public");
    let all = examples();
    let mut children: Vec<Child> = [&all, &public_dir, &all]
        .iter()
        .map(|path| {
            server
                .trajectory("shared", &["ingest", "--json", path.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in &mut children {
        assert!(child.wait().unwrap().success());
    }
    let local = Workspace::new();
    local.ingest(&[&all]);
    let stored = "SELECT count(*) FROM events WHERE kind <> 'source_checkpoint'";
    assert_eq!(server.count("shared", stored), local.count(stored));
    assert_eq!(
        server.count(
            "shared",
            "SELECT count(*) - count(DISTINCT event_id) FROM events"
        ),
        0
    );
}
