//! Build caches: what an app's builds keep between them.
//!
//! `[build] cache` directories are kept per app and bound over the checkout's directory of
//! the same name while the phases run, so a second build is incremental. Whether a cached
//! path ships is decided by `[build] output`/`exclude` alone: before packing, each cache is
//! moved into the checkout (a rename, not a copy) and moved back after.
//!
//! Package managers' own caches (pip, npm, cargo's registry, go's module and build caches)
//! live in one more per-app directory, bound at `/workspace/cache`, named by the variables
//! each tool reads; they never ship.

use std::path::{Path, PathBuf};
use tovuk_types::DataLayout;

/// Where the package managers' caches live inside the build sandbox.
pub(crate) const PACKAGE_CACHE: &str = "/workspace/cache";

/// The variables that point each package manager at its cache under [`PACKAGE_CACHE`].
pub(crate) fn package_cache_env() -> Vec<(String, String)> {
    [
        ("PIP_CACHE_DIR", "pip"),
        ("npm_config_cache", "npm"),
        ("YARN_CACHE_FOLDER", "yarn"),
        ("CARGO_HOME", "cargo"),
        ("GOPATH", "go"),
        ("GOMODCACHE", "go/pkg/mod"),
        ("GOCACHE", "go/build"),
    ]
    .into_iter()
    .map(|(name, dir)| (name.to_owned(), format!("{PACKAGE_CACHE}/{dir}")))
    .collect()
}

/// The host directory of the package managers' caches of `app`. Its name holds a `+`, which
/// no `[build] cache` directory's host name can (see [`cache_dir`]).
pub(crate) fn package_cache_dir(layout: &DataLayout, app: &str) -> PathBuf {
    layout.cache_dir(app, "+packages")
}

/// The host directory that keeps cache directory `dir` (relative to the checkout) of `app`.
pub(crate) fn cache_dir(layout: &DataLayout, app: &str, dir: &str) -> PathBuf {
    let name: String =
        dir.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    layout.cache_dir(app, &name)
}

/// The `[build] cache` directories, relative, parents before what they hold.
fn cache_dirs(dirs: &[String]) -> Vec<String> {
    let mut dirs: Vec<String> =
        dirs.iter().map(|dir| dir.trim_matches('/').to_owned()).filter(|dir| !dir.is_empty()).collect();
    dirs.sort_by_key(|dir| dir.matches('/').count());
    dirs.dedup();
    dirs
}

/// The binds that put each cache (and the package caches) in place for the phases.
pub(crate) fn binds(layout: &DataLayout, app: &str, source: &Path, dirs: &[String]) -> Vec<(PathBuf, String)> {
    let mut binds = Vec::new();
    let packages = package_cache_dir(layout, app);
    if std::fs::create_dir_all(&packages).is_ok() {
        binds.push((packages, PACKAGE_CACHE.to_owned()));
    }
    for dir in cache_dirs(dirs) {
        let host = cache_dir(layout, app, &dir);
        let inside = source.join(&dir);
        // The cache is bound over the checkout's directory, which must exist as one.
        if std::fs::create_dir_all(&host).is_ok() && std::fs::create_dir_all(&inside).is_ok() {
            binds.push((host, format!("{}/{dir}", tovuk_types::PROJECT_ROOT)));
        }
    }
    binds
}

/// The caches moved into a checkout for packing; [`CachesInCheckout::put_back`] returns them.
pub(crate) struct CachesInCheckout {
    /// (the host cache dir, where it is in the checkout, where the checkout's own dir went).
    moved: Vec<(PathBuf, PathBuf, PathBuf)>,
}

impl CachesInCheckout {
    /// Moves each cache directory of `app` into `source` where the phases saw it, setting
    /// aside what the checkout had there (the committed files the bind hid).
    pub(crate) fn move_in(layout: &DataLayout, app: &str, source: &Path, dirs: &[String]) -> Result<Self, String> {
        let aside_root = source.with_file_name("cache-aside");
        let mut moved = CachesInCheckout { moved: Vec::new() };
        for (index, dir) in cache_dirs(dirs).into_iter().enumerate() {
            let host = cache_dir(layout, app, &dir);
            let inside = source.join(&dir);
            if !host.is_dir() || !inside.is_dir() {
                continue;
            }
            let aside = aside_root.join(index.to_string());
            let step =
                std::fs::create_dir_all(&aside_root).and_then(|()| std::fs::rename(&inside, &aside)).and_then(|()| {
                    match std::fs::rename(&host, &inside) {
                        Ok(()) => Ok(()),
                        Err(error) => {
                            let _ = std::fs::rename(&aside, &inside);
                            Err(error)
                        }
                    }
                });
            if let Err(error) = step {
                moved.put_back();
                return Err(format!("cannot put the build cache `{dir}` in place for packing: {error}"));
            }
            moved.moved.push((host, inside, aside));
        }
        Ok(moved)
    }

    /// Moves every cache back to where the app's next build finds it, children first.
    pub(crate) fn put_back(&mut self) {
        while let Some((host, inside, aside)) = self.moved.pop() {
            if let Err(error) = std::fs::rename(&inside, &host) {
                tracing::warn!(cache = %host.display(), %error, "cannot keep a build cache: the next build starts without it");
                continue;
            }
            let _ = std::fs::rename(&aside, &inside);
        }
    }
}

impl Drop for CachesInCheckout {
    fn drop(&mut self) {
        self.put_back();
    }
}
