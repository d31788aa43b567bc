//! Config revisions and config releases on a real SQLite file: values by revision, pruning,
//! and a config release rebased onto a deploy that went live after it was recorded.

mod common;

use tovuk_store::{ChangeRequest, DeployKind, DeployRecord, SealedValue, Store, TransitionExtras};
use tovuk_types::{AppId, AppName, DeployState};

/// A stand-in sealer: the store never looks inside a sealed value.
fn sealed(name: &str, version: i64) -> SealedValue {
    SealedValue {
        name: name.to_owned(),
        version,
        key_id: "sk_test".into(),
        nonce: vec![0; 24],
        ciphertext: format!("{name}-{version}").into_bytes(),
    }
}

async fn change(store: &Store, app: &AppId, set: &[&str], unset: &[&str], release: bool) -> Option<DeployRecord> {
    let request = ChangeRequest {
        app_id: app.clone(),
        token_id: "tok_test".into(),
        set: set.iter().map(|name| (*name).to_owned()).collect(),
        unset: unset.iter().map(|name| (*name).to_owned()).collect(),
        release,
    };
    let mut seal = |name: &str, version: i64| Ok(sealed(name, version));
    store.apply_config_change(&request, &mut seal).await.expect("change").release
}

/// Records a source and walks it to `artifact_ready` with artifact `digest`.
async fn built(store: &Store, app: &AppId, sha: &str, digest: &str) -> DeployRecord {
    let source = common::pushed(app, sha);
    let deploy = store.record_source(&source).await.expect("record").deploy;
    let claimed = store.claim_build("node").await.expect("claim").expect("a build");
    assert_eq!(claimed.id, deploy.id);
    let id = deploy.id.as_str();
    store.transition_deploy(id, DeployState::Building, DeployState::Typechecking).await.expect("typecheck");
    store.transition_deploy(id, DeployState::Typechecking, DeployState::Testing).await.expect("test");
    let extras = TransitionExtras { artifact: Some((digest.to_owned(), 1)), ..TransitionExtras::default() };
    let ready = store
        .transition_deploy_with(id, DeployState::Testing, DeployState::ArtifactReady, &extras)
        .await
        .expect("ready");
    store.release_build_claim(id).await.expect("the builder ended");
    ready
}

fn values(list: &[SealedValue]) -> Vec<(String, i64)> {
    list.iter().map(|value| (value.name.clone(), value.version)).collect()
}

#[tokio::test]
async fn a_release_keeps_its_revision_and_a_late_config_release_restarts_what_is_current() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("state.db")).await.expect("open");
    let name = AppName::parse("shop").expect("name");
    let (app, _, _) = store.create_app(&name, "main").await.expect("app");

    assert!(change(&store, &app.id, &["A", "B"], &[], true).await.is_none(), "nothing runs yet: no release");
    let first = built(&store, &app.id, "1111", "sha256:aa").await;
    let claimed = store.claim_release().await.expect("claim").expect("a release");
    assert_eq!((claimed.id.clone(), claimed.config_rev), (first.id.clone(), Some(1)));
    store.go_live(&first, &healthy(&first)).await.expect("live");

    // A change while `first` runs: a config release of its artifact, no build.
    let release = change(&store, &app.id, &["A"], &["B"], true).await.expect("a config release");
    assert_eq!(release.kind, DeployKind::Config);
    assert_eq!(release.state, DeployState::ArtifactReady);
    assert_eq!(release.base_deploy_id.as_deref(), Some(first.id.as_str()));
    assert_eq!(release.artifact, first.artifact);
    assert_eq!(release.build_job_id, first.build_job_id, "it shows the build that made the artifact");
    // `first` still runs with revision 1: A v1 and B v1, though both changed since.
    assert_eq!(
        values(&store.config_values(&app.id, Some(1)).await.expect("rev 1")),
        [("A".to_owned(), 1), ("B".to_owned(), 1)]
    );
    assert_eq!(values(&store.config_values(&app.id, None).await.expect("now")), [("A".to_owned(), 2)]);

    // A code deploy built meanwhile waits for the older config release to go live first.
    let second = built(&store, &app.id, "2222", "sha256:bb").await;
    let claimed = store.claim_release().await.expect("claim").expect("release");
    assert_eq!(claimed.id, release.id);
    assert_eq!(claimed.config_rev, Some(2));
    store.go_live(&release, &healthy(&release)).await.expect("live");
    // While the code deploy is going live, another change records a release of what is
    // current now: the config release.
    let claimed = store.claim_release().await.expect("claim").expect("second");
    assert_eq!(claimed.id, second.id);
    let late = change(&store, &app.id, &["C"], &[], true).await.expect("late release");
    // Its base is the deploy whose build made the artifact, not the config release it restarts.
    assert_eq!(late.base_deploy_id.as_deref(), Some(first.id.as_str()));
    store.go_live(&second, &healthy(&second)).await.expect("second live");
    let claimed = store.claim_release().await.expect("claim").expect("late");
    assert_eq!(claimed.id, late.id);
    assert_eq!(claimed.base_deploy_id.as_deref(), Some(second.id.as_str()), "rebased onto what is current");
    assert_eq!(claimed.artifact.as_ref().map(|(digest, _)| digest.as_str()), Some("sha256:bb"));
    assert_eq!(claimed.sha, "2222");
    assert_eq!(claimed.config_rev, Some(3));
    store.go_live(&late, &healthy(&late)).await.expect("late live");

    // Only revision 3 is in use now, but the replaced deploys may be rolled back to with the
    // revision they ran with: revision 1's values are kept.
    assert_eq!(
        values(&store.config_values(&app.id, Some(1)).await.expect("rev 1")),
        [("A".to_owned(), 1), ("B".to_owned(), 1)],
        "kept for a rollback"
    );
    assert_eq!(
        values(&store.config_values(&app.id, Some(3)).await.expect("rev 3")),
        [("A".to_owned(), 2), ("C".to_owned(), 1)]
    );
    let history = store.config_history(&app.id, 10).await.expect("history");
    assert_eq!(history.iter().map(|change| change.rev).collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(history[1].unset, ["B"]);
}

/// The instance the runner reports when a release passed its health check.
fn healthy(deploy: &tovuk_store::DeployRecord) -> tovuk_store::InstanceRecord {
    tovuk_store::InstanceRecord {
        deploy_id: deploy.id.to_string(),
        slot: 0,
        status: tovuk_types::values::InstanceStatus::Healthy,
        pid: Some(1),
        port: Some(8000),
        started_at: None,
        restarts: 0,
        last_exit_code: None,
        last_exit_at: None,
        upstream: Some("127.0.0.1:8000".into()),
        netns: None,
        static_root: None,
        reason: None,
        process: None,
        updated_at: String::new(),
    }
}
