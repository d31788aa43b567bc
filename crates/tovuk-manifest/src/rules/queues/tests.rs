//! Keys only one kind of entry takes (a queue's delivery keys, a State resource's `service`, a route's `capability`), one line per case (`error code line:column`).

use crate::tests::check;

/// A web app with the `queues` capability; `extra` starts at line 10.
fn app(extra: &str) -> String {
    let kv = if extra.contains("\"kv\"") { ", \"kv\"" } else { "" };
    format!(
        "[app]\nname = \"shop\"\nkind = \"web\"\ncapabilities = [\"http\", \"queues\"{kv}]\n[run]\ncommand = \"./server\"\n[health]\npath = \"/health\"\n\n{extra}"
    )
}

const JOBS: &str = "[[resources]]\nkind = \"queue\"\nbinding = \"JOBS\"\n";
const FAILED: &str = "[[resources]]\nkind = \"queue\"\nbinding = \"FAILED\"\n";

#[test]
fn a_push_queue_with_every_key_passes_and_a_pull_queue_needs_none() {
    let push = format!(
        "{JOBS}consumer = \"mailer\"\nconsumer_path = \"/jobs\"\nbatch_size = 100\nmax_wait = \"0s\"\ndelivery_timeout = \"2s\"\nmax_retries = 0\ndead_letter = \"FAILED\"\n{FAILED}"
    );
    check(&app(&push), "ok");
    check(&app(&format!("{JOBS}max_retries = 5\ndead_letter = \"FAILED\"\n{FAILED}")), "ok");
}

#[test]
fn push_keys_need_a_consumer_and_a_consumer_needs_its_path() {
    check(&app(&format!("{JOBS}batch_size = 5\n")), "error not_allowed 13:14");
    check(&app(&format!("{JOBS}consumer = \"mailer\"\n")), "error missing_field 13:12");
}

#[test]
fn values_are_range_checked() {
    check(
        &app(&format!(
            "{JOBS}consumer = \"Mailer!\"\nconsumer_path = \"jobs\"\nbatch_size = 101\nmax_wait = \"2m\"\ndelivery_timeout = \"0s\"\nmax_retries = -1\n"
        )),
        "error invalid_value 13:12\nerror invalid_value 14:17\nerror invalid_value 15:14\nerror invalid_value 16:12\nerror invalid_value 17:20\nerror invalid_value 18:15",
    );
}

#[test]
fn dead_letter_names_another_queue_of_the_app() {
    check(&app(&format!("{JOBS}dead_letter = \"JOBS\"\n")), "error invalid_value 13:15");
    check(&app(&format!("{JOBS}dead_letter = \"NOPE\"\n{FAILED}")), "error invalid_value 13:15");
    let kv = "[[resources]]\nkind = \"kv\"\nbinding = \"CACHE\"\n";
    check(&app(&format!("{JOBS}dead_letter = \"CACHE\"\n{kv}")), "error invalid_value 13:15");
}

#[test]
fn queue_keys_are_refused_on_other_kinds() {
    let kv = "[[resources]]\nkind = \"kv\"\nbinding = \"CACHE\"\nmax_retries = 3\n";
    check(&app(kv), "error not_allowed 13:15");
}

#[test]
fn service_names_another_apps_state_objects_and_only_a_state_resource_takes_it() {
    let state = "[[resources]]\nkind = \"state\"\nbinding = \"ROOMS\"\nservice = \"chat\"\n";
    check(&app(state).replace("\"queues\"", "\"state\""), "ok");
    check(&app(&format!("{JOBS}service = \"chat\"\n")), "error not_allowed 13:11");
    check(&app(state).replace("\"queues\"", "\"state\"").replace("\"chat\"", "\"Chat!\""), "error invalid_value 13:11");
}

#[test]
fn a_capability_route_names_its_capability_and_only_it_takes_one() {
    let routes = |route: &str| app(&format!("[[routes]]\npath = \"/admin\"\n{route}")).replace(", \"queues\"", "");
    check(&routes("auth = \"capability\"\ncapability = \"admin:write\"\n"), "ok");
    check(&routes("auth = \"capability\"\n"), "error missing_field 10:1");
    check(&routes("auth = \"session\"\ncapability = \"admin\"\n"), "error not_allowed 13:14");
    check(&routes("auth = \"capability\"\ncapability = \"no spaces\"\n"), "error invalid_value 13:14");
}
