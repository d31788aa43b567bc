//! The `tovuk` binary: the CLI, with `tovuk server` wired to the platform.

use std::process::ExitCode;

/// How many malloc arenas the server keeps (`MALLOC_ARENA_MAX`, when the operator set none).
const SERVER_MALLOC_ARENAS: &str = "2";

fn main() -> ExitCode {
    limit_malloc_arenas();
    tovuk_cli::main(|args| {
        let data_dir = args.data_dir.unwrap_or_else(tovuk_cli::default_data_dir);
        tovuk_server::main(tovuk_server::ServerConfig {
            data_dir,
            listen: args.listen,
            router_listen: args.router_listen,
            internal_listen: args.internal_listen,
            public_url: args.public_url,
            max_push_bytes: args.max_push_bytes,
            max_upload_bytes: args.max_upload_bytes,
            max_unpacked_bytes: args.max_unpacked_bytes,
            max_upload_files: args.max_upload_files,
            build_concurrency: args
                .build_concurrency
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)),
            build_log_limit_bytes: args.build_log_limit_bytes,
            build_toolchains: args.build_toolchains,
            base_domain: args.base_domain,
            config_file: args.config,
            metering: !args.no_metering,
            stop_apps: args.stop_apps,
            share_host_network: args.share_host_network,
            hold_listeners: args.hold_listeners,
            check_store: args.check_store,
            split_role: args.role.map(|role| tovuk_server::SplitRole {
                role,
                control_plane: args.control_plane.unwrap_or_default(),
                node_secret_file: args.node_secret_file.unwrap_or_default(),
            }),
        })
    })
}

/// glibc gives threads that allocate arenas of their own (up to 8 per core), and each keeps
/// what was freed in it: the server, with a few dozen threads, held about 7 MB more with 100
/// apps than with two arenas (bench/resources-memory.sh). glibc reads the limit only at
/// start, so `tovuk server` starts itself again with it set, unless the operator set one.
/// Apps and builds never see it: their environment is built from scratch.
fn limit_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    let server = std::env::args_os().nth(1).is_some_and(|arg| arg == "server");
    if !server || std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("MALLOC_ARENA_MAX", SERVER_MALLOC_ARENAS)
        .exec();
    // Only reached when the exec failed: the server runs as it is.
    eprintln!("note: cannot restart with MALLOC_ARENA_MAX={SERVER_MALLOC_ARENAS} ({error}); going on without it");
}
