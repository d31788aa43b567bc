//! The data directory's layout: every path under it, joined in one place, with the role
//! that reads or writes it. Pure path arithmetic; nothing here touches the disk.
//!
//! What each role needs, so a role can move to another machine with exactly its part:
//!
//! | path | api (control plane) | builder | runner | server | CLI |
//! |---|---|---|---|---|---|
//! | `state.db` | owns | | | opens through the api | |
//! | `admin.token` | | | | writes once | reads (local server) |
//! | `server.json` | | | | writes, removes | reads (local server) |
//! | `listeners.sock` | | | | its listener keeper | |
//! | `repos/<app>.git` | owns (git frontend, hooks, uploads) | reads (`git archive`) | reads (the contract) | | |
//! | `hooks/` | writes | | | | |
//! | `keys/` | secrets key | build signing key | build public key, secrets key | node credential | |
//! | `work/` | upload scratch | build workspaces | | | |
//! | `cache/<app>/` | | reads, writes | | | |
//! | `artifacts/` | reads, removes old | writes | reads | | |
//! | `releases/<app>/<deploy>/` | | | writes, reads | | |
//! | `instances/<deploy>/` | | | writes, reads | | |
//! | `volumes/<app>/` | measures | | binds at `/data` | | |

use std::path::{Path, PathBuf};

/// The state store.
pub const STATE_FILE: &str = "state.db";
/// The first admin API token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Where a running server says where it listens, for local tools and tests.
pub const SERVER_FILE: &str = "server.json";
/// Under `keys/`: the credential the platform's own roles present on the internal API.
pub const NODE_SECRET_FILE: &str = "node.secret";

/// The paths under one data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLayout {
    root: PathBuf,
}

impl DataLayout {
    pub fn new(root: impl Into<PathBuf>) -> DataLayout {
        DataLayout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// SQLite, WAL, 0600: only the control plane opens it.
    pub fn state_file(&self) -> PathBuf {
        self.root.join(STATE_FILE)
    }

    /// The first admin API token, 0600; deleting it makes the next start write a new one.
    pub fn admin_token_file(&self) -> PathBuf {
        self.root.join(ADMIN_TOKEN_FILE)
    }

    /// Where the running server listens; removed on stop and at start.
    pub fn server_file(&self) -> PathBuf {
        self.root.join(SERVER_FILE)
    }

    /// Where the listener keeper (holding the server's listening sockets across restarts)
    /// answers.
    pub fn listeners_socket(&self) -> PathBuf {
        self.root.join("listeners.sock")
    }

    /// The apps' bare repositories.
    pub fn repos_dir(&self) -> PathBuf {
        self.root.join("repos")
    }

    /// One app's bare repository; `refs/tovuk/uploads` holds its uploads.
    pub fn repo(&self, app: &str) -> PathBuf {
        self.repos_dir().join(format!("{app}.git"))
    }

    /// The managed git hooks (rewritten when changed).
    pub fn hooks_dir(&self) -> PathBuf {
        self.root.join("hooks")
    }

    /// Keys, 0600 each: the build signing key, the secrets master key, the node credential.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// The credential of the platform's own roles on the internal API.
    pub fn node_secret_file(&self) -> PathBuf {
        self.keys_dir().join(NODE_SECRET_FILE)
    }

    /// Build workspaces and upload scratch, removed after use and at start.
    pub fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    /// One build's workspace.
    pub fn build_workspace(&self, build_id: &str) -> PathBuf {
        self.work_dir().join(build_id)
    }

    /// One of an app's build caches (`[build] cache`).
    pub fn cache_dir(&self, app: &str, name: &str) -> PathBuf {
        self.root.join("cache").join(app).join(name)
    }

    /// Sealed artifacts: `<sha256>.tar.zst`, `.json` manifest, `.sig`.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.root.join("artifacts")
    }

    /// One deploy's unpacked release, which the runner starts.
    pub fn release_dir(&self, app: &str, deploy_id: &str) -> PathBuf {
        self.root.join("releases").join(app).join(deploy_id)
    }

    /// Running instances' process records and output files.
    pub fn instances_dir(&self) -> PathBuf {
        self.root.join("instances")
    }

    /// One instance of a deploy (`slot` 0 up to `[limits] instances` - 1): `instance.json`
    /// names its process (so a platform restart adopts it), `stdout.log` and `stderr.log`
    /// hold its output until the runner reads it. The first is `<deploy>`, the others
    /// `<deploy>.<slot>`.
    pub fn instance_dir(&self, deploy_id: &str, slot: u32) -> PathBuf {
        match slot {
            0 => self.instances_dir().join(deploy_id),
            slot => self.instances_dir().join(format!("{deploy_id}.{slot}")),
        }
    }

    /// The app's persistent data, bound at `/data`: the mount point of its volume image.
    pub fn volume_dir(&self, app: &str) -> PathBuf {
        self.root.join("volumes").join(app)
    }

    /// The ext4 image that holds the app's volume, its size the app's `[limits] data_mb`.
    pub fn volume_image(&self, app: &str) -> PathBuf {
        self.root.join("volumes").join(format!("{app}.ext4"))
    }

    /// What the platform serves to apps as resources (runner): outside every app's volume,
    /// so an app reaches it only through the resource's protocol.
    pub fn resources_dir(&self) -> PathBuf {
        self.root.join("resources")
    }

    /// Every KV keyspace, one database (runner).
    pub fn kv_file(&self) -> PathBuf {
        self.resources_dir().join("kv.redb")
    }

    /// Every queue's messages, one SQLite database (runner).
    pub fn queues_file(&self) -> PathBuf {
        self.resources_dir().join("queues.db")
    }

    /// The sessions of apps' edge auth logins, one SQLite database (router).
    pub fn sessions_file(&self) -> PathBuf {
        self.resources_dir().join("sessions.db")
    }

    /// Every State object's storage, one SQLite database (runner).
    pub fn state_objects_file(&self) -> PathBuf {
        self.resources_dir().join("state-objects.db")
    }

    /// Every bucket of object storage (runner).
    pub fn objects_dir(&self) -> PathBuf {
        self.resources_dir().join("objects")
    }

    /// The snapshots of a SQLite resource (runner: `tovuk sqlite snapshot`).
    pub fn snapshots_dir(&self, resource_id: &str) -> PathBuf {
        self.resources_dir().join("snapshots").join(resource_id)
    }
}
