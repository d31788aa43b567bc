//! One-line cases for each validation rule, in the fixture notation (`error code line:column`).

use crate::tests::check;

/// A passing web app whose `[app]` lists `caps`; `extra` starts at line 10.
fn web(caps: &str, extra: &str) -> String {
    format!(
        "[app]\nname = \"my-api\"\nkind = \"web\"\ncapabilities = [{caps}]\n[run]\ncommand = \"./server\"\n[health]\npath = \"/health\"\n\n{extra}"
    )
}

#[test]
fn valid_web_app_is_ok() {
    check(&web("\"http\"", ""), "ok");
}

#[test]
fn unknown_keys_are_reported_with_suggestions() {
    check(
        "[app]\nnmae = \"x\"\nname = \"x\"\nkind = \"worker\"\n[run]\ncommand = \"x\"\n[health]\npath = \"/h\"\n",
        "error unknown_key 2:1",
    );
    check(&web("\"http\"", "[limits]\nmemroy_mb = 5\n"), "error unknown_key 11:1");
    check(&web("\"http\"", "[databases]\nx = 1\n"), "error unknown_key 10:2");
    // A key in the wrong table is pointed to its home.
    check(&web("\"http\"", "[build]\ncommand = \"x\"\n"), "error unknown_key 11:1");
}

#[test]
fn wrong_types_name_the_expected_type() {
    check(
        &web("\"http\"", "[limits]\nmemory_mb = \"512\"\ncpu_cores = true\n"),
        "error wrong_type 11:13\nerror wrong_type 12:13",
    );
    check(
        &web("\"http\"", "[build]\ncache = \"target\"\noutput = [\"a\", 1]\n"),
        "error wrong_type 11:9\nerror wrong_type 12:16",
    );
    check("app = \"x\"\n", "error wrong_type 1:7");
    check(&web("\"http\"", "[resources]\nkind = \"kv\"\n"), "error wrong_type 10:1");
}

#[test]
fn integers_are_accepted_where_numbers_are_expected() {
    check(
        &web("\"http\"", "[limits]\ncpu_cores = 2\n[expected]\nrequests_per_month = 1_000_000\nstorage_gb = 0.5\n"),
        "ok",
    );
}

#[test]
fn app_table_and_its_keys_are_required() {
    check("[run]\ncommand = \"x\"\n", "error missing_field -");
    check("[app]\nkind = \"worker\"\n[run]\ncommand = \"x\"\n", "error missing_field 1:1\nwarning health_missing 2:8");
    check("[app]\nname = \"x\"\n", "error missing_field 1:1");
}

#[test]
fn app_name_must_be_a_dns_label() {
    check(&web("\"http\"", "").replace("my-api", "My_API"), "error invalid_value 2:8");
    check(&web("\"http\"", "").replace("my-api", "-api"), "error invalid_value 2:8");
}

#[test]
fn unknown_enum_values_are_invalid() {
    check(&web("\"http\"", "").replace("\"web\"", "\"webb\""), "error invalid_value 3:8");
    check(&web("\"http\"", "[[routes]]\npath = \"/\"\nauth = \"sessions\"\n"), "error invalid_value 12:8");
    check(&web("\"http\"", "[[resources]]\nkind = \"database\"\nbinding = \"DB\"\n"), "error invalid_value 11:8");
}

#[test]
fn unknown_and_duplicate_capabilities() {
    check(&web("\"http\", \"sqllite\"", ""), "error unknown_capability 4:25");
    check(&web("\"http\", \"teleport\"", ""), "error unknown_capability 4:25");
    check(&web("\"http\", \"http\"", ""), "warning duplicate_capability 4:25");
}

#[test]
fn needed_capabilities_must_be_listed() {
    check(&web("", ""), "error capability_missing 3:8");
    check(&web("\"http\"", "[[resources]]\nkind = \"queue\"\nbinding = \"JOBS\"\n"), "error capability_missing 11:8");
    check(
        &web("\"http\"", "[[bindings]]\nbinding = \"AUTH\"\nservice = \"auth-api\"\n"),
        "error capability_missing 10:1",
    );
    // Without a capabilities key, the fix is to add one under [app].
    check(
        "[app]\nname = \"w\"\nkind = \"worker\"\n[run]\ncommand = \"x\"\n[[resources]]\nkind = \"kv\"\nbinding = \"KV\"\n",
        "error capability_missing 7:8\nwarning health_missing 3:8",
    );
}

#[test]
fn capability_fix_names_the_whole_line() {
    let (_, report) = crate::check_bytes(
        "tovuk.toml",
        web("\"http\"", "[[resources]]\nkind = \"cron\"\nbinding = \"TICK\"\nschedule = \"@daily\"\ncommand = \"./tick\"\n[[resources]]\nkind = \"kv\"\nbinding = \"KV\"\n").as_bytes(),
    );
    let fixes: Vec<(Option<u32>, &str)> =
        report.required_fixes().iter().map(|fix| (fix.line, fix.next.as_str())).collect();
    let next = "set capabilities = [\"http\", \"kv\", \"cron\"] under [app] (tovuk.toml:4)";
    assert_eq!(fixes, [(Some(4), next), (Some(4), next)]);
}

#[test]
fn listed_but_unused_capabilities_warn() {
    check(&web("\"http\", \"kv\"", ""), "warning capability_unused 4:25");
    check(&web("\"http\", \"outbound-network\"", ""), "ok");
    check(
        "[app]\nname = \"w\"\nkind = \"worker\"\ncapabilities = [\"http\"]\n[run]\ncommand = \"x\"\n[health]\npath = \"/h\"\n",
        "warning capability_unused 4:17",
    );
}

#[test]
fn bindings_are_unique_across_resources_and_services() {
    check(
        &web(
            "\"http\", \"sqlite\", \"service-bindings\"",
            "[[resources]]\nkind = \"sqlite\"\nbinding = \"DB\"\n[[bindings]]\nbinding = \"DB\"\nservice = \"auth\"\n",
        ),
        "error duplicate_binding 14:11",
    );
    check(
        &web("\"http\"", "[[resources]]\nkind = \"kv\"\nbinding = \"db\"\n"),
        "error capability_missing 11:8\nerror invalid_value 12:11",
    );
}

#[test]
fn a_binding_may_not_be_another_bindings_variable() {
    // A queue `FILES` sets FILES_URL and FILES_TOKEN; a KV named FILES_TOKEN would be shadowed.
    check(
        &web(
            "\"http\", \"queues\", \"kv\"",
            "[[resources]]\nkind = \"queue\"\nbinding = \"FILES\"\n[[resources]]\nkind = \"kv\"\nbinding = \"FILES_TOKEN\"\n",
        ),
        "error binding_collision 15:11",
    );
    check(
        &web(
            "\"http\", \"object-storage\", \"sqlite\"",
            "[[resources]]\nkind = \"sqlite\"\nbinding = \"MEDIA_ENDPOINT\"\n[[resources]]\nkind = \"object-storage\"\nbinding = \"MEDIA\"\n",
        ),
        "error binding_collision 12:11",
    );
    check(
        &web(
            "\"http\", \"object-storage\", \"kv\"",
            "[[resources]]\nkind = \"kv\"\nbinding = \"CACHE\"\n[[resources]]\nkind = \"object-storage\"\nbinding = \"MEDIA\"\n",
        ),
        "ok",
    );
}

#[test]
fn routes_and_domains_are_unique() {
    check(
        &web("\"http\"", "[[routes]]\npath = \"/api\"\n[[routes]]\npath = \"/api/\"\n"),
        "error duplicate_route 13:8",
    );
    check(
        &web("\"http\"", "[[domains]]\nname = \"a.example.com\"\n[[domains]]\nname = \"a.example.com\"\n"),
        "error duplicate_domain 13:8",
    );
    check(&web("\"http\"", "[[domains]]\nname = \"Example.com\"\n"), "error invalid_value 11:8");
}

#[test]
fn web_needs_run_and_health() {
    check(
        "[app]\nname = \"a\"\nkind = \"web\"\ncapabilities = [\"http\"]\n",
        "error missing_field 3:8\nerror missing_field 3:8",
    );
    check(&web("\"http\"", "").replace("path = \"/health\"", "timeout = \"5s\""), "error missing_field 7:1");
    check(&web("\"http\"", "").replace("\"/health\"", "\"health\""), "error invalid_value 8:8");
    check(
        &web("\"http\"", "").replace("[health]\n", "[health]\ninterval = \"2m\"\ntimeout = \"1m\"\n"),
        "error invalid_value 8:12",
    );
}

#[test]
fn durations_are_checked() {
    check(&web("\"http\"", "[build]\ntimeout = \"10 minutes\"\n"), "error invalid_value 11:11");
    check(&web("\"http\"", "[build]\ntimeout = 600\n"), "ok");
    check(&web("\"http\"", "[build]\ntimeout = \"7h\"\n"), "error invalid_value 11:11");
    check(&web("\"http\"", "[limits]\nrequest_timeout = 1.5\n"), "error wrong_type 11:19");
}

#[test]
fn static_apps_have_no_process() {
    let base = "[app]\nname = \"site\"\nkind = \"static\"\ncapabilities = [\"http\"]\n";
    check(base, "ok");
    check(&format!("{base}[static]\nroot = \"public\"\n"), "ok");
    check(&format!("{base}[run]\ncommand = \"x\"\n"), "error not_allowed 5:1");
    check(&format!("{base}[health]\npath = \"/\"\n"), "error not_allowed 5:1");
    check(&format!("{base}[static]\nroot = \"../x\"\n"), "error invalid_value 6:8");
}

#[test]
fn workers_take_no_public_traffic() {
    let base = "[app]\nname = \"w\"\nkind = \"worker\"\ncapabilities = [\"http\"]\n[run]\ncommand = \"x\"\n[health]\npath = \"/h\"\n";
    check(&format!("{base}[[routes]]\npath = \"/\"\n"), "error not_allowed 9:1");
    check(&format!("{base}[static]\nroot = \".\"\n"), "error not_allowed 9:1");
}

#[test]
fn cron_resources_need_a_schedule_and_command() {
    check(
        &web("\"http\", \"cron\"", "[[resources]]\nkind = \"cron\"\nbinding = \"TICK\"\n"),
        "error missing_field 10:1\nerror missing_field 10:1",
    );
    check(
        &web(
            "\"http\", \"cron\"",
            "[[resources]]\nkind = \"cron\"\nbinding = \"TICK\"\nschedule = \"* * *\"\ncommand = \"x\"\n",
        ),
        "error invalid_value 13:12",
    );
    check(
        &web("\"http\", \"kv\"", "[[resources]]\nkind = \"kv\"\nbinding = \"KV\"\nschedule = \"@daily\"\n"),
        "error not_allowed 13:12",
    );
    check(
        &web(
            "\"http\", \"cron\"",
            "[[resources]]\nkind = \"cron\"\nbinding = \"TICK\"\nschedule = \"@daily\"\ncommand = \"x\"\ntimeout = \"2d\"\n",
        ),
        "error invalid_value 15:11",
    );
    check(
        &web("\"http\", \"kv\"", "[[resources]]\nkind = \"kv\"\nbinding = \"KV\"\ntimeout = \"1m\"\n"),
        "error not_allowed 13:11",
    );
}

#[test]
fn limits_are_range_checked() {
    check(
        &web("\"http\"", "[limits]\nmemory_mb = 8\ninstances = 0\ncpu_cores = 65\n"),
        "error invalid_value 11:13\nerror invalid_value 12:13\nerror invalid_value 13:13",
    );
    check(&web("\"http\"", "[limits]\nmemory_mb = 65536\ninstances = 100\ncpu_cores = 0.25\n"), "ok");
    check(&web("\"http\"", "[expected]\nstorage_gb = -1\n"), "error invalid_value 11:14");
}

#[test]
fn build_lists_are_checked() {
    check(
        &web("\"http\"", "[build]\ncache = [\"/tmp\"]\nsecrets = [\"npm-token\"]\nexclude = [\"../up\"]\n"),
        "error invalid_value 11:10\nerror invalid_value 12:12\nerror invalid_value 13:12",
    );
    check(&web("\"http\"", "[config]\nrequired = [\"TOVUK_X\"]\n"), "error invalid_value 11:13");
    check(&web("\"http\"", "[config]\nrequired = [\"DATABASE_URL\", \"PORT\"]\n"), "error invalid_value 11:29");
    check(&web("\"http\"", "[build]\nsecrets = [\"HOME\"]\n"), "error invalid_value 11:12");
}

#[test]
fn dev_settings_warn_at_the_pattern() {
    check(&web("\"http\"", "").replace("./server", "cargo run"), "warning dev_setting 6:12");
    check(&web("\"http\"", "").replace("./server", "uvicorn app:app --reload"), "warning dev_setting 6:28");
    check(&web("\"http\"", "[build]\nbuild = \"NODE_ENV=development npm run build\"\n"), "warning dev_setting 11:10");
}

#[test]
fn every_error_is_collected_in_one_pass() {
    check(
        "[app]\nname = \"Bad Name\"\nkind = \"web\"\nfoo = 1\n[limits]\ninstances = 0\n",
        "error invalid_value 2:8\nerror missing_field 3:8\nerror missing_field 3:8\nerror capability_missing 3:8\nerror unknown_key 4:1\nerror invalid_value 6:13",
    );
}

#[test]
fn long_lists_are_refused() {
    let entries = vec!["\"a\""; 1001].join(", ");
    check(&web("\"http\"", &format!("[build]\nexclude = [{entries}]\n")), "error invalid_value 11:11");
}

#[test]
fn processes_are_named_once_with_a_command_and_not_for_static_apps() {
    check(&web("\"http\"", "[[processes]]\nname = \"worker\"\ncommand = \"./work\"\ninstances = 2\n"), "ok");
    check(&web("\"http\"", "[[processes]]\nname = \"web\"\ncommand = \"./work\"\n"), "error invalid_value 11:8");
    check(&web("\"http\"", "[[processes]]\nname = \"Worker 1\"\ncommand = \"./work\"\n"), "error invalid_value 11:8");
    check(&web("\"http\"", "[[processes]]\nname = \"worker\"\n"), "error missing_field 10:1");
    check(
        &web("\"http\"", "[[processes]]\nname = \"worker\"\ncommand = \"./work\"\ninstances = 0\n"),
        "error invalid_value 13:13",
    );
    check(
        &web(
            "\"http\"",
            "[[processes]]\nname = \"worker\"\ncommand = \"./a\"\n[[processes]]\nname = \"worker\"\ncommand = \"./b\"\n",
        ),
        "error duplicate_process 14:8",
    );
    check(
        "[app]\nname = \"site\"\nkind = \"static\"\ncapabilities = [\"http\"]\n[[processes]]\nname = \"w\"\ncommand = \"./w\"\n",
        "error not_allowed 5:1",
    );
}
