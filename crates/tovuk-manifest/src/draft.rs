//! The manifest as read, with source spans, before cross-field rules; converted to `Manifest` when clean.

use std::time::Duration;

use crate::manifest::{
    Build, DEFAULT_BUILD_TIMEOUT, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEALTH_INTERVAL, DEFAULT_HEALTH_TIMEOUT,
    DEFAULT_MIN_HEALTHY, DEFAULT_STATIC_ROOT, DEFAULT_STOP_GRACE, Domain, Expected, Health, Limits, Resource, Route,
    ServiceBinding,
};
use crate::manifest::{
    DEFAULT_BATCH_SIZE, DEFAULT_DELIVERY_TIMEOUT, DEFAULT_MAX_RETRIES, DEFAULT_MAX_WAIT, PushConsumer, QueueSettings,
};
use crate::manifest::{DEFAULT_CRON_TIMEOUT, DEFAULT_RELEASE_TIMEOUT, Process, Release};
use crate::position::Span;
use crate::{AppKind, Capability, Manifest, ResourceKind, RouteAuth};

/// A value and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Located<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// A key as read. `Invalid` means an error was already reported for it, so
/// rules must neither report it as missing nor reason about its value.
#[derive(Debug, Clone, Default)]
pub(crate) enum Field<T> {
    #[default]
    Absent,
    Invalid,
    Valid(Located<T>),
}

impl<T> Field<T> {
    pub(crate) fn valid(&self) -> Option<&Located<T>> {
        match self {
            Field::Valid(located) => Some(located),
            Field::Absent | Field::Invalid => None,
        }
    }

    pub(crate) fn value(&self) -> Option<&T> {
        self.valid().map(|located| &located.value)
    }

    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Field::Absent)
    }

    pub(crate) fn is_present(&self) -> bool {
        !self.is_absent()
    }

    pub(crate) fn span(&self) -> Option<&Span> {
        self.valid().map(|located| &located.span)
    }

    /// Keeps the span, replaces the value (or marks it invalid when `f` says no).
    pub(crate) fn and_then<U>(self, f: impl FnOnce(&T, &Span) -> Option<U>) -> Field<U> {
        match self {
            Field::Absent => Field::Absent,
            Field::Invalid => Field::Invalid,
            Field::Valid(Located { value, span }) => match f(&value, &span) {
                Some(value) => Field::Valid(Located { value, span }),
                None => Field::Invalid,
            },
        }
    }
}

/// A table or array-of-tables entry: where its header is, and what it holds.
pub(crate) type Section<T> = Field<T>;

#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub(crate) app: Section<DraftApp>,
    pub(crate) build: Section<DraftBuild>,
    pub(crate) run: Section<DraftRun>,
    pub(crate) release: Section<DraftRelease>,
    pub(crate) processes: Section<Vec<Located<DraftProcess>>>,
    pub(crate) health: Section<DraftHealth>,
    pub(crate) static_site: Section<DraftStatic>,
    pub(crate) resources: Section<Vec<Located<DraftResource>>>,
    pub(crate) bindings: Section<Vec<Located<DraftBinding>>>,
    pub(crate) routes: Section<Vec<Located<DraftRoute>>>,
    pub(crate) config: Section<DraftConfig>,
    pub(crate) limits: Section<Limits>,
    pub(crate) domains: Section<Vec<Located<DraftDomain>>>,
    pub(crate) expected: Section<Expected>,
}

#[derive(Debug, Default)]
pub(crate) struct DraftRelease {
    pub(crate) command: Field<String>,
    pub(crate) timeout: Field<Duration>,
}

#[derive(Debug, Default)]
pub(crate) struct DraftProcess {
    pub(crate) name: Field<String>,
    pub(crate) command: Field<String>,
    pub(crate) instances: Option<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct DraftApp {
    pub(crate) name: Field<String>,
    pub(crate) kind: Field<AppKind>,
    /// Only the known capabilities; unknown ones were reported while reading.
    pub(crate) capabilities: Field<Vec<Located<Capability>>>,
}

#[derive(Debug, Default)]
pub(crate) struct DraftBuild {
    pub(crate) build: Field<String>,
    pub(crate) typecheck: Field<String>,
    pub(crate) test: Field<String>,
    pub(crate) output: Vec<String>,
    pub(crate) cache: Vec<String>,
    pub(crate) secrets: Vec<String>,
    pub(crate) exclude: Vec<String>,
    pub(crate) include: Vec<String>,
    pub(crate) timeout: Field<Duration>,
}

#[derive(Debug, Default)]
pub(crate) struct DraftRun {
    pub(crate) command: Field<String>,
    pub(crate) drain_timeout: Field<Duration>,
    pub(crate) stop_grace: Field<Duration>,
}

#[derive(Debug, Default)]
pub(crate) struct DraftHealth {
    pub(crate) path: Field<String>,
    pub(crate) timeout: Field<Duration>,
    pub(crate) interval: Field<Duration>,
    pub(crate) min_healthy: Field<Duration>,
}

#[derive(Debug, Default)]
pub(crate) struct DraftStatic {
    pub(crate) root: Field<String>,
    pub(crate) serve_hidden: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct DraftResource {
    pub(crate) kind: Field<ResourceKind>,
    pub(crate) binding: Field<String>,
    pub(crate) schedule: Field<String>,
    pub(crate) command: Field<String>,
    /// How long one cron run may take; only for kind `cron`.
    pub(crate) timeout: Field<Duration>,
    /// A queue's delivery keys (`consumer`, `max_retries`, ...); only for kind `queue`.
    pub(crate) queue: DraftQueue,
    /// The app whose State objects these are; only for kind `state`.
    pub(crate) service: Field<String>,
}

/// The keys only a queue resource takes.
#[derive(Debug, Default)]
pub(crate) struct DraftQueue {
    pub(crate) consumer: Field<String>,
    pub(crate) consumer_path: Field<String>,
    pub(crate) batch_size: Field<u32>,
    pub(crate) max_wait: Field<Duration>,
    pub(crate) delivery_timeout: Field<Duration>,
    pub(crate) max_retries: Field<u32>,
    pub(crate) dead_letter: Field<String>,
}

impl DraftQueue {
    /// Each key written, with where: for the rules that refuse them outside a queue.
    pub(crate) fn written(&self) -> Vec<(&'static str, &Span)> {
        [
            ("consumer", self.consumer.span()),
            ("consumer_path", self.consumer_path.span()),
            ("batch_size", self.batch_size.span()),
            ("max_wait", self.max_wait.span()),
            ("delivery_timeout", self.delivery_timeout.span()),
            ("max_retries", self.max_retries.span()),
            ("dead_letter", self.dead_letter.span()),
        ]
        .into_iter()
        .filter_map(|(key, span)| Some((key, span?)))
        .collect()
    }

    fn to_settings(&self) -> Option<QueueSettings> {
        let consumer = match self.consumer.value() {
            Some(app) => Some(PushConsumer {
                app: app.clone(),
                path: self.consumer_path.value()?.clone(),
                batch_size: self.batch_size.value().copied().unwrap_or(DEFAULT_BATCH_SIZE),
                max_wait: self.max_wait.value().copied().unwrap_or(DEFAULT_MAX_WAIT),
                delivery_timeout: self.delivery_timeout.value().copied().unwrap_or(DEFAULT_DELIVERY_TIMEOUT),
            }),
            None => None,
        };
        Some(QueueSettings {
            consumer,
            max_retries: self.max_retries.value().copied().unwrap_or(DEFAULT_MAX_RETRIES),
            dead_letter: self.dead_letter.value().cloned(),
        })
    }
}

#[derive(Debug, Default)]
pub(crate) struct DraftBinding {
    pub(crate) binding: Field<String>,
    pub(crate) service: Field<String>,
}

#[derive(Debug, Default)]
pub(crate) struct DraftRoute {
    pub(crate) path: Field<String>,
    pub(crate) auth: Field<RouteAuth>,
    /// What a token must grant; only with `auth = "capability"`.
    pub(crate) capability: Field<String>,
}

#[derive(Debug, Default)]
pub(crate) struct DraftDomain {
    pub(crate) name: Field<String>,
}

#[derive(Debug, Default)]
pub(crate) struct DraftConfig {
    pub(crate) required: Vec<String>,
}

fn items<T>(section: &Section<Vec<Located<T>>>) -> &[Located<T>] {
    section.value().map(Vec::as_slice).unwrap_or(&[])
}

impl Draft {
    pub(crate) fn resources(&self) -> &[Located<DraftResource>] {
        items(&self.resources)
    }

    pub(crate) fn bindings(&self) -> &[Located<DraftBinding>] {
        items(&self.bindings)
    }

    pub(crate) fn processes(&self) -> &[Located<DraftProcess>] {
        items(&self.processes)
    }

    pub(crate) fn routes(&self) -> &[Located<DraftRoute>] {
        items(&self.routes)
    }

    pub(crate) fn domains(&self) -> &[Located<DraftDomain>] {
        items(&self.domains)
    }

    pub(crate) fn kind(&self) -> Option<AppKind> {
        self.app.value().and_then(|app| app.kind.value()).copied()
    }

    /// The listed known capabilities, with where each was written.
    pub(crate) fn listed_capabilities(&self) -> &[Located<Capability>] {
        self.app.value().and_then(|app| app.capabilities.value()).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The typed manifest. Called only when no error was reported, which
    /// guarantees every required field is valid; `None` otherwise.
    pub(crate) fn into_manifest(self) -> Option<Manifest> {
        let app = self.app.value()?;
        let kind = *app.kind.value()?;
        let mut capabilities: Vec<Capability> =
            app.capabilities.value().map(|list| list.iter().map(|c| c.value).collect()).unwrap_or_default();
        capabilities.sort();
        capabilities.dedup();
        let build = self.build.value().map(DraftBuild::to_build).unwrap_or_default();
        let health = match self.health.value() {
            Some(health) => Some(Health {
                path: health.path.value()?.clone(),
                timeout: health.timeout.value().copied().unwrap_or(DEFAULT_HEALTH_TIMEOUT),
                interval: health.interval.value().copied().unwrap_or(DEFAULT_HEALTH_INTERVAL),
                min_healthy: health.min_healthy.value().copied().unwrap_or(DEFAULT_MIN_HEALTHY),
            }),
            None => None,
        };
        let static_root = (kind == AppKind::Static).then(|| {
            self.static_site
                .value()
                .and_then(|site| site.root.value())
                .cloned()
                .unwrap_or_else(|| DEFAULT_STATIC_ROOT.to_owned())
        });
        let static_serve_hidden = match (kind, self.static_site.value()) {
            (AppKind::Static, Some(site)) => site.serve_hidden.clone(),
            _ => Vec::new(),
        };
        let mut resources = Vec::new();
        for resource in self.resources() {
            let resource = &resource.value;
            let kind = *resource.kind.value()?;
            resources.push(Resource {
                kind,
                binding: resource.binding.value()?.clone(),
                schedule: resource.schedule.value().cloned(),
                command: resource.command.value().cloned(),
                timeout: (kind == ResourceKind::Cron)
                    .then(|| resource.timeout.value().copied().unwrap_or(DEFAULT_CRON_TIMEOUT)),
                queue: if kind == ResourceKind::Queue { Some(resource.queue.to_settings()?) } else { None },
                service: resource.service.value().cloned(),
            });
        }
        let mut bindings = Vec::new();
        for binding in self.bindings() {
            bindings.push(ServiceBinding {
                binding: binding.value.binding.value()?.clone(),
                service: binding.value.service.value()?.clone(),
            });
        }
        let mut processes = Vec::new();
        for process in self.processes() {
            processes.push(Process {
                name: process.value.name.value()?.clone(),
                command: process.value.command.value()?.clone(),
                instances: process.value.instances.unwrap_or(1),
            });
        }
        let mut routes = Vec::new();
        for route in self.routes() {
            routes.push(Route {
                path: route.value.path.value()?.clone(),
                auth: route.value.auth.value().copied().unwrap_or_default(),
                capability: route.value.capability.value().cloned(),
            });
        }
        let mut domains = Vec::new();
        for domain in self.domains() {
            domains.push(Domain { name: domain.value.name.value()?.clone() });
        }
        Some(Manifest {
            name: app.name.value()?.clone(),
            kind,
            capabilities,
            build,
            run_command: self.run.value().and_then(|run| run.command.value()).cloned(),
            release: self.release.value().and_then(|release| {
                Some(Release {
                    command: release.command.value()?.clone(),
                    timeout: release.timeout.value().copied().unwrap_or(DEFAULT_RELEASE_TIMEOUT),
                })
            }),
            processes,
            drain_timeout: self
                .run
                .value()
                .and_then(|run| run.drain_timeout.value().copied())
                .unwrap_or(DEFAULT_DRAIN_TIMEOUT),
            stop_grace: self.run.value().and_then(|run| run.stop_grace.value().copied()).unwrap_or(DEFAULT_STOP_GRACE),
            health,
            static_root,
            static_serve_hidden,
            resources,
            bindings,
            routes,
            required_config: self.config.value().map(|config| config.required.clone()).unwrap_or_default(),
            limits: self.limits.value().cloned().unwrap_or_default(),
            domains,
            expected: self.expected.value().cloned().unwrap_or_default(),
        })
    }
}

impl DraftBuild {
    fn to_build(&self) -> Build {
        Build {
            build: self.build.value().cloned(),
            typecheck: self.typecheck.value().cloned(),
            test: self.test.value().cloned(),
            output: self.output.clone(),
            cache: self.cache.clone(),
            secrets: self.secrets.clone(),
            exclude: self.exclude.clone(),
            include: self.include.clone(),
            timeout: self.timeout.value().copied().unwrap_or(DEFAULT_BUILD_TIMEOUT),
        }
    }
}
