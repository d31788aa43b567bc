//! Fixed value sets keep their JSON names and refuse names outside the set.

use crate::{BuildFinish, BuildOutcome, InstanceReport, InstanceStatus};

#[test]
fn values_are_their_names_on_the_wire() {
    let finish = BuildFinish { outcome: BuildOutcome::ArtifactReady, failure: None, artifact: None };
    let json = serde_json::to_value(&finish).expect("serialize");
    assert_eq!(json["outcome"], "artifact_ready");
    let back: BuildFinish = serde_json::from_value(json).expect("deserialize");
    assert_eq!(back.outcome, BuildOutcome::ArtifactReady);
}

#[test]
fn a_name_outside_the_set_is_refused_with_the_set() {
    let json = serde_json::json!({
        "deploy_id": "dep_x", "status": "exploded", "pid": null, "port": null, "started_at": null,
        "restarts": 0, "last_exit_code": null, "last_exit_at": null
    });
    let error = serde_json::from_value::<InstanceReport>(json.clone()).err().map(|error| error.to_string());
    let error = error.unwrap_or_default();
    assert!(error.contains("`exploded` is not a valid instance status"), "{error}");
    assert!(error.contains("healthy, restarting"), "{error}");
    let mut ok = json;
    ok["status"] = "crashing".into();
    let report: InstanceReport = serde_json::from_value(ok).expect("a known status");
    assert_eq!(report.status, InstanceStatus::Crashing);
}
