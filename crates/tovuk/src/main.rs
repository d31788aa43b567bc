//! The `tovuk` binary: the CLI, with `tovuk server` wired to the platform.

use std::process::ExitCode;

fn main() -> ExitCode {
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
