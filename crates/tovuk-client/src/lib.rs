//! Typed client for the control-plane API, used by the CLI, the roles and the tests.
//!
//! Every failure is one of three kinds a caller can act on: the platform could not be
//! reached, it refused with an API error, or it answered something that is not the API.

mod cron;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tovuk_api_types::{
    AcceptedSource, ApiError, App, AppList, AppStatus, ArtifactInfo, ArtifactVerification, BuildControl, BuildFinish,
    BuildLogEvent, BuildStateRequest, ClaimRequest, ClaimedBuild, ClaimedRelease, CommitList, CreateAppRequest,
    CreateTokenRequest, CreatedApp, CreatedToken, CurrentReleases, Deploy, DeployEvent, DeployFailure, DeployList,
    ErrorBody, ErrorCode, HookRequest, HookResponse, InstanceReport, LogBatch, Operation, OperationList, PhaseReport,
    PlatformStatus, ReleaseFailed, ReleaseLive, ReleaseOutcome, ResolvedRef, SourceRefs, SourceRemote, SourceSummary,
    Token, TokenList, UpdateAppRequest,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach tovuk at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{}", error.message)]
    Api { status: u16, error: ApiError },
    #[error("tovuk at {url} answered something unexpected: {detail}")]
    BadResponse { url: String, detail: String },
}

impl ClientError {
    /// The error as the API's error body, so `--json` output has one shape for every failure.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            ClientError::Api { error, .. } => error.clone(),
            ClientError::Unreachable { url, .. } => ApiError::new(ErrorCode::Unreachable, self.to_string()).with_next(
                format!("start the platform with `tovuk server`, or check the URL `{url}` with `tovuk target list`"),
            ),
            ClientError::BadResponse { .. } => ApiError::new(ErrorCode::BadResponse, self.to_string())
                .with_next("check that the target URL points at a tovuk API (`tovuk target list`)"),
        }
    }
}

/// A client bound to one platform URL and, usually, one token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
    /// Set for in-process roles talking to `/internal/v1/builds`.
    node_secret: Option<String>,
}

/// Encodes one path segment so names and ids cannot change the route.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Client {
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("tovuk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ClientError::BadResponse { url: base_url.to_owned(), detail: error.to_string() })?;
        Ok(Client { http, base_url: base_url.trim_end_matches('/').to_owned(), token, node_secret: None })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(secret) = &self.node_secret {
            request = request.header(tovuk_api_types::NODE_SECRET_HEADER, secret);
        }
        request
    }

    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ClientError> {
        let url = self.base_url.clone();
        let response = request.send().await.map_err(|error| {
            let detail = if error.is_connect() {
                "connection refused or no route".to_owned()
            } else if error.is_timeout() {
                "timed out".to_owned()
            } else {
                error.to_string()
            };
            ClientError::Unreachable { url: url.clone(), detail }
        })?;
        Self::decode(&url, response).await
    }

    /// Reads a response: the body on success, the API error otherwise.
    async fn decode<T: DeserializeOwned>(url: &str, response: reqwest::Response) -> Result<T, ClientError> {
        let url = url.to_owned();
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| ClientError::Unreachable { url: url.clone(), detail: error.to_string() })?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|error| ClientError::BadResponse { url, detail: format!("HTTP {status}: {error}") });
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(ErrorBody { error }) => Err(ClientError::Api { status: status.as_u16(), error }),
            Err(_) if status == StatusCode::NOT_FOUND || status.is_server_error() => {
                Err(ClientError::BadResponse { url, detail: format!("HTTP {status} without an API error body") })
            }
            Err(_) => Err(ClientError::BadResponse { url, detail: format!("HTTP {status}") }),
        }
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.request(Method::GET, path)).await
    }

    /// A consistent copy of the state store (admin).
    pub async fn store_backup(&self) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/v1/store/backup", self.base_url);
        let response = self
            .request(Method::GET, "/v1/store/backup")
            .send()
            .await
            .map_err(|error| ClientError::Unreachable { url: url.clone(), detail: error.to_string() })?;
        if !response.status().is_success() {
            return Self::decode::<serde_json::Value>(&url, response).await.map(|_| Vec::new());
        }
        let bytes =
            response.bytes().await.map_err(|error| ClientError::Unreachable { url, detail: error.to_string() })?;
        Ok(bytes.to_vec())
    }

    pub async fn status(&self) -> Result<PlatformStatus, ClientError> {
        self.get("/v1/status").await
    }

    pub async fn create_app(&self, name: &str, deploy_branch: Option<&str>) -> Result<CreatedApp, ClientError> {
        let request = CreateAppRequest { name: name.to_owned(), deploy_branch: deploy_branch.map(str::to_owned) };
        self.post("/v1/apps", &request).await
    }

    pub async fn list_apps(&self) -> Result<AppList, ClientError> {
        self.get("/v1/apps").await
    }

    pub async fn show_app(&self, name_or_id: &str) -> Result<App, ClientError> {
        self.get(&format!("/v1/apps/{}", segment(name_or_id))).await
    }

    pub async fn create_token(&self, name: &str, app: Option<&str>) -> Result<CreatedToken, ClientError> {
        self.post("/v1/tokens", &CreateTokenRequest { name: name.to_owned(), app: app.map(str::to_owned) }).await
    }

    pub async fn list_tokens(&self) -> Result<TokenList, ClientError> {
        self.get("/v1/tokens").await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<Token, ClientError> {
        self.send(self.request(Method::DELETE, &format!("/v1/tokens/{}", segment(id)))).await
    }
}

/// Source intake, deploys, operations and source inspection.
impl Client {
    pub async fn update_app(&self, app: &str, request: &UpdateAppRequest) -> Result<App, ClientError> {
        self.send(self.request(Method::PATCH, &format!("/v1/apps/{}", segment(app))).json(request)).await
    }

    /// Uploads a `tovuk deploy` archive (tar + zstd).
    pub async fn upload(&self, app: &str, archive: Vec<u8>) -> Result<AcceptedSource, ClientError> {
        let request = self
            .request(Method::POST, &format!("/v1/apps/{}/deploys", segment(app)))
            .header(reqwest::header::CONTENT_TYPE, "application/zstd")
            .body(archive);
        self.send(request).await
    }

    pub async fn list_deploys(&self, app: &str, limit: Option<u32>) -> Result<DeployList, ClientError> {
        let query = limit.map(|limit| format!("?limit={limit}")).unwrap_or_default();
        self.get(&format!("/v1/apps/{}/deploys{query}", segment(app))).await
    }

    pub async fn show_deploy(&self, id: &str) -> Result<Deploy, ClientError> {
        self.get(&format!("/v1/deploys/{}", segment(id))).await
    }

    pub async fn retry_deploy(&self, id: &str) -> Result<Deploy, ClientError> {
        self.send(self.request(Method::POST, &format!("/v1/deploys/{}/retry", segment(id)))).await
    }

    pub async fn cancel_deploy(&self, id: &str) -> Result<Deploy, ClientError> {
        self.send(self.request(Method::POST, &format!("/v1/deploys/{}/cancel", segment(id)))).await
    }

    pub async fn list_operations(&self, app: &str) -> Result<OperationList, ClientError> {
        self.get(&format!("/v1/apps/{}/operations", segment(app))).await
    }

    pub async fn show_operation(&self, id: &str) -> Result<Operation, ClientError> {
        self.get(&format!("/v1/operations/{}", segment(id))).await
    }

    pub async fn source_show(&self, app: &str) -> Result<SourceSummary, ClientError> {
        self.get(&format!("/v1/apps/{}/source", segment(app))).await
    }

    pub async fn source_refs(&self, app: &str) -> Result<SourceRefs, ClientError> {
        self.get(&format!("/v1/apps/{}/source/refs", segment(app))).await
    }

    pub async fn source_resolve(&self, app: &str, reference: &str) -> Result<ResolvedRef, ClientError> {
        self.get(&format!("/v1/apps/{}/source/resolve?ref={}", segment(app), segment(reference))).await
    }

    pub async fn source_commits(
        &self,
        app: &str,
        reference: Option<&str>,
        limit: Option<u32>,
    ) -> Result<CommitList, ClientError> {
        let mut query = Vec::new();
        if let Some(reference) = reference {
            query.push(format!("ref={}", segment(reference)));
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
        self.get(&format!("/v1/apps/{}/source/commits{query}", segment(app))).await
    }

    pub async fn source_remote(&self, app: &str) -> Result<SourceRemote, ClientError> {
        self.get(&format!("/v1/apps/{}/source/remote", segment(app))).await
    }

    /// What a managed git hook sends: git's input, authenticated by the push secret.
    pub async fn run_hook(&self, hook: &str, secret: &str, request: &HookRequest) -> Result<HookResponse, ClientError> {
        let request = self
            .request(Method::POST, &format!("/git-hooks/v1/{}", segment(hook)))
            .header(tovuk_api_types::hook_env::PUSH_SECRET_HEADER, secret)
            .json(request);
        self.send(request).await
    }
}

/// The builder's internal API, authenticated with the node secret.
impl Client {
    /// A client for an in-process role: requests carry the node secret.
    pub fn for_node(base_url: &str, node_secret: &str) -> Result<Self, ClientError> {
        let mut client = Client::new(base_url, None)?;
        client.node_secret = Some(node_secret.to_owned());
        Ok(client)
    }

    /// Waits (long poll) for a queued deploy to build; `None` when there was none in time.
    pub async fn claim_build(&self, node: &str) -> Result<Option<ClaimedBuild>, ClientError> {
        let request =
            self.request(Method::POST, "/internal/v1/builds/claim").json(&ClaimRequest { node: node.to_owned() });
        self.long_poll(request).await
    }

    /// A long poll: the answer, or `None` when the server had nothing before it gave up (204).
    async fn long_poll<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<Option<T>, ClientError> {
        let response = request
            .send()
            .await
            .map_err(|error| ClientError::Unreachable { url: self.base_url.clone(), detail: error.to_string() })?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Self::decode(&self.base_url, response).await.map(Some)
    }

    pub async fn advance_build(
        &self,
        deploy_id: &str,
        state: tovuk_api_types::DeployState,
    ) -> Result<BuildControl, ClientError> {
        let path = format!("/internal/v1/builds/{}/state", segment(deploy_id));
        self.post(&path, &BuildStateRequest { state }).await
    }

    pub async fn report_phase(&self, deploy_id: &str, report: &PhaseReport) -> Result<BuildControl, ClientError> {
        self.post(&format!("/internal/v1/builds/{}/phases", segment(deploy_id)), report).await
    }

    pub async fn send_build_logs(&self, deploy_id: &str, batch: &LogBatch) -> Result<BuildControl, ClientError> {
        self.post(&format!("/internal/v1/builds/{}/logs", segment(deploy_id)), batch).await
    }

    pub async fn finish_build(&self, deploy_id: &str, finish: &BuildFinish) -> Result<BuildControl, ClientError> {
        self.post(&format!("/internal/v1/builds/{}/finish", segment(deploy_id)), finish).await
    }

    /// A build's log as a stream of events; with `follow`, until the build ends.
    pub async fn build_logs(&self, deploy_id: &str, follow: bool) -> Result<EventStream<BuildLogEvent>, ClientError> {
        self.stream(&format!("/v1/deploys/{}/build-logs?follow={follow}", segment(deploy_id))).await
    }

    /// A deploy's state changes as a stream of events; with `follow`, until it settles.
    pub async fn deploy_events(&self, deploy_id: &str, follow: bool) -> Result<EventStream<DeployEvent>, ClientError> {
        self.stream(&format!("/v1/deploys/{}/events?follow={follow}", segment(deploy_id))).await
    }

    /// Opens an NDJSON stream.
    async fn stream<T: DeserializeOwned>(&self, path: &str) -> Result<EventStream<T>, ClientError> {
        // No overall timeout: a followed stream lasts as long as the deploy does.
        let request = self.request(Method::GET, path).timeout(Duration::from_secs(24 * 3600));
        let response = request
            .send()
            .await
            .map_err(|error| ClientError::Unreachable { url: self.base_url.clone(), detail: error.to_string() })?;
        if !response.status().is_success() {
            return Err(Self::decode::<serde_json::Value>(&self.base_url, response).await.err().unwrap_or(
                ClientError::BadResponse { url: self.base_url.clone(), detail: "unexpected success".into() },
            ));
        }
        Ok(EventStream { response, buffer: Vec::new(), url: self.base_url.clone(), event: std::marker::PhantomData })
    }

    pub async fn artifact(&self, deploy_id: &str) -> Result<ArtifactInfo, ClientError> {
        self.get(&format!("/v1/deploys/{}/artifact", segment(deploy_id))).await
    }

    pub async fn verify_artifact(&self, deploy_id: &str) -> Result<ArtifactVerification, ClientError> {
        self.send(self.request(Method::POST, &format!("/v1/deploys/{}/artifact/verify", segment(deploy_id)))).await
    }
}

/// Events as they arrive (NDJSON over chunked HTTP).
pub struct EventStream<T> {
    response: reqwest::Response,
    buffer: Vec<u8>,
    url: String,
    event: std::marker::PhantomData<T>,
}

impl<T: DeserializeOwned> EventStream<T> {
    /// The next event, or `None` when the stream ended.
    pub async fn next(&mut self) -> Result<Option<T>, ClientError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let event = serde_json::from_slice(&line[..line.len() - 1])
                    .map_err(|error| ClientError::BadResponse { url: self.url.clone(), detail: error.to_string() })?;
                return Ok(Some(event));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => return Ok(None),
                Err(error) => {
                    return Err(ClientError::Unreachable { url: self.url.clone(), detail: error.to_string() });
                }
            }
        }
    }
}

/// The runner's internal API, authenticated with the node secret.
impl Client {
    /// Waits (long poll) for a sealed artifact to take live; `None` when there was none in time.
    pub async fn claim_release(&self) -> Result<Option<ClaimedRelease>, ClientError> {
        self.long_poll(self.request(Method::POST, "/internal/v1/releases/claim")).await
    }

    pub async fn current_releases(&self) -> Result<CurrentReleases, ClientError> {
        self.get("/internal/v1/releases/current").await
    }

    pub async fn release_live(
        &self,
        deploy_id: &str,
        instance: &InstanceReport,
    ) -> Result<ReleaseOutcome, ClientError> {
        let body = ReleaseLive { instance: instance.clone() };
        self.post(&format!("/internal/v1/releases/{}/live", segment(deploy_id)), &body).await
    }

    pub async fn release_failed(&self, deploy_id: &str, failure: &DeployFailure) -> Result<(), ClientError> {
        let body = ReleaseFailed { failure: failure.clone() };
        let path = format!("/internal/v1/releases/{}/failed", segment(deploy_id));
        self.send_empty(self.request(Method::POST, &path).json(&body)).await
    }

    /// The release stayed healthy: the deploys it replaced are superseded.
    pub async fn release_settled(&self, deploy_id: &str) -> Result<tovuk_api_types::ReleaseSettled, ClientError> {
        self.post(&format!("/internal/v1/releases/{}/settled", segment(deploy_id)), &serde_json::json!({})).await
    }

    /// The release crashed before it had stayed healthy: traffic goes back to the deploy before it.
    pub async fn release_rolled_back(
        &self,
        deploy_id: &str,
        failure: &DeployFailure,
    ) -> Result<tovuk_api_types::RolledBack, ClientError> {
        let body = ReleaseFailed { failure: failure.clone() };
        self.post(&format!("/internal/v1/releases/{}/rolled-back", segment(deploy_id)), &body).await
    }

    /// Waits (long poll) for the route table once its version differs from `version`;
    /// `None` when it did not change in time.
    pub async fn route_table(&self, version: u64) -> Result<Option<tovuk_api_types::RouteTable>, ClientError> {
        self.long_poll(self.request(Method::GET, &format!("/internal/v1/routes?after={version}"))).await
    }

    pub async fn report_instance(&self, instance: &InstanceReport) -> Result<(), ClientError> {
        self.send_empty(self.request(Method::POST, "/internal/v1/instances").json(instance)).await
    }

    /// `tovuk preflight`: the readiness of a contract against the app's config.
    pub async fn preflight(
        &self,
        app: &str,
        request: &tovuk_api_types::PreflightRequest,
    ) -> Result<tovuk_api_types::Preflight, ClientError> {
        self.post(&format!("/v1/apps/{}/preflight", segment(app)), request).await
    }

    pub async fn app_inspect(&self, app: &str) -> Result<tovuk_api_types::AppInspection, ClientError> {
        self.get(&format!("/v1/apps/{}/inspect", segment(app))).await
    }

    pub async fn app_status(&self, app: &str) -> Result<AppStatus, ClientError> {
        self.get(&format!("/v1/apps/{}/status", segment(app))).await
    }

    /// Sets and unsets config names as one change. The values travel in this request only.
    pub async fn change_env(
        &self,
        app: &str,
        change: &tovuk_api_types::EnvChangeRequest,
    ) -> Result<tovuk_api_types::EnvChangeResult, ClientError> {
        self.send(self.request(Method::PUT, &format!("/v1/apps/{}/env", segment(app))).json(change)).await
    }

    pub async fn list_env(&self, app: &str) -> Result<tovuk_api_types::EnvList, ClientError> {
        self.get(&format!("/v1/apps/{}/env", segment(app))).await
    }

    pub async fn env_history(&self, app: &str) -> Result<tovuk_api_types::EnvHistory, ClientError> {
        self.get(&format!("/v1/apps/{}/env/history", segment(app))).await
    }

    /// Releases the app's current artifact again with its config as it is now.
    /// `tovuk rollback`.
    pub async fn rollback(
        &self,
        app: &str,
        request: &tovuk_api_types::RollbackRequest,
    ) -> Result<tovuk_api_types::RollbackResult, ClientError> {
        self.post(&format!("/v1/apps/{}/rollback", segment(app)), request).await
    }

    pub async fn restart_app(&self, app: &str) -> Result<Deploy, ClientError> {
        self.send(self.request(Method::POST, &format!("/v1/apps/{}/restart", segment(app)))).await
    }

    /// Sends a request whose success has no body (204).
    async fn send_empty(&self, request: RequestBuilder) -> Result<(), ClientError> {
        let response = request
            .send()
            .await
            .map_err(|error| ClientError::Unreachable { url: self.base_url.clone(), detail: error.to_string() })?;
        if response.status().is_success() {
            return Ok(());
        }
        Self::decode::<serde_json::Value>(&self.base_url, response).await.map(|_| ())
    }
}

/// App logs.
impl Client {
    /// The runner ships what instances print.
    pub async fn pricing(&self) -> Result<tovuk_api_types::Pricing, ClientError> {
        self.get("/v1/pricing").await
    }

    /// This period's usage: the account's, or one app's.
    pub async fn usage(&self, app: Option<&str>) -> Result<tovuk_api_types::UsageReport, ClientError> {
        match app {
            Some(app) => self.get(&format!("/v1/usage?app={}", segment(app))).await,
            None => self.get("/v1/usage").await,
        }
    }

    pub async fn service(&self, app: &str) -> Result<tovuk_api_types::Service, ClientError> {
        self.get(&format!("/v1/services/{}", segment(app))).await
    }

    pub async fn services(&self) -> Result<tovuk_api_types::ServiceList, ClientError> {
        self.get("/v1/services").await
    }

    pub async fn create_addon(
        &self,
        app: &str,
        request: &tovuk_api_types::AddonCreateRequest,
    ) -> Result<tovuk_api_types::AddonResult, ClientError> {
        self.send(self.request(Method::POST, &format!("/v1/apps/{}/addons", segment(app))).json(request)).await
    }

    pub async fn detach_addon(&self, app: &str, binding: &str) -> Result<tovuk_api_types::AddonResult, ClientError> {
        let path = format!("/v1/apps/{}/addons/{}/detach", segment(app), segment(binding));
        self.send(self.request(Method::POST, &path)).await
    }

    fn sqlite_path(app: &str, binding: &str, action: &str) -> String {
        format!("/v1/apps/{}/sqlite/{}/{action}", segment(app), segment(binding))
    }

    pub async fn sqlite_snapshot(
        &self,
        app: &str,
        binding: &str,
    ) -> Result<tovuk_api_types::SqliteSnapshot, ClientError> {
        self.send(self.request(Method::POST, &Self::sqlite_path(app, binding, "snapshots"))).await
    }

    pub async fn sqlite_snapshots(
        &self,
        app: &str,
        binding: &str,
    ) -> Result<tovuk_api_types::SqliteSnapshotList, ClientError> {
        self.get(&Self::sqlite_path(app, binding, "snapshots")).await
    }

    pub async fn sqlite_restore(
        &self,
        app: &str,
        binding: &str,
        snapshot: &str,
    ) -> Result<tovuk_api_types::SqliteRestored, ClientError> {
        let request = tovuk_api_types::SqliteRestoreRequest { snapshot: snapshot.to_owned() };
        self.send(self.request(Method::POST, &Self::sqlite_path(app, binding, "restore")).json(&request)).await
    }

    pub async fn sqlite_query(
        &self,
        app: &str,
        binding: &str,
        sql: &str,
        write: bool,
    ) -> Result<tovuk_api_types::SqliteQueryResult, ClientError> {
        let request = tovuk_api_types::SqliteQueryRequest { sql: sql.to_owned(), write };
        self.send(self.request(Method::POST, &Self::sqlite_path(app, binding, "query")).json(&request)).await
    }

    fn queue_path(app: &str, binding: &str) -> String {
        format!("/v1/apps/{}/queues/{}", segment(app), segment(binding))
    }

    pub async fn queues(&self, app: &str) -> Result<tovuk_api_types::QueueList, ClientError> {
        self.get(&format!("/v1/apps/{}/queues", segment(app))).await
    }

    pub async fn queue(&self, app: &str, binding: &str) -> Result<tovuk_api_types::QueueInfo, ClientError> {
        self.get(&Self::queue_path(app, binding)).await
    }

    pub async fn queue_peek(
        &self,
        app: &str,
        binding: &str,
        dead_letter: bool,
        limit: usize,
    ) -> Result<tovuk_api_types::QueuePeek, ClientError> {
        let path = format!("{}/messages?dead_letter={dead_letter}&limit={limit}", Self::queue_path(app, binding));
        self.get(&path).await
    }

    pub async fn queue_purge(
        &self,
        app: &str,
        binding: &str,
        request: &tovuk_api_types::QueuePurgeRequest,
    ) -> Result<tovuk_api_types::QueuePurged, ClientError> {
        let path = format!("{}/purge", Self::queue_path(app, binding));
        self.send(self.request(Method::POST, &path).json(request)).await
    }

    pub async fn queue_redrive(&self, app: &str, binding: &str) -> Result<tovuk_api_types::QueueRedriven, ClientError> {
        self.send(self.request(Method::POST, &format!("{}/redrive", Self::queue_path(app, binding)))).await
    }

    pub async fn list_caps(&self, app: &str) -> Result<tovuk_api_types::CapList, ClientError> {
        self.get(&format!("/v1/apps/{}/caps", segment(app))).await
    }

    pub async fn set_cap(&self, app: &str, meter: &str, limit: f64) -> Result<tovuk_api_types::CapList, ClientError> {
        let request = tovuk_api_types::SetCapRequest { limit };
        self.send(
            self.request(Method::PUT, &format!("/v1/apps/{}/caps/{}", segment(app), segment(meter))).json(&request),
        )
        .await
    }

    pub async fn unset_cap(&self, app: &str, meter: &str) -> Result<tovuk_api_types::CapList, ClientError> {
        self.send(self.request(Method::DELETE, &format!("/v1/apps/{}/caps/{}", segment(app), segment(meter)))).await
    }

    /// What a deploy of this contract would do; changes nothing.
    pub async fn plan(
        &self,
        request: &tovuk_api_types::PlanRequest,
    ) -> Result<tovuk_api_types::DeployPlan, ClientError> {
        self.post("/v1/plan", request).await
    }

    /// Usage a role measured (the runner's CPU and memory samples).
    pub async fn send_usage(&self, batch: &tovuk_api_types::UsageBatch) -> Result<(), ClientError> {
        self.send_empty(self.request(Method::POST, "/internal/v1/usage").json(batch)).await
    }

    pub async fn send_app_logs(&self, batch: &tovuk_api_types::AppLogBatch) -> Result<(), ClientError> {
        self.send_empty(self.request(Method::POST, "/internal/v1/app-logs").json(batch)).await
    }

    /// An app's newest log lines, and with `follow` every new one as it is stored.
    pub async fn app_logs(
        &self,
        app: &str,
        follow: bool,
        tail: u32,
    ) -> Result<EventStream<tovuk_api_types::AppLogEvent>, ClientError> {
        self.stream(&format!("/v1/apps/{}/logs?follow={follow}&tail={tail}", segment(app))).await
    }
}
