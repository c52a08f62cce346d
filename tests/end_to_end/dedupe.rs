//! `trajectory dedupe`: exact and near-duplicate trajectories, keep policy,
//! decontamination against an eval file.

use serde_json::Value;

use crate::harness::{examples, public, Workspace};

#[test]
fn dedupe_clusters_planted_copies_and_keeps_one_of_each() {
    let ws = Workspace::new();
    let dir = ws.path("sessions");
    std::fs::create_dir_all(&dir).unwrap();
    let original = std::fs::read_to_string(public(
        "openclaw-v3-moltbot-anthropic-thinking.excerpt.jsonl",
    ))
    .unwrap();
    // An exact copy of the conversation under another session id, and a near
    // copy with a few words changed in the assistant's long answer.
    let copy = original.replace(
        "\"type\":\"session\",\"version\":3,\"id\":\"",
        "\"type\":\"session\",\"version\":3,\"id\":\"copy-",
    );
    std::fs::write(dir.join("copy.jsonl"), &copy).unwrap();
    let near = original
        .replace(
            "\"type\":\"session\",\"version\":3,\"id\":\"",
            "\"type\":\"session\",\"version\":3,\"id\":\"near-",
        )
        .replacen("VideoEdit", "VideoEditor", 1);
    std::fs::write(dir.join("near.jsonl"), &near).unwrap();
    ws.ingest(&[&examples(), &dir]);
    ws.ok(["derive"]);
    let summary: Value = serde_json::from_str(&ws.ok(["dedupe", "--json"])).unwrap();
    let total = ws.count("SELECT count(*) FROM trajectories");
    assert_eq!(summary["trajectories"].as_i64(), Some(total));
    assert_eq!(ws.count("SELECT count(*) FROM dedupe_clusters"), total);
    // Each cluster keeps exactly one member.
    assert_eq!(
        ws.count("SELECT count(*) FROM (SELECT cluster_id FROM dedupe_clusters GROUP BY cluster_id HAVING sum(CASE WHEN kept THEN 1 ELSE 0 END) <> 1)"),
        0
    );
    // The three copies of the moltbot conversation share a cluster.
    let clustered = ws.sql(
        "SELECT count(DISTINCT d.cluster_id) AS clusters, count(*) AS members, \
                sum(CASE WHEN d.kept THEN 1 ELSE 0 END) AS kept \
         FROM dedupe_clusters d JOIN trajectories t USING (trajectory_id) \
         WHERE t.prompt LIKE 'VideoEdit%' AND t.episode_index = 0",
    );
    assert_eq!(clustered[0]["clusters"], 1, "{clustered:?}");
    assert!(
        clustered[0]["members"].as_i64().unwrap() >= 3,
        "{clustered:?}"
    );
    assert_eq!(clustered[0]["kept"], 1);
    assert!(
        summary["exact_duplicates"].as_i64().unwrap() >= 1,
        "{summary}"
    );
    // Distinct conversations are not merged: clustered examples are real
    // copies (the real runs repeat the same scripted tasks), each within a
    // pair or a chain of pairs ≥ 0.8 of its keeper, so never far from it.
    let merged = ws.count(
        "SELECT count(*) FROM dedupe_clusters WHERE cluster_size > 1 AND NOT kept AND jaccard_to_kept < 0.6",
    );
    assert_eq!(merged, 0);
    assert!(ws.count("SELECT count(*) FROM dedupe_clusters WHERE cluster_size = 1") > total / 2);
    // Deterministic: the same table again.
    let before = ws.ok([
        "sql",
        "--format",
        "csv",
        "SELECT * EXCEPT (event_ids) FROM dedupe_clusters ORDER BY trajectory_id",
    ]);
    ws.ok(["dedupe"]);
    let after = ws.ok([
        "sql",
        "--format",
        "csv",
        "SELECT * EXCEPT (event_ids) FROM dedupe_clusters ORDER BY trajectory_id",
    ]);
    assert_eq!(before, after);
}

#[test]
fn dedupe_removes_trajectories_contaminated_by_an_eval_file() {
    let ws = Workspace::new();
    ws.ingest(&[&examples()]);
    ws.ok(["derive"]);
    // A prompt of 13+ ASCII words becomes the "eval set".
    let rows = ws.sql("SELECT trajectory_id, prompt FROM trajectories ORDER BY trajectory_id");
    let (victim, prompt) = rows
        .iter()
        .find_map(|r| {
            let prompt = r["prompt"].as_str()?;
            let words: Vec<&str> = prompt.split_whitespace().filter(|w| w.is_ascii()).collect();
            (words.len() >= 16 && prompt.is_ascii()).then(|| {
                (
                    r["trajectory_id"].as_str().unwrap().to_string(),
                    prompt.to_string(),
                )
            })
        })
        .expect("an example prompt of 16+ words");
    let eval = ws.path("eval.jsonl");
    std::fs::write(
        &eval,
        format!("{}\n", serde_json::json!({"question": prompt})),
    )
    .unwrap();
    let summary: Value =
        serde_json::from_str(&ws.ok(["dedupe", "--json", "--eval", eval.to_str().unwrap()]))
            .unwrap();
    let removed: Vec<&str> = summary["contaminated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["trajectory_id"].as_str().unwrap())
        .collect();
    assert!(removed.contains(&victim.as_str()), "{summary}");
    assert!(removed.len() < rows.len());
    let row = ws.sql(&format!(
        "SELECT kept, contaminated_by, contamination_ngram FROM dedupe_clusters WHERE trajectory_id = '{victim}'"
    ));
    assert_eq!(row[0]["kept"], false);
    assert!(row[0]["contaminated_by"]
        .as_str()
        .unwrap()
        .ends_with("eval.jsonl"));
    assert_eq!(
        row[0]["contamination_ngram"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        13
    );
    // Nothing contaminated without eval files.
    let clean: Value = serde_json::from_str(&ws.ok(["dedupe", "--json"])).unwrap();
    assert_eq!(clean["contaminated"], serde_json::json!([]));
}
