//! Cron runs on a real SQLite file: one run of a binding at a time, a scheduled tick taken
//! once, a refusal recorded with its reason, and runs a restart caught ended.

use tovuk_store::{CronBegun, DeclaredResource, NewCronRun, SealedValue, Store};
use tovuk_types::AppName;
use tovuk_types::values::{CronRunStatus, CronTrigger};

async fn store_with_cron() -> (tempfile::TempDir, Store, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("state.db")).await.expect("open");
    let (app, _, _) = store.create_app(&AppName::parse("shop").expect("name"), "main").await.expect("app");
    let declared = [DeclaredResource { kind: "cron".into(), binding: "TICK".into(), service: None }];
    let seal = |name: &str| {
        Ok(SealedValue {
            name: name.to_owned(),
            version: 1,
            key_id: "k".into(),
            nonce: vec![0; 24],
            ciphertext: vec![1],
        })
    };
    let resources = store.ensure_resources(app.id.as_str(), "dep_x", &declared, &seal).await.expect("resources");
    (dir, store, app.id.to_string(), resources[0].id.clone())
}

fn tick<'a>(app: &'a str, resource: &'a str, at: &'a str, trigger: CronTrigger) -> NewCronRun<'a> {
    NewCronRun {
        app_id: app,
        resource_id: resource,
        binding: "TICK",
        deploy_id: Some("dep_x"),
        trigger,
        scheduled_at: at,
        reason: None,
    }
}

#[tokio::test]
async fn a_binding_runs_one_tick_at_a_time_and_a_tick_is_taken_once() {
    let (_dir, store, app, resource) = store_with_cron().await;
    let admit = || Ok(());
    let first = tick(&app, &resource, "2030-01-01T00:01:00.000Z", CronTrigger::Schedule);
    let CronBegun::Started(running) = store.begin_cron_run(&first, &admit).await.expect("begin") else {
        panic!("the first tick starts")
    };
    assert_eq!(running.status, CronRunStatus::Running);
    assert!(matches!(store.begin_cron_run(&first, &admit).await.expect("again"), CronBegun::Taken(_)));

    // The next tick (and a manual run) while it runs: skipped, naming the run still going.
    let second = tick(&app, &resource, "2030-01-01T00:02:00.000Z", CronTrigger::Schedule);
    let CronBegun::Skipped(skipped) = store.begin_cron_run(&second, &admit).await.expect("begin") else {
        panic!("an overlapping tick is skipped")
    };
    assert!(skipped.reason.as_deref().is_some_and(|why| why.contains(&running.id)), "{skipped:?}");
    let manual = tick(&app, &resource, "2030-01-01T00:02:30.000Z", CronTrigger::Manual);
    assert!(matches!(store.begin_cron_run(&manual, &admit).await.expect("begin"), CronBegun::Skipped(_)));

    let ended = store.end_cron_run(&running.id, CronRunStatus::Failed, Some(1), None).await.expect("end");
    assert_eq!(ended.map(|run| (run.status, run.exit_code)), Some((CronRunStatus::Failed, Some(1))));
    assert!(store.end_cron_run(&running.id, CronRunStatus::Succeeded, Some(0), None).await.expect("end").is_none());

    // A refusal (a cap) is recorded with its reason, and nothing starts.
    let refuse = || Err("the cap is reached".to_owned());
    let third = tick(&app, &resource, "2030-01-01T00:03:00.000Z", CronTrigger::Schedule);
    let CronBegun::Skipped(capped) = store.begin_cron_run(&third, &refuse).await.expect("begin") else {
        panic!("a refused tick is skipped")
    };
    assert_eq!(capped.reason.as_deref(), Some("the cap is reached"));
    assert_eq!(store.last_cron_tick(&resource).await.expect("tick").as_deref(), Some("2030-01-01T00:03:00.000Z"));
    assert_eq!(store.cron_runs(&app, Some("TICK"), 10).await.expect("runs").len(), 4);
    assert_eq!(store.last_cron_runs(&app).await.expect("last")[&resource].id, capped.id);
}

#[tokio::test]
async fn a_missed_range_is_one_record_and_a_restart_ends_what_ran() {
    let (_dir, store, app, resource) = store_with_cron().await;
    let missed = tick(&app, &resource, "2030-01-01T00:05:00.000Z", CronTrigger::Schedule);
    let recorded = store.record_missed_cron(&missed, "4 ticks").await.expect("missed").expect("new");
    assert_eq!(recorded.status, CronRunStatus::Missed);
    assert!(store.record_missed_cron(&missed, "4 ticks").await.expect("again").is_none(), "once per tick");

    let run = tick(&app, &resource, "2030-01-01T00:06:00.000Z", CronTrigger::Schedule);
    let CronBegun::Started(running) = store.begin_cron_run(&run, &|| Ok(())).await.expect("begin") else {
        panic!("it starts")
    };
    let ended = store.fail_interrupted_cron_runs().await.expect("restart");
    assert_eq!(ended.iter().map(|run| run.id.as_str()).collect::<Vec<_>>(), [running.id.as_str()]);
    let after = store.find_cron_run(&running.id).await.expect("find").expect("there");
    assert_eq!(after.status, CronRunStatus::Failed);
    assert!(after.ended_at.is_some() && after.reason.is_some(), "{after:?}");
}

#[tokio::test]
async fn a_jobs_history_keeps_its_newest_runs() {
    let (_dir, store, app, resource) = store_with_cron().await;
    let kept = usize::try_from(tovuk_store::CRON_HISTORY_KEPT).expect("small");
    let refuse = || Err("capped".to_owned());
    let tick_at = |minute: usize| format!("2030-01-01T{:02}:{:02}:00.000Z", minute / 60, minute % 60);
    // Many in one millisecond: the newest are the last recorded, whatever their ids.
    for minute in 0..kept + 5 {
        let at = tick_at(minute);
        let record = tick(&app, &resource, &at, CronTrigger::Schedule);
        let CronBegun::Skipped(_) = store.begin_cron_run(&record, &refuse).await.expect("begin") else {
            panic!("refused ticks are skipped")
        };
    }
    let runs = store.cron_runs(&app, Some("TICK"), 2 * u32::try_from(kept).expect("small")).await.expect("runs");
    let held: std::collections::BTreeSet<String> = runs.into_iter().map(|run| run.scheduled_at).collect();
    let newest: std::collections::BTreeSet<String> = (5..kept + 5).map(tick_at).collect();
    assert_eq!(held, newest, "the oldest five are let go, the newest kept");
}
