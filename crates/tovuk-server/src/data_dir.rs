//! The data directory: created on first start, checked writable, holding the admin token.

use anyhow::Context;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tovuk_control::ControlStore;
use tovuk_types::DataLayout;

pub use tovuk_types::layout::{ADMIN_TOKEN_FILE, NODE_SECRET_FILE, SERVER_FILE, STATE_FILE};

pub(crate) struct DataDir {
    layout: DataLayout,
}

/// Creates the data directory (mode 0700) when absent and proves it is writable.
pub(crate) fn prepare(root: &Path) -> anyhow::Result<DataDir> {
    let hint = "pass --data-dir with a directory tovuk can create and write";
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("cannot create the data dir `{}`; {hint}", root.display()))?;
    let probe = root.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .with_context(|| format!("the data dir `{}` is not writable; {hint}", root.display()))?;
    // A previous run killed with -9 left its address behind; it is not true any more.
    let _ = std::fs::remove_file(DataLayout::new(root).server_file());
    // Absolute from here on: git and its hooks run in other directories.
    let root = &root.canonicalize().with_context(|| format!("cannot resolve the data dir `{}`", root.display()))?;
    // The store holds token hashes: owner-only from its first byte, before SQLite creates it.
    let layout = DataLayout::new(root);
    let state_file = layout.state_file();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&state_file)
        .with_context(|| format!("cannot create `{}`; {hint}", state_file.display()))?;
    Ok(DataDir { layout })
}

impl DataDir {
    pub(crate) fn layout(&self) -> &DataLayout {
        &self.layout
    }

    pub(crate) fn state_file(&self) -> PathBuf {
        self.layout.state_file()
    }

    pub(crate) fn admin_token_file(&self) -> PathBuf {
        self.layout.admin_token_file()
    }

    /// Writes a new admin token to `admin.token` when the file is absent: on first
    /// start, and again if an operator deleted it to rotate it. Returns whether it wrote.
    pub(crate) async fn ensure_admin_token(&self, store: &ControlStore) -> anyhow::Result<bool> {
        let path = self.admin_token_file();
        if path.exists() {
            return Ok(false);
        }
        let secret = store.create_admin_token("admin (admin.token)").await?;
        write_private(&path, format!("{secret}\n").as_bytes())
            .with_context(|| format!("cannot write the admin token to `{}`", path.display()))?;
        Ok(true)
    }

    /// The credential the platform's own roles present on the internal API: read from
    /// `keys/node.secret`, or written there (0600) on first start, so a role started apart
    /// (`--role router`) can be given the same file.
    pub(crate) fn node_secret(&self) -> anyhow::Result<String> {
        let path = self.layout.node_secret_file();
        match std::fs::read_to_string(&path) {
            Ok(secret) if !secret.trim().is_empty() => return Ok(secret.trim().to_owned()),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).with_context(|| format!("cannot read `{}`", path.display())),
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("the system random source failed: {error}"))?;
        let secret: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        if let Some(keys) = path.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(keys)?;
        }
        write_private(&path, format!("{secret}\n").as_bytes())
            .with_context(|| format!("cannot write the node credential to `{}`", path.display()))?;
        Ok(secret)
    }

    pub(crate) fn write_server_file(&self, api_url: &str, router_url: &str, started_at: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "pid": std::process::id(),
            "api_url": api_url,
            "router_url": router_url,
            "started_at": started_at,
        });
        let path = self.layout.server_file();
        write_private(&path, format!("{body}\n").as_bytes())
            .with_context(|| format!("cannot write `{}`", path.display()))
    }

    pub(crate) fn remove_server_file(&self) {
        let _ = std::fs::remove_file(self.layout.server_file());
    }
}

/// Writes a file readable by its owner only, atomically: a temp file then a rename,
/// so a reader never sees half a token.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}
