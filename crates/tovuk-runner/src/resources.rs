//! The resources an app's instances reach: SQLite files in its volume, and the KV and the
//! object storage the platform serves on this machine.
//!
//! An instance with a network of its own reaches the KV and the object storage on its own
//! loopback (`127.0.0.1:6379`, `127.0.0.1:9000`): listeners the platform makes inside its
//! namespace before the app runs, and closes when the process ends. Only that app's
//! credentials open anything there. An instance on the host's network (a machine without
//! namespaces) reaches listeners on the host's loopback, where the credential alone decides.
//! The queues' API answers there too (`127.0.0.1:9650`), and their push deliveries go out
//! from here ([`queues`]); so does the State objects' (`127.0.0.1:9660`, [`states`]). Every operation is admitted and counted against the app's caps
//! ([`tovuk_meter`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tovuk_api_types::{
    ApiError, DeployFailure, FailureReason, ReleaseResource, SqliteQueryResult, SqliteRestored, SqliteSnapshot,
};
use tovuk_daemon::Shutdown;
use tovuk_manifest::ResourceKind;
use tovuk_meter::{Meters, ResourceMeter, Stop};
use tovuk_types::DataLayout;
use tovuk_types::resources::{
    KV_PORT, OBJECTS_PORT, OBJECTS_REGION, QUEUES_PORT, SERVICE_BINDING_KIND, STATE_PORT, bucket_name, sqlite_path,
    sqlite_volume_path,
};
use zeroize::Zeroizing;

mod queues;
mod states;

/// How often what each resource holds is measured, for storage metering and `service show`.
const MEASURE_EVERY: Duration = Duration::from_secs(30);

/// One resource the runner was given with a release, its credential opened.
struct Given {
    app: String,
    kind: ResourceKind,
    binding: String,
    secret: Zeroizing<String>,
    /// A State resource of another app's objects: that app.
    service: Option<String>,
}

/// The resources of every app this runner serves, by resource id.
#[derive(Default)]
struct Registry {
    given: RwLock<HashMap<String, Given>>,
}

impl Registry {
    /// The resource `id` of `kind`, when `scope` (the app whose network the connection came
    /// from, if any) may use it and `secret` is its credential.
    fn open(&self, scope: Option<&str>, id: &str, kind: ResourceKind, secret: &str) -> Option<String> {
        let given = self.given.read().ok()?;
        let resource = given.get(id)?;
        let scope_ok = scope.is_none_or(|app| app == resource.app);
        (resource.kind == kind && scope_ok && constant_time_eq(resource.secret.as_bytes(), secret.as_bytes()))
            .then(|| resource.app.clone())
    }

    /// Like [`Registry::open`], for a State resource: who owns the objects it calls (the app
    /// itself, or the app its `service` names) and their resource id there, when known here.
    fn open_state(&self, scope: Option<&str>, id: &str, secret: &str) -> Option<(String, String, Option<String>)> {
        let app = self.open(scope, id, ResourceKind::State, secret)?;
        let given = self.given.read().ok()?;
        let resource = given.get(id)?;
        let Some(owner) = &resource.service else { return Some((app.clone(), app, Some(id.to_owned()))) };
        let owned = given.iter().find(|(_, other)| {
            other.app == *owner
                && other.kind == ResourceKind::State
                && other.binding == resource.binding
                && other.service.is_none()
        });
        Some((app, owner.clone(), owned.map(|(owned_id, _)| owned_id.clone())))
    }

    fn secret_of(&self, scope: Option<&str>, id: &str, kind: ResourceKind) -> Option<(String, String)> {
        let given = self.given.read().ok()?;
        let resource = given.get(id)?;
        (resource.kind == kind && scope.is_none_or(|app| app == resource.app))
            .then(|| (resource.secret.to_string(), resource.app.clone()))
    }

    /// Every resource of `kind`, with its app.
    fn of_kind(&self, kind: ResourceKind) -> Vec<(String, String)> {
        self.given.read().map_or_else(
            |_| Vec::new(),
            |given| given.iter().filter(|(_, r)| r.kind == kind).map(|(id, r)| (id.clone(), r.app.clone())).collect(),
        )
    }

    fn of_app(&self, app: &str, kind: ResourceKind) -> Vec<String> {
        self.given.read().map_or_else(
            |_| Vec::new(),
            |given| given.iter().filter(|(_, r)| r.app == app && r.kind == kind).map(|(id, _)| id.clone()).collect(),
        )
    }
}

/// Compares without stopping at the first difference, so timing says nothing of a secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// What refuses an operation past a cap: the cap, and the command that raises it.
fn cap_message(app: &str, stop: &Stop) -> String {
    format!(
        "the app's {} cap of {} is reached for this period; raise it with: tovuk caps set {app} {} <LIMIT>",
        stop.meter, stop.limit, stop.meter
    )
}

/// What the platform serves to apps on this machine as resources.
pub struct ResourceHost {
    layout: DataLayout,
    meters: Arc<Meters>,
    kv: Arc<tovuk_kv::Kv>,
    objects: Arc<tovuk_objects::Objects>,
    /// The queues, their push dispatchers and their listener on the host's loopback.
    queues: queues::QueueHost,
    /// The State objects' storage and their listener on the host's loopback.
    states: states::StateHost,
    registry: Arc<Registry>,
    /// The ports of the listeners on the host's loopback, made on first use.
    host_ports: OnceLock<Option<(u16, u16)>>,
    shutdown: Shutdown,
    /// The runner whose instances a restore stops and starts again.
    runner: OnceLock<std::sync::Weak<crate::Runner>>,
    /// The router's internal listener, which service-binding calls go to.
    internal: OnceLock<crate::bindings::Internal>,
}

impl std::fmt::Debug for ResourceHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceHost").field("layout", &self.layout).finish_non_exhaustive()
    }
}

/// What an instance of a release gets from its resources.
#[derive(Default)]
pub(crate) struct Provided {
    /// Variables for its environment (values include credentials: never logged).
    pub env: Vec<(String, Zeroizing<String>)>,
    /// It reaches the KV or the object storage: listeners in its network before it runs.
    pub needs_endpoints: bool,
    /// The credentials among the values, to hide in what the app prints.
    pub secrets: Vec<Zeroizing<String>>,
    /// Host names its hosts file points at its loopback (`<service>.internal`).
    pub hosts: Vec<String>,
}

impl ResourceHost {
    /// Opens the KV and the object storage under the data directory.
    pub async fn open(
        layout: DataLayout,
        meters: Arc<Meters>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Arc<ResourceHost>> {
        std::fs::create_dir_all(layout.resources_dir())?;
        let kv = tovuk_kv::Kv::open(&layout.kv_file())?;
        let objects = tovuk_objects::Objects::open(&layout.objects_dir())?;
        let queues = queues::QueueHost::open(&layout.queues_file(), &shutdown);
        let states = states::StateHost::open(&layout.state_objects_file(), &shutdown).await?;
        let host = Arc::new(ResourceHost {
            layout,
            meters,
            kv,
            objects,
            queues,
            states,
            registry: Arc::default(),
            host_ports: OnceLock::new(),
            shutdown: shutdown.clone(),
            runner: OnceLock::new(),
            internal: OnceLock::new(),
        });
        shutdown.spawn("resource-sizes", host.clone().measure(shutdown.clone()));
        Ok(host)
    }

    pub(crate) fn attach(&self, runner: &Arc<crate::Runner>) {
        let _ = self.runner.set(Arc::downgrade(runner));
    }

    fn database(&self, app: &str, binding: &str) -> std::path::PathBuf {
        self.layout.volume_dir(app).join(sqlite_volume_path(binding))
    }

    /// `tovuk sqlite snapshot`: a consistent copy while the app writes.
    pub async fn sqlite_snapshot(
        &self,
        app: &str,
        resource_id: &str,
        binding: &str,
    ) -> Result<SqliteSnapshot, ApiError> {
        crate::sqlite::snapshot(&self.database(app, binding), &self.layout.snapshots_dir(resource_id)).await
    }

    /// `tovuk sqlite snapshots`.
    pub fn sqlite_snapshots(&self, resource_id: &str) -> Result<Vec<SqliteSnapshot>, ApiError> {
        crate::sqlite::snapshots(&self.layout.snapshots_dir(resource_id))
    }

    /// `tovuk sqlite restore`: the snapshot passes `PRAGMA integrity_check` first (else
    /// nothing changes); then the app's instances stop, the database as it is becomes a
    /// snapshot, the file is swapped, and they start again.
    pub async fn sqlite_restore(
        &self,
        app: &str,
        resource_id: &str,
        binding: &str,
        snapshot: &str,
    ) -> Result<SqliteRestored, ApiError> {
        let dir = self.layout.snapshots_dir(resource_id);
        let chosen = crate::sqlite::check_snapshot(&dir, snapshot).await?;
        let runner = self.runner.get().and_then(std::sync::Weak::upgrade).ok_or_else(|| {
            ApiError::new(tovuk_api_types::ErrorCode::Internal, "the runner is not running on this server")
        })?;
        let database = self.database(app, binding);
        let swap = async {
            let previous = crate::sqlite::snapshot(&database, &dir).await?;
            crate::sqlite::swap_in(&chosen, &database).await?;
            Ok(previous)
        };
        let (previous, restarted_instances) = runner.with_app_stopped(app, swap).await?;
        tracing::info!(%app, %binding, %snapshot, previous = %previous.id, "SQLite database restored from a snapshot");
        Ok(SqliteRestored {
            app: app.to_owned(),
            binding: binding.to_owned(),
            snapshot: snapshot.to_owned(),
            previous,
            restarted_instances,
        })
    }

    /// `tovuk sqlite query`: one statement, read-only unless `write`.
    pub async fn sqlite_query(
        &self,
        app: &str,
        binding: &str,
        sql: &str,
        write: bool,
    ) -> Result<SqliteQueryResult, ApiError> {
        crate::sqlite::query(&self.database(app, binding), sql, write).await
    }

    /// Whether the platform is stopping.
    pub(crate) fn stopping(&self) -> bool {
        self.shutdown.is_triggered()
    }

    /// The runner this host serves, while it runs.
    pub(crate) fn runner(&self) -> Option<Arc<crate::Runner>> {
        self.runner.get().and_then(std::sync::Weak::upgrade)
    }

    /// Sends the service-binding calls of apps on this machine to the router's internal
    /// listener at `addr`, the forwarders proving themselves with `secret`.
    pub fn serve_bindings(&self, addr: SocketAddr, secret: Arc<str>) {
        let _ = self.internal.set(crate::bindings::Internal { addr, secret });
    }

    /// Makes what a release's resources need (SQLite files, buckets), opens their
    /// credentials and says what its instances' environment gets. `config` is the app's own
    /// config: a conventional variable it sets itself is left to it.
    pub(crate) async fn provide(
        &self,
        app: &str,
        app_id: &str,
        resources: &[ReleaseResource],
        key: &tovuk_secrets::MasterKey,
        config: &tovuk_secrets::OpenedEnv,
        on_host_network: bool,
    ) -> Result<Provided, DeployFailure> {
        let failure = |why: String| crate::release::failure(FailureReason::ReleaseFailed, why);
        let mut provided = Provided::default();
        if resources.is_empty() {
            return Ok(provided);
        }
        let (kv_port, objects_port) = if on_host_network {
            self.host_ports()
                .ok_or_else(|| failure("the platform cannot serve resources on this machine's loopback".into()))?
        } else {
            (KV_PORT, OBJECTS_PORT)
        };
        let credentials: Vec<_> = resources.iter().map(|resource| resource.credential.clone()).collect();
        let opened = tovuk_secrets::open_env(key, app_id, &credentials)
            .map_err(|error| failure(format!("a resource's credential cannot be opened: {error}")))?;
        let set_by_app = |name: &str| config.iter().any(|(set, _)| set == name);
        let count = |kind: ResourceKind| resources.iter().filter(|r| r.kind == kind.as_str()).count();
        let mut env: Vec<(String, String)> = Vec::new();
        for (resource, (_, secret)) in resources.iter().zip(opened) {
            if resource.kind == SERVICE_BINDING_KIND {
                let (Some(service), Some(internal)) = (&resource.service, self.internal.get()) else {
                    return Err(failure(format!(
                        "the service binding `{}` cannot be served: this platform runs no internal listener",
                        resource.binding
                    )));
                };
                let names = tovuk_manifest::service_binding_variables(&resource.binding);
                let url = crate::bindings::service_url(service, internal, on_host_network);
                env.extend(names.into_iter().zip([url, secret.to_string()]));
                provided.hosts.push(crate::bindings::service_host(service));
                provided.needs_endpoints |= !on_host_network;
                provided.secrets.push(secret);
                continue;
            }
            let Some(kind) = ResourceKind::from_name(&resource.kind) else {
                return Err(failure(format!("resource kind `{}` is not served here", resource.kind)));
            };
            let binding = &resource.binding;
            // Values in the order of the names the manifest gives the kind
            // (`variables`, then `conventional_variables`): one list of names everywhere.
            let (own, conventional): (Vec<String>, Vec<String>) = match kind {
                ResourceKind::Sqlite => {
                    let file = self.layout.volume_dir(app).join(sqlite_volume_path(binding));
                    create_sqlite(&file).await.map_err(|why| {
                        failure(format!("the SQLite database of `{binding}` cannot be created: {why}"))
                    })?;
                    let path = sqlite_path(binding);
                    (vec![path.clone()], vec![format!("sqlite:///{path}")])
                }
                ResourceKind::Kv => {
                    let url = format!("redis://{}:{}@127.0.0.1:{kv_port}/0", resource.id, secret.as_str());
                    provided.needs_endpoints = true;
                    (vec![url.clone()], vec![url])
                }
                ResourceKind::ObjectStorage => {
                    let bucket = bucket_name(&resource.id);
                    self.objects
                        .ensure_bucket(&bucket)
                        .map_err(|error| failure(format!("the bucket of `{binding}` cannot be created: {error}")))?;
                    let endpoint = format!("http://127.0.0.1:{objects_port}");
                    provided.needs_endpoints = true;
                    let keys = [endpoint, resource.id.clone(), secret.to_string(), OBJECTS_REGION.to_owned()];
                    let own = std::iter::once(bucket.clone()).chain(keys.iter().cloned()).collect();
                    (own, keys.into_iter().chain([bucket, OBJECTS_REGION.to_owned()]).collect())
                }
                ResourceKind::Queue => {
                    let port = self
                        .queue_port(on_host_network)
                        .ok_or_else(|| failure("the platform cannot serve queues on this machine's loopback".into()))?;
                    provided.needs_endpoints = true;
                    (vec![tovuk_types::resources::queue_url(port, &resource.id), secret.to_string()], Vec::new())
                }
                ResourceKind::State => {
                    let port = self.state_port(on_host_network).ok_or_else(|| {
                        failure("the platform cannot serve State objects on this machine's loopback".into())
                    })?;
                    provided.needs_endpoints = true;
                    (vec![tovuk_types::resources::state_url(port, &resource.id), secret.to_string()], Vec::new())
                }
                // A cron job sets no variables: it runs the app's own command, on schedule.
                ResourceKind::Cron => continue,
            };
            env.extend(kind.variables(binding).into_iter().zip(own));
            if count(kind) == 1 {
                let names = kind.conventional_variables().iter().map(|name| (*name).to_owned());
                env.extend(names.zip(conventional).filter(|(name, _)| !set_by_app(name)));
            }
            // A SQLite credential is never given to the app: nothing to mask.
            if kind != ResourceKind::Sqlite {
                provided.secrets.push(secret.clone());
            }
            if let Ok(mut given_all) = self.registry.given.write() {
                // A State resource naming its own app is the app's own objects.
                let service = resource.service.clone().filter(|service| kind == ResourceKind::State && service != app);
                let given = Given { app: app.to_owned(), kind, binding: binding.clone(), secret, service };
                given_all.insert(resource.id.clone(), given);
            }
        }
        provided.env = env.into_iter().map(|(name, value)| (name, Zeroizing::new(value))).collect();
        Ok(provided)
    }

    /// Serves the KV, the object storage and the queues inside the network namespace `netns` of one of
    /// `app`'s instances until `stop` is cancelled (its process ended).
    pub(crate) async fn serve_in(&self, netns: &Path, app: &str, stop: CancellationToken) -> std::io::Result<()> {
        if let Some(internal) = self.internal.get() {
            crate::bindings::forward_in(netns, app, internal, stop.clone(), &self.shutdown).await?;
        }
        // They end with the process, or when the platform stops (the app goes on serving, and
        // the next start serves its endpoints again): a shutdown never waits on them.
        let stop = self.until_stopped(stop);
        let kv = tovuk_sandbox::network::listen_in(netns, SocketAddr::from(([127, 0, 0, 1], KV_PORT))).await?;
        let objects =
            tovuk_sandbox::network::listen_in(netns, SocketAddr::from(([127, 0, 0, 1], OBJECTS_PORT))).await?;
        let queue_api =
            tovuk_sandbox::network::listen_in(netns, SocketAddr::from(([127, 0, 0, 1], QUEUES_PORT))).await?;
        let state_api =
            tovuk_sandbox::network::listen_in(netns, SocketAddr::from(([127, 0, 0, 1], STATE_PORT))).await?;
        self.serve_queues(queue_api, Some(app.to_owned()), stop.clone());
        self.serve_states(state_api, Some(app.to_owned()), stop.clone());
        self.serve(kv, objects, Some(app.to_owned()), stop);
        Ok(())
    }

    /// A token cancelled with `stop` or when the platform stops, whichever comes first.
    fn until_stopped(&self, stop: CancellationToken) -> CancellationToken {
        let either = stop.child_token();
        let (shutdown, cancel) = (self.shutdown.clone(), either.clone());
        self.shutdown.spawn("endpoints-stop", async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = shutdown.wait() => cancel.cancel(),
            }
            Ok(())
        });
        either
    }

    fn serve(
        &self,
        kv: tokio::net::TcpListener,
        objects: tokio::net::TcpListener,
        scope: Option<String>,
        stop: CancellationToken,
    ) {
        let gate = Arc::new(Gate {
            registry: self.registry.clone(),
            meters: self.meters.clone(),
            objects: self.objects.clone(),
        });
        let (kv_store, kv_gate, kv_scope, kv_stop) = (self.kv.clone(), gate.clone(), scope.clone(), stop.clone());
        self.shutdown.spawn("kv-endpoint", async move {
            kv_store.serve(kv, kv_scope, kv_gate, kv_stop).await;
            Ok(())
        });
        let objects_store = self.objects.clone();
        self.shutdown.spawn("objects-endpoint", async move {
            objects_store.serve(objects, scope, gate, stop).await;
            Ok(())
        });
    }

    /// The listeners on the host's loopback for instances on the host's network.
    fn host_ports(&self) -> Option<(u16, u16)> {
        *self.host_ports.get_or_init(|| {
            let bind = || -> std::io::Result<(tokio::net::TcpListener, tokio::net::TcpListener)> {
                let kv = std::net::TcpListener::bind("127.0.0.1:0")?;
                let objects = std::net::TcpListener::bind("127.0.0.1:0")?;
                kv.set_nonblocking(true)?;
                objects.set_nonblocking(true)?;
                Ok((tokio::net::TcpListener::from_std(kv)?, tokio::net::TcpListener::from_std(objects)?))
            };
            match bind() {
                Ok((kv, objects)) => {
                    let ports = (kv.local_addr().ok()?.port(), objects.local_addr().ok()?.port());
                    let stop = CancellationToken::new();
                    let shutdown = self.shutdown.clone();
                    let cancel = stop.clone();
                    self.shutdown.spawn("host-endpoints", async move {
                        shutdown.wait().await;
                        cancel.cancel();
                        Ok(())
                    });
                    self.serve(kv, objects, None, stop);
                    Some(ports)
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for resources on the host's loopback");
                    None
                }
            }
        })
    }

    /// Measures what each resource holds, every little while, for metering and `service show`.
    async fn measure(self: Arc<Self>, shutdown: Shutdown) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(MEASURE_EVERY);
        loop {
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                _ = tick.tick() => {}
            }
            let host = self.clone();
            let _ = tokio::task::spawn_blocking(move || host.measure_once()).await;
            self.measure_queues().await;
            self.measure_states().await;
        }
    }

    fn measure_once(&self) {
        let given: Vec<(String, String, ResourceKind, String)> = self.registry.given.read().map_or_else(
            |_| Vec::new(),
            |given| given.iter().map(|(id, r)| (id.clone(), r.app.clone(), r.kind, r.binding.clone())).collect(),
        );
        for (id, app, kind, binding) in given {
            let bytes = match kind {
                ResourceKind::Kv => self.kv.keyspace_bytes(&id),
                ResourceKind::ObjectStorage => self.objects.bucket_bytes(&bucket_name(&id)),
                ResourceKind::Sqlite => {
                    let file = self.layout.volume_dir(&app).join(sqlite_volume_path(&binding));
                    let size = |path: &Path| std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
                    size(&file) + size(&file.with_extension("db-wal"))
                }
                _ => continue,
            };
            self.meters.app(&app).set_resource_size(&id, bytes);
        }
    }
}

/// A listener on a free port of the host's loopback, for instances on the host's network;
/// None (logged, naming `what` it is for) when there is none.
fn loopback_listener(what: &str) -> Option<(tokio::net::TcpListener, u16)> {
    let bind = || -> std::io::Result<(tokio::net::TcpListener, u16)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        Ok((tokio::net::TcpListener::from_std(listener)?, port))
    };
    bind().map_err(|error| tracing::error!(%error, "cannot listen for {what} on the host's loopback")).ok()
}

/// Creates the database file in WAL mode when it does not exist yet (the app opens it).
async fn create_sqlite(file: &Path) -> Result<(), String> {
    if file.exists() {
        return Ok(());
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    }
    crate::sqlite::create_wal_database(file).await
}

/// Who may use what, and what it costs: shared by every listener.
struct Gate {
    registry: Arc<Registry>,
    meters: Arc<Meters>,
    objects: Arc<tovuk_objects::Objects>,
}

impl Gate {
    fn admit(&self, app: &str, resource: &str, meter: ResourceMeter, n: u64) -> Result<(), String> {
        if !self.meters.enabled() || n == 0 {
            return Ok(());
        }
        self.meters.app(app).admit_resource(resource, meter, n).map_err(|stop| cap_message(app, &stop))
    }
}

impl tovuk_kv::Gate for Gate {
    fn authenticate(&self, scope: Option<&str>, username: Option<&str>, password: &str) -> Option<tovuk_kv::Keyspace> {
        let id = username?;
        let app = self.registry.open(scope, id, ResourceKind::Kv, password)?;
        Some(tovuk_kv::Keyspace { id: id.to_owned(), app })
    }

    fn admit(&self, keyspace: &tovuk_kv::Keyspace, reads: u64, writes: u64) -> Result<(), String> {
        Gate::admit(self, &keyspace.app, &keyspace.id, ResourceMeter::KvWrites, writes)?;
        Gate::admit(self, &keyspace.app, &keyspace.id, ResourceMeter::KvReads, reads)
    }
}

impl tovuk_objects::Gate for Gate {
    fn credential(&self, scope: Option<&str>, access_key: &str) -> Option<(String, tovuk_objects::Bucket)> {
        let (secret, app) = self.registry.secret_of(scope, access_key, ResourceKind::ObjectStorage)?;
        Some((secret, tovuk_objects::Bucket { resource_id: access_key.to_owned(), name: bucket_name(access_key), app }))
    }

    fn admit(&self, bucket: &tovuk_objects::Bucket, class: tovuk_objects::OpClass) -> Result<(), String> {
        let meter = match class {
            tovuk_objects::OpClass::A => ResourceMeter::ObjectClassAOps,
            tovuk_objects::OpClass::B => ResourceMeter::ObjectClassBOps,
        };
        Gate::admit(self, &bucket.app, &bucket.resource_id, meter, 1)
    }

    fn admit_bytes(&self, bucket: &tovuk_objects::Bucket, held: u64, incoming: u64) -> Result<(), String> {
        if !self.meters.enabled() {
            return Ok(());
        }
        // The cap is the app's, across its buckets.
        let others: u64 = self
            .registry
            .of_app(&bucket.app, ResourceKind::ObjectStorage)
            .iter()
            .filter(|id| **id != bucket.resource_id)
            .map(|id| self.objects.bucket_bytes(&bucket_name(id)))
            .sum();
        self.meters
            .app(&bucket.app)
            .admit_object_bytes(held.saturating_add(others), incoming)
            .map_err(|stop| cap_message(&bucket.app, &stop))
    }
}

impl tovuk_queue::Gate for Gate {
    fn open(&self, scope: Option<&str>, id: &str, token: &str) -> Option<String> {
        self.registry.open(scope, id, ResourceKind::Queue, token)
    }

    fn admit_sends(&self, app: &str, id: &str, n: u64) -> Result<(), String> {
        Gate::admit(self, app, id, ResourceMeter::QueueMessages, n)
    }
}
