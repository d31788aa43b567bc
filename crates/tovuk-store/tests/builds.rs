//! Build claims on a real SQLite file: one build per app at a time, until the builder
//! holding the last one has really ended (not just until its deploy was cancelled).

mod common;

use tovuk_store::Store;
use tovuk_types::{AppId, AppName, DeployState};

async fn queued(store: &Store, app: &AppId, sha: &str) -> String {
    let source = common::pushed(app, sha);
    store.record_source(&source).await.expect("record").deploy.id.to_string()
}

#[tokio::test]
async fn an_apps_next_build_waits_for_the_builder_of_a_cancelled_one_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("state.db")).await.expect("open");
    let (shop, _, _) = store.create_app(&AppName::parse("shop").expect("name"), "main").await.expect("app");
    let (blog, _, _) = store.create_app(&AppName::parse("blog").expect("name"), "main").await.expect("app");

    let first = queued(&store, &shop.id, "1111").await;
    assert_eq!(store.claim_build("node").await.expect("claim").map(|d| d.id.to_string()), Some(first.clone()));
    // Cancelled: the deploy ends at once, its builder may still be checking out.
    store.transition_deploy(&first, DeployState::Building, DeployState::Cancelled).await.expect("cancel");
    let second = queued(&store, &shop.id, "2222").await;
    let other = queued(&store, &blog.id, "3333").await;
    let claimed = store.claim_build("node").await.expect("claim").map(|d| d.id.to_string());
    assert_eq!(claimed, Some(other), "another app's build is not held up");
    assert_eq!(store.claim_build("node").await.expect("claim").map(|d| d.id.to_string()), None, "shop waits");

    store.release_build_claim(&first).await.expect("the builder ended");
    assert_eq!(store.claim_build("node").await.expect("claim").map(|d| d.id.to_string()), Some(second));
}

#[tokio::test]
async fn a_restart_lets_go_of_every_claim_its_builders_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("state.db")).await.expect("open");
    let (shop, _, _) = store.create_app(&AppName::parse("shop").expect("name"), "main").await.expect("app");
    let first = queued(&store, &shop.id, "1111").await;
    store.claim_build("node").await.expect("claim").expect("a build");
    store.transition_deploy(&first, DeployState::Building, DeployState::Cancelled).await.expect("cancel");
    let second = queued(&store, &shop.id, "2222").await;
    assert!(store.claim_build("node").await.expect("claim").is_none());
    store.fail_interrupted_builds().await.expect("restart");
    assert_eq!(store.claim_build("node").await.expect("claim").map(|d| d.id.to_string()), Some(second));
}
