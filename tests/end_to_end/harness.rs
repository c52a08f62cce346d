//! Running the binary against a fresh store, and finding the example data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

/// The project's example data (`examples/openclaw`).
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/openclaw")
}

/// A public capture under `examples/openclaw/public`.
pub fn public(name: &str) -> PathBuf {
    examples().join("public").join(name)
}

/// A scratch directory with a store in it.
pub struct Workspace {
    pub dir: TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `trajectory --store <store> ARGS`.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Command::new(env!("CARGO_BIN_EXE_trajectory"))
            .arg("--store")
            .arg(self.store())
            .args(args)
            .env_remove("TRAJECTORY_STORE")
            .output()
            .expect("run trajectory")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "trajectory failed: {}\nstdout: {}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// `trajectory ingest --json PATHS`, parsed.
    pub fn ingest(&self, paths: &[&Path]) -> Value {
        let mut args: Vec<std::ffi::OsString> = vec!["ingest".into(), "--json".into()];
        args.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
        serde_json::from_str(&self.ok(args)).expect("ingest --json prints JSON")
    }

    /// `trajectory sql --format json QUERY`, parsed into row objects.
    pub fn sql(&self, query: &str) -> Vec<Value> {
        let out = self.ok(["sql", "--format", "json", query]);
        match serde_json::from_str(&out).expect("sql --format json prints JSON") {
            Value::Array(rows) => rows,
            other => panic!("expected an array, got {other}"),
        }
    }

    /// A single integer from a one-row, one-column query.
    pub fn count(&self, query: &str) -> i64 {
        let rows = self.sql(query);
        let row = rows.first().and_then(Value::as_object).expect("one row");
        row.values().next().and_then(Value::as_i64).unwrap_or(0)
    }
}

/// Runs a Python snippet with `python3`, returning stdout; fails the test with
/// stderr when the script fails. `scripts/test` puts its virtual environment
/// (`$CARGO_TARGET_DIR/python`, with the packages the tests import) first on
/// `PATH`, so `python3` is that environment's.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 on PATH (scripts/test sets up $CARGO_TARGET_DIR/python)");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs `trajectory export --target TARGET --json --out OUT EXTRA...` and
/// returns its JSON summary.
pub fn export(ws: &Workspace, target: &str, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "export",
        "--target",
        target,
        "--json",
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&ws.ok(args)).expect("export summary")
}
