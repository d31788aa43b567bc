//! `git push` to tovuk: the managed hooks, queued deploys, operation records, refusals.

use crate::support::{GitRepo, Platform, deploy_ids, git, git_output, web_manifest};

#[test]
fn a_new_user_pushes_and_sees_the_deploy_id() {
    let platform = Platform::start();
    let created = platform.tovuk().args(["app", "create", "hello"]).run().success();
    // The CLI prints the remote to add, with the deploy token in it.
    let hint = created.stderr.lines().find(|line| line.starts_with("next: git remote add tovuk")).expect("next line");
    let remote = hint.split_whitespace().nth(5).expect("remote url").to_owned();

    let repo = GitRepo::with_files(&[("tovuk.toml", &web_manifest("hello")), ("server.sh", "echo hi\n")]);
    git(repo.path(), &["remote", "add", "tovuk", &remote]);
    let push = repo.push("tovuk", &["main"]);
    assert!(push.ok, "{}", push.output);
    let ids = deploy_ids(&push.output);
    assert_eq!(ids.len(), 1, "{}", push.output);
    assert!(push.output.contains(&format!("remote: next: tovuk deploy follow {}", ids[0])), "{}", push.output);

    let deploy = platform.tovuk().args(["deploy", "show", &ids[0], "--json"]).run().success().json();
    // The builder may have taken it already; it was queued first.
    assert_eq!(deploy["source"]["sha"], repo.head());
    assert_eq!(deploy["source"]["ref"], "refs/heads/main");
    assert_eq!(deploy["source"]["forced"], false);
    assert!(deploy["build_job"]["id"].as_str().expect("build job").starts_with("bld_"));
    assert_eq!(deploy["state_changes"][0]["state"], "queued");

    // Linked operation records: source -> build -> deploy.
    let source = platform
        .tovuk()
        .args(["ops", "show", deploy["operations"]["source"].as_str().expect("op")])
        .arg("--json")
        .run()
        .success()
        .json();
    assert_eq!(source["kind"], "source");
    assert_eq!(source["source"]["sha"], repo.head());
    let build_id = source["child_ids"][0].as_str().expect("child").to_owned();
    let build = platform.tovuk().args(["ops", "show", &build_id, "--json"]).run().success().json();
    assert_eq!((build["kind"].as_str(), build["parent_id"].as_str()), (Some("build"), source["id"].as_str()));
    assert_eq!(build["child_ids"][0], deploy["operations"]["deploy"]);
    let ops = platform.tovuk().args(["ops", "list", "hello", "--json"]).run().success().json();
    assert_eq!(ops["operations"].as_array().expect("ops").len(), 3);

    // A clone gets back exactly what was pushed.
    let clone = tempfile::tempdir().expect("tempdir");
    git(clone.path(), &["clone", "-q", &remote, "."]);
    assert_eq!(std::fs::read_to_string(clone.path().join("server.sh")).expect("file"), "echo hi\n");
}

#[test]
fn a_broken_manifest_is_refused_with_line_numbers_and_the_repo_is_unchanged() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let repo = GitRepo::with_files(&[("tovuk.toml", &web_manifest("hello"))]);
    git(repo.path(), &["remote", "add", "tovuk", &platform.remote("hello", &token)]);
    assert!(repo.push("tovuk", &["main"]).ok);
    let refs_before = platform.server_refs("hello");

    let broken = web_manifest("hello").replace("capabilities = [\"http\"]", "capabilities = [\"http\", \"sqlit\"]");
    repo.commit(&[("tovuk.toml", &broken)], "typo");
    let push = repo.push("tovuk", &["main"]);
    assert!(!push.ok, "{}", push.output);
    assert!(push.output.contains("remote: ") && push.output.contains("tovuk.toml:4:"), "{}", push.output);
    assert!(push.output.contains("did you mean `sqlite`"), "{}", push.output);
    assert!(push.output.contains("pre-receive hook declined"), "{}", push.output);
    assert_eq!(platform.server_refs("hello"), refs_before, "refs unchanged");
    let deploys = platform.tovuk().args(["deploy", "list", "hello", "--json"]).run().success().json();
    assert_eq!(deploys["deploys"].as_array().expect("deploys").len(), 1, "no deploy for a refused push");

    // A commit without tovuk.toml is refused the same way.
    git(repo.path(), &["rm", "-q", "tovuk.toml"]);
    repo.commit(&[("README", "no contract\n")], "remove manifest");
    let push = repo.push("tovuk", &["main"]);
    assert!(!push.ok && push.output.contains("manifest_missing"), "{}", push.output);
    assert_eq!(platform.server_refs("hello"), refs_before);
}

#[test]
fn the_same_push_twice_makes_one_deploy_and_links_back() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let repo = GitRepo::with_files(&[("tovuk.toml", &web_manifest("hello"))]);
    git(repo.path(), &["remote", "add", "tovuk", &platform.remote("hello", &token)]);
    let first = repo.push("tovuk", &["main"]);
    let first_commit = repo.head();
    assert!(first.ok, "{}", first.output);
    let again = repo.push("tovuk", &["main"]);
    assert!(again.ok && again.output.contains("up-to-date"), "{}", again.output);

    // Move main on, then put the first commit back: the same (token, ref, sha) again.
    repo.commit(&[("b.txt", "b\n")], "second");
    assert!(repo.push("tovuk", &["main"]).ok);
    git(repo.path(), &["reset", "-q", "--hard", &first_commit]);
    let back = repo.push("tovuk", &["--force", "main"]);
    assert!(back.ok, "{}", back.output);
    assert!(back.output.contains("already accepted"), "{}", back.output);
    assert_eq!(deploy_ids(&back.output), deploy_ids(&first.output), "links back to the first deploy");

    let deploys = platform.tovuk().args(["deploy", "list", "hello", "--json"]).run().success().json();
    assert_eq!(deploys["deploys"].as_array().expect("deploys").len(), 2);
}

#[test]
fn force_pushes_are_accepted_and_recorded_as_such() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let repo = GitRepo::with_files(&[("tovuk.toml", &web_manifest("hello"))]);
    git(repo.path(), &["remote", "add", "tovuk", &platform.remote("hello", &token)]);
    repo.commit(&[("a.txt", "a\n")], "a");
    assert!(repo.push("tovuk", &["main"]).ok);
    git(repo.path(), &["reset", "-q", "--hard", "HEAD~1"]);
    repo.commit(&[("b.txt", "b\n")], "rewritten");
    let push = repo.push("tovuk", &["--force", "main"]);
    assert!(push.ok && push.output.contains("(force-push)"), "{}", push.output);
    let id = deploy_ids(&push.output).pop().expect("deploy id");
    let deploy = platform.tovuk().args(["deploy", "show", &id, "--json"]).run().success().json();
    assert_eq!(deploy["source"]["forced"], true);
}

#[test]
fn other_branches_are_stored_without_deploying_and_the_deploy_branch_cannot_be_deleted() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let repo = GitRepo::with_files(&[("tovuk.toml", &web_manifest("hello"))]);
    git(repo.path(), &["remote", "add", "tovuk", &platform.remote("hello", &token)]);
    assert!(repo.push("tovuk", &["main"]).ok);
    let push = repo.push("tovuk", &["main:feature"]);
    assert!(push.ok && push.output.contains("only pushes to `main` deploy"), "{}", push.output);
    assert!(deploy_ids(&push.output).is_empty());
    // A Heroku habit: pushing `master` when `main` deploys says how to deploy it.
    let master = repo.push("tovuk", &["main:master"]);
    let hint = "git push tovuk master:main, or deploy from `master` from now on: tovuk app update hello --deploy-branch master";
    assert!(master.output.contains(hint), "{}", master.output);
    assert!(platform.server_refs("hello").contains("refs/heads/feature"));

    let delete = repo.push("tovuk", &[":main"]);
    assert!(!delete.ok && delete.output.contains("deploy branch"), "{}", delete.output);
    assert!(platform.server_refs("hello").contains("refs/heads/main"));
    // Deleting another branch is fine.
    assert!(repo.push("tovuk", &[":feature"]).ok);

    // The deploy branch is per app.
    platform.tovuk().args(["app", "update", "hello", "--deploy-branch", "release"]).run().success();
    let push = repo.push("tovuk", &["main:release"]);
    assert_eq!(deploy_ids(&push.output).len(), 1, "{}", push.output);
    let bad = platform.tovuk().args(["app", "update", "hello", "--deploy-branch", "a..b", "--json"]).run().code(1);
    assert_eq!(bad.json()["error"]["code"], "invalid_request");
}

#[test]
fn credentials_are_checked_and_tokens_stay_within_their_app() {
    let platform = Platform::start();
    let one = platform.create_app("one");
    let two = platform.create_app("two");
    let repo = GitRepo::with_files(&[("tovuk.toml", &web_manifest("one"))]);
    let admin = platform.admin_token();
    let without = format!("http://{}/git/one.git", platform.api_addr());
    let cases = [
        (without, "could not read Username"),
        (platform.remote("one", "tovuk_wrong"), "the API token is not valid"),
        (platform.remote("one", &two), "403"),
        (platform.remote("ghost", &admin), "there is no app `ghost`"),
        (platform.remote("ghost", &one), "403"),
    ];
    for (remote, expected) in cases {
        let push = repo.push(&remote, &["main"]);
        assert!(!push.ok, "{remote}: {}", push.output);
        assert!(push.output.contains(expected), "{remote}: {}", push.output);
    }
    assert!(platform.server_refs("one").is_empty(), "nothing was pushed");
    // The right deploy token and an admin token both work.
    assert!(repo.push(&platform.remote("one", &one), &["main"]).ok);
    assert!(repo.push(&platform.remote("one", &admin), &["main:other"]).ok);
}

#[test]
fn the_managed_hooks_are_put_back_and_a_repository_cannot_bring_its_own() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let hook = platform.data_dir().join("hooks").join("pre-receive");
    let original = std::fs::read_to_string(&hook).expect("managed hook");
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").expect("tamper");
    let server_repo = platform.data_dir().join("repos").join("hello.git");
    std::fs::write(server_repo.join("hooks").join("pre-receive"), "#!/bin/sh\nexit 0\n").expect("repo hook");
    git(&server_repo, &["config", "core.hooksPath", "hooks"]);

    let repo = GitRepo::with_files(&[("tovuk.toml", "[app]\nname = 1\n")]);
    let push = repo.push(&platform.remote("hello", &token), &["main"]);
    assert!(!push.ok, "{}", push.output);
    assert_eq!(std::fs::read_to_string(&hook).expect("hook"), original, "the managed hook was put back");
    assert!(platform.server_refs("hello").is_empty());
}

#[test]
fn a_push_over_the_size_limit_names_the_limit_and_changes_nothing() {
    let platform = Platform::start_with(&["--max-push-bytes", "65536"]);
    let token = platform.create_app("hello");
    // Incompressible content, well over the limit.
    let mut noise = String::new();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..40_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.push_str(&format!("{state:016x}"));
    }
    let repo = GitRepo::with_files(&[("tovuk.toml", &web_manifest("hello")), ("blob.txt", &noise)]);
    // Both entrances: a pack git sends whole with its length, and one it streams chunked
    // (bigger than `http.postBuffer`), where only the platform's count can see the size.
    for post_buffer in ["4194304", "16384"] {
        git(repo.path(), &["config", "http.postBuffer", post_buffer]);
        let push = repo.push(&platform.remote("hello", &token), &["main"]);
        assert!(!push.ok, "{}", push.output);
        assert!(push.output.contains("65536 bytes"), "the limit is named (postBuffer {post_buffer}): {}", push.output);
        assert!(push.output.contains("tovuk deploy"), "the fix is named (postBuffer {post_buffer}): {}", push.output);
        assert!(platform.server_refs("hello").is_empty(), "refs unchanged");
        let deploys = platform.tovuk().args(["deploy", "list", "hello", "--json"]).run().success().json();
        assert_eq!(deploys["deploys"].as_array().expect("deploys").len(), 0);
    }
}

#[test]
fn two_pushes_at_once_are_both_recorded_in_order() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let remote = platform.remote("hello", &token);
    let repos: Vec<GitRepo> = (0..2)
        .map(|i| GitRepo::with_files(&[("tovuk.toml", &web_manifest("hello")), ("who.txt", &format!("{i}\n"))]))
        .collect();
    // Both start at once. Git's own compare-and-swap on the ref may turn one away if both
    // read the refs before either wrote; a user then simply pushes again, as here.
    let outputs: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = repos
            .iter()
            .map(|repo| {
                let remote = remote.clone();
                scope.spawn(move || {
                    let mut push = repo.push(&remote, &["--force", "main"]);
                    for _ in 0..5 {
                        if push.ok {
                            break;
                        }
                        assert!(
                            push.output.contains("failed to update ref") || push.output.contains("cannot lock ref"),
                            "{}",
                            push.output
                        );
                        push = repo.push(&remote, &["--force", "main"]);
                    }
                    assert!(push.ok, "{}", push.output);
                    push.output
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().expect("push thread")).collect()
    });
    let deploys = platform.tovuk().args(["deploy", "list", "hello", "--json"]).run().success().json();
    let deploys = deploys["deploys"].as_array().expect("deploys").clone();
    assert_eq!(deploys.len(), 2, "{deploys:?}");
    // Newest first: the deploy recorded last is for the commit main points at now.
    let tip = platform.server_refs("hello");
    assert!(tip.contains(deploys[0]["source"]["sha"].as_str().expect("sha")), "{tip}");
    for (repo, output) in repos.iter().zip(&outputs) {
        let id = deploy_ids(output).pop().expect("deploy id");
        assert!(deploys.iter().any(|d| d["id"] == id.as_str() && d["source"]["sha"] == repo.head().as_str()));
    }
}

#[test]
fn twenty_identical_pushes_at_once_all_succeed_and_name_the_same_deploy() {
    let platform = Platform::start();
    let token = platform.create_app("crowd");
    let repo = GitRepo::with_files(&[("tovuk.toml", &web_manifest("crowd")), ("index.html", "hi")]);
    let remote = platform.remote("crowd", &token);
    // Twenty copies of one repository: the same commit, pushed from twenty places at once.
    let copies: Vec<tempfile::TempDir> = (0..20)
        .map(|_| {
            let copy = tempfile::tempdir().expect("tempdir");
            let status = std::process::Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", repo.path().display()))
                .arg(copy.path())
                .status()
                .expect("cp");
            assert!(status.success());
            copy
        })
        .collect();
    let pushes: Vec<_> = copies
        .iter()
        .map(|copy| {
            let (dir, remote) = (copy.path().to_owned(), remote.clone());
            std::thread::spawn(move || git_output(&dir, &["push", &remote, "main"]))
        })
        .collect();
    let mut named = std::collections::BTreeSet::new();
    for push in pushes {
        let output = push.join().expect("push thread");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "a push failed:\n{text}");
        let ids = deploy_ids(&text);
        // A push that starts after another landed finds the branch there already: git
        // sends nothing and says so.
        assert!(ids.len() == 1 || (ids.is_empty() && text.contains("Everything up-to-date")), "{text}");
        named.extend(ids);
    }
    assert_eq!(named.len(), 1, "the pushes named different deploys (or none): {named:?}");
    let list = platform.tovuk().args(["deploy", "list", "crowd", "--json"]).run().success().json();
    let deploys = list["deploys"].as_array().or_else(|| list.as_array()).expect("deploys").len();
    assert_eq!(deploys, 1, "{list}");
}

#[test]
fn a_route_declaring_auth_is_refused_before_building_until_its_auth_config_is_set() {
    let platform = Platform::start();
    let token = platform.create_app("guarded");
    let manifest = format!(
        "{}\n[[routes]]\npath = \"/\"\nauth = \"none\"\n\n[[routes]]\npath = \"/admin\"\nauth = \"session\"\n",
        web_manifest("guarded")
    );
    // The contract is valid: `tovuk check` passes it.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tovuk.toml"), &manifest).expect("write");
    platform.tovuk().args(["check"]).current_dir(dir.path()).run().success();
    // The dry-run names the route as a required fix.
    let plan = platform.tovuk().args(["deploy", "--dry-run", "--json"]).current_dir(dir.path()).run().code(1).json();
    let fixes = plan["requiredFixes"].to_string();
    assert!(fixes.contains("/admin") && fixes.contains("TOVUK_AUTH_MODE"), "{plan}");

    // A push is refused before building, naming the route; nothing is served.
    let repo = GitRepo::with_files(&[("tovuk.toml", &manifest), ("server", "#!/bin/sh\n")]);
    let push = repo.push(&platform.remote("guarded", &token), &["main"]);
    assert!(push.output.contains("blocked before building"), "{}", push.output);
    assert!(push.output.contains("[[routes]] /admin (auth = \"session\") needs TOVUK_AUTH_MODE"), "{}", push.output);
    let id = deploy_ids(&push.output).pop().expect("a deploy id");
    let deploy = platform.deploy(&id);
    assert_eq!(deploy["state"], "failed", "{deploy}");
    assert_eq!(deploy["failure"]["reason"], "auth_not_ready", "{deploy}");
    assert!(deploy["build_job"]["id"].is_string());
    let (status, _) = platform.get_app("guarded", "/admin");
    assert_ne!(status, 200, "a route declared with auth was served");

    // With auth = "none" the same app deploys.
    let open = manifest.replace("auth = \"session\"", "auth = \"none\"");
    let repo = GitRepo::with_files(&[("tovuk.toml", &open), ("server", "#!/bin/sh\n")]);
    let push = repo.push(&platform.remote("guarded", &token), &["--force", "main"]);
    assert!(push.output.contains("queued"), "{}", push.output);
}

#[test]
fn a_push_with_a_path_2000_directories_deep_is_refused_naming_the_limit() {
    use std::io::Write;
    let platform = Platform::start();
    let token = platform.create_app("deep");
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    // A path no file system call takes whole; git's plumbing builds it all the same.
    let deep = format!("{}/f", vec!["a"; 2000].join("/"));
    let manifest = web_manifest("deep");
    let script = format!(
        "commit refs/heads/main\ncommitter t <t@t.invalid> 0 +0000\ndata 4\ndeep\nM 100644 inline tovuk.toml\ndata {}\n{manifest}\nM 100755 inline server\ndata 10\n#!/bin/sh\n\nM 100644 inline {deep}\ndata 3\nhi\n\n",
        manifest.len()
    );
    let mut import = std::process::Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git fast-import");
    import.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write");
    assert!(import.wait().expect("wait").success());

    let started = std::time::Instant::now();
    let push = git_output(dir.path(), &["push", &platform.remote("deep", &token), "main"]);
    let output = format!("{}{}", String::from_utf8_lossy(&push.stdout), String::from_utf8_lossy(&push.stderr));
    assert!(!push.status.success(), "{output}");
    assert!(output.contains("path_too_deep") && output.contains("at most 64 deep"), "{output}");
    assert!(platform.server_refs("deep").is_empty(), "refs unchanged");
    eprintln!("refused in {:?}", started.elapsed());
}

#[test]
fn a_push_shows_the_build_live_and_waits_until_the_deploy_runs_or_fails() {
    use std::io::BufRead;
    let platform = Platform::start();
    let token = platform.create_app("live");
    let build = "build = \"echo compiling part one; sleep 2; echo compiling part two\"";
    let manifest =
        crate::support::build_manifest("live", build).replace("command = \"./server\"", "command = \"perl server.pl\"");
    let repo =
        GitRepo::with_files(&[("tovuk.toml", &manifest), ("server.pl", &crate::support::perl_app("v1", "200 OK"))]);
    // Read the push's output as it comes: a build line arrives while the deploy still builds.
    let mut child = std::process::Command::new("git")
        .arg("-C")
        .arg(repo.dir.path())
        .args(["push", &platform.remote("live", &token), "main"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("git push");
    let stderr = child.stderr.take().expect("stderr");
    let mut output = String::new();
    let mut state_at_first_line = None;
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.expect("line");
        if line.contains("compiling part one") && state_at_first_line.is_none() {
            let id = deploy_ids(&output).pop().expect("the deploy is named before its build output");
            state_at_first_line = Some(platform.deploy(&id)["state"].as_str().unwrap_or_default().to_owned());
        }
        output.push_str(&line);
        output.push('\n');
    }
    assert!(child.wait().expect("wait").success(), "{output}");
    assert_eq!(state_at_first_line.as_deref(), Some("building"), "the build's output is shown live:\n{output}");
    let id = deploy_ids(&output).pop().expect("deploy");
    assert!(output.contains("compiling part two") && output.contains(&format!("deploy {id} is running")), "{output}");
    assert_eq!(platform.deploy(&id)["state"], "running", "the push returned once it ran");

    // A failing test phase: the ref is kept, the push says where it failed, why, and the retry.
    let failing = manifest.replace(build, "test = \"echo 'assertion failed: left 1 right 2'; exit 1\"");
    repo.commit(&[("tovuk.toml", &failing)], "break the tests");
    let pushed = repo.push_following(&platform.remote("live", &token), &["main"]);
    assert!(pushed.ok, "the ref is accepted either way: {}", pushed.output);
    let id = deploy_ids(&pushed.output).pop().expect("deploy");
    for expected in [
        format!("deploy {id} failed at testing: phase_failed"),
        "assertion failed: left 1 right 2".to_owned(),
        "the pushed commit is kept either way".to_owned(),
        format!("retry: tovuk deploy retry {id}"),
    ] {
        assert!(pushed.output.contains(&expected), "{expected}:\n{}", pushed.output);
    }

    // `-o detach` returns once the deploy is recorded.
    repo.commit(&[("tovuk.toml", &manifest)], "fix the tests");
    let detached = repo.push(&platform.remote("live", &token), &["main"]);
    assert!(detached.ok && detached.output.contains("detached (-o detach)"), "{}", detached.output);
    assert!(!detached.output.contains("is running"), "{}", detached.output);
}
