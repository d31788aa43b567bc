//! The route table the control plane owns and the routers follow
//! (`GET /internal/v1/routes?after=VERSION`, or in-process).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Every routed app and where its traffic goes. Replaced whole; `version` changes with
/// every change, so a follower asks for "anything other than what I have".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    pub version: u64,
    /// One entry per app with a current deploy, by app name.
    pub routes: Vec<RouteEntry>,
    /// Every service binding of the apps' current deploys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<RouteBinding>,
}

/// One app's route: `<app>.<base domain>` goes to `target`, served by `deploy_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub app: String,
    pub deploy_id: String,
    pub target: RouteTarget,
    /// `[limits] request_timeout` of the deploy; absent for the router's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_secs: Option<u64>,
    /// Edge auth, when the deploy's routes declare it: the router checks every request to
    /// those routes before the app sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RouteAuth>,
}

/// An app's edge auth as its release runs with it: its `TOVUK_AUTH_*` config of the
/// release's revision, and the routes that need it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteAuth {
    /// `oidc` or `jwt`.
    pub mode: String,
    pub issuer: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub capability_claim: Option<String>,
    /// `origin`, `token` or `off`.
    pub csrf_mode: String,
    /// The app's session cookie key (hex, 32 bytes), derived from the platform's secrets key.
    pub cookie_key: String,
    /// The routes with auth other than `none` (and `none` ones, which pass as they are),
    /// longest path first when matched.
    pub rules: Vec<RouteAuthRule>,
}

impl std::fmt::Debug for RouteAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client secret and the cookie key never reach a log.
        f.debug_struct("RouteAuth")
            .field("mode", &self.mode)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// One `[[routes]]` entry: a path prefix and who may call it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteAuthRule {
    pub path: String,
    /// `none`, `optional`, `session` or `capability`.
    pub auth: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
}

/// One `[[bindings]]` entry of an app's current deploy: a call the router's internal
/// listener lets the app make, and how its token is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteBinding {
    /// The calling app.
    pub app: String,
    pub binding: String,
    /// The app it calls.
    pub service: String,
    /// The binding's resource (`res_…`): its calls are counted against it.
    pub resource_id: String,
    /// SHA-256 of the binding's token, hex: the router compares, it never holds the token.
    pub token_sha256: String,
}

/// One healthy instance a route sends requests to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    pub addr: SocketAddr,
    /// The network namespace the instance listens in; absent: the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
}

/// Where a route's requests go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RouteTarget {
    /// Proxied to the healthy instances, balanced between them.
    Proxy { upstreams: Vec<Backend> },
    /// Files served by the router from a static release.
    Static { root: PathBuf },
    /// Nothing healthy serves the app: 503 with this reason.
    Down { reason: String },
}
