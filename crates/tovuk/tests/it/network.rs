//! Each instance has a network of its own: the router reaches it, nothing else does; it
//! reaches neither other apps nor the platform, and the outside only with capability
//! `outbound-network`. Builds reach the outside but not the host's loopback.
//!
//! "The outside" is a network namespace this test makes, joined to the host by a veth
//! pair: no traffic leaves the machine.

use crate::contained::neighbour_under_load;
use crate::support::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A network namespace standing for the internet, with a listener that answers `outside`.
struct Outside {
    name: String,
    listener: Child,
    addr: String,
}

impl Outside {
    fn create() -> Outside {
        let id = std::process::id() % 100_000;
        let (name, host_end, far_end) = (format!("tovuk-outside-{id}"), format!("tvk{id}h"), format!("tvk{id}o"));
        let subnet = format!("10.{}.{}", 200 + id % 50, id % 250);
        let ip = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().expect("iproute2 (scripts/test installs it)");
            assert!(status.success(), "ip {}", args.join(" "));
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(Stdio::null()).status();
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &host_end, "type", "veth", "peer", "name", &far_end]);
        ip(&["link", "set", &far_end, "netns", &name]);
        ip(&["addr", "add", &format!("{subnet}.1/30"), "dev", &host_end]);
        ip(&["link", "set", &host_end, "up"]);
        ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("{subnet}.2/30"), "dev", &far_end]);
        ip(&["netns", "exec", &name, "ip", "link", "set", &far_end, "up"]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        let addr = format!("{subnet}.2:7999");
        let listener = Command::new("ip")
            .args(["netns", "exec", &name, "perl", "-MIO::Socket::INET", "-e"])
            .arg(format!(
                "my $s = IO::Socket::INET->new(LocalAddr => '{addr}', Listen => 16, ReuseAddr => 1) or die $!; \
                 while (my $c = $s->accept) {{ print $c \"outside\\n\"; close $c }}"
            ))
            .spawn()
            .expect("listener");
        let outside = Outside { name, listener, addr };
        // The host itself reaches it: what the apps below are refused is their sandbox's doing.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&outside.addr.parse().expect("addr"), Duration::from_secs(1))
            .is_err()
        {
            assert!(Instant::now() < deadline, "the outside listener at {} never answered the host", outside.addr);
            std::thread::sleep(Duration::from_millis(50));
        }
        outside
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.listener.kill();
        let _ = self.listener.wait();
        // Deleting the namespace deletes the veth pair with it.
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// An app whose `/connect/HOST:PORT` says whether a TCP connection to it succeeds.
fn prober() -> String {
    perl_server(
        "",
        r#"if ($path =~ m{^/connect/(.+)$}) {
    my $c = IO::Socket::INET->new(PeerAddr => $1, Timeout => 2);
    $body = $c ? "connected" : "failed: $!";
  }"#,
    )
}

/// A build step that tries each address it is given and says what it reached, never failing.
const BUILD_PROBE: &str = r#"use IO::Socket::INET;
for my $target (@ARGV) {
  my $c = IO::Socket::INET->new(PeerAddr => $target, Timeout => 2);
  print $c ? "build reached $target\n" : "build cannot reach $target: $!\n";
}
"#;

/// `pasta` processes whose sandbox (the namespace they were started for) is gone.
fn orphaned_pastas() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.starts_with("pasta "))
        .filter(|cmdline| {
            let netns = cmdline.split(' ').skip_while(|arg| *arg != "--netns").nth(1).unwrap_or_default();
            !std::path::Path::new(netns).exists()
        })
        .collect()
}

fn connect_from(platform: &Platform, app: &str, target: &str) -> String {
    let (status, body) = platform.get_app(app, &format!("/connect/{target}"));
    assert_eq!(status, 200, "{app} -> {target}: {body}");
    body
}

#[test]
fn an_instance_reaches_neither_its_neighbours_nor_the_platform_and_the_outside_only_when_declared() {
    let platform = Platform::start();
    let limits = platform.tovuk().args(["status", "--json"]).run().success().json()["limits"].clone();
    eprintln!("enforced here: {limits}");
    if limits["network_isolation"] != true {
        assert!(limits["notes"].to_string().contains("share the host's network"), "{limits}");
        return;
    }
    assert_eq!(limits["outbound_isolation"], true, "pasta is installed by scripts/test: {limits}");
    let outside = Outside::create();
    let load = neighbour_under_load(&platform);
    let calm = platform.tovuk().args(["app", "status", "calm", "--json"]).run().success().json();
    let calm_port = calm["instance"]["port"].as_u64().expect("the neighbour's port");
    let neighbour = format!("127.0.0.1:{calm_port}");
    // Only the router reaches an instance: not even the host's loopback.
    assert!(std::net::TcpStream::connect(&neighbour).is_err(), "the neighbour's port is open on the host");

    let (api, router) = (platform.api_addr(), platform.router_addr());
    let manifest = |app: &str, capabilities: &str| {
        perl_manifest(app, "20s").replace("[\"http\"]", capabilities)
            + &format!(
                "\n[build]\nbuild = \"perl probe.pl {api} {router} {neighbour} {0}\"\ntest = \"perl probe.pl {0}\"\n",
                outside.addr
            )
    };
    let token = platform.create_app("closed");
    let closed = platform.push_files(
        "closed",
        &token,
        &[("tovuk.toml", &manifest("closed", "[\"http\"]")), ("server.pl", &prober()), ("probe.pl", BUILD_PROBE)],
    );
    let token = platform.create_app("open");
    let open = platform.push_files(
        "open",
        &token,
        &[
            ("tovuk.toml", &manifest("open", "[\"http\", \"outbound-network\"]")),
            ("server.pl", &prober()),
            ("probe.pl", BUILD_PROBE),
        ],
    );
    platform.wait_for_state(&closed, "running");
    platform.wait_for_state(&open, "running");

    for app in ["closed", "open"] {
        for (what, target) in [("the API", &api), ("the router", &router), ("another app", &neighbour)] {
            let said = connect_from(&platform, app, target);
            assert!(said.starts_with("failed"), "{app} reached {what} at {target}: {said}");
        }
    }
    let said = connect_from(&platform, "closed", &outside.addr);
    assert!(said.starts_with("failed"), "without outbound-network the outside answered: {said}");
    assert_eq!(connect_from(&platform, "open", &outside.addr), "connected", "outbound-network reaches the outside");

    // Builds fetch from the outside, never from the host's loopback.
    let log: String = platform
        .build_log(&open)
        .iter()
        .filter_map(|event| event["data"]["line"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    // Both phases: they share one route out.
    assert_eq!(log.matches(&format!("build reached {}", outside.addr)).count(), 2, "{log}");
    for target in [&api, &router, &neighbour] {
        assert!(log.contains(&format!("build cannot reach {target}")), "a build reached {target}:\n{log}");
    }
    // A restarted instance has a network of its own again, the router follows it, and the
    // old sandbox's route out ends with it.
    let current = |app: &str| {
        let status = platform.tovuk().args(["app", "status", app, "--json"]).run().success().json();
        (status["current_deploy"]["id"].clone(), status["instance"]["status"] == "healthy")
    };
    let before = [current("closed").0, current("open").0];
    for app in ["closed", "open"] {
        platform.tovuk().args(["app", "restart", app]).run().success();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for (app, before) in ["closed", "open"].into_iter().zip(before) {
        while current(app).0 == before || !current(app).1 || platform.get_app(app, "/connect/127.0.0.1:1").0 != 200 {
            assert!(Instant::now() < deadline, "{app} never served again after its restart:\n{}", platform.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let said = connect_from(&platform, "closed", &neighbour);
    assert!(said.starts_with("failed"), "{said}");
    assert_eq!(connect_from(&platform, "open", &outside.addr), "connected");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !orphaned_pastas().is_empty() {
        assert!(Instant::now() < deadline, "pasta outlived its sandbox: {:?}", orphaned_pastas());
        std::thread::sleep(Duration::from_millis(100));
    }

    let (served, failed) = load.finish();
    eprintln!("neighbour: {served} served, {failed} failed");
    assert_eq!(failed, 0, "the neighbour noticed");
    assert!(served > 0);
}
