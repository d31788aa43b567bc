//! The fixed value sets the platform speaks: each a Rust enum whose names are used
//! unchanged in the store, on the wire, in the CLI and in the docs.
//!
//! Every enum has `ALL`, `as_str`, `parse` and `Display`, so the wire format (serde in
//! `tovuk-api-types`) and the docs' lists are derived from one definition.

use std::fmt;

/// A value set with stable text names.
pub trait TextEnum: Sized + Copy + 'static {
    /// What the set is called, for errors and docs ("failure reason").
    const WHAT: &'static str;
    /// Every value, in documentation order.
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    /// What the value means, from its documentation (empty when the name says it all).
    fn describe(self) -> &'static str {
        ""
    }
    fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|value| value.as_str() == text)
    }
}

macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[doc = $vdoc:literal])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[doc = $vdoc])* $variant, )+
        }

        impl TextEnum for $name {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[ $( $name::$variant, )+ ];
            fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
            fn describe(self) -> &'static str {
                match self {
                    $( $name::$variant => concat!($($vdoc),*).trim_ascii(), )+
                }
            }
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                TextEnum::as_str(self)
            }

            pub fn parse(text: &str) -> Option<Self> {
                <Self as TextEnum>::parse(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Why a deploy failed, in one stable word.
    FailureReason, "failure reason" {
        /// A build phase's command exited non-zero.
        PhaseFailed = "phase_failed",
        /// A build phase ran past `[build] timeout`.
        Timeout = "timeout",
        /// The platform stopped while the deploy was building or going live.
        PlatformRestarted = "platform_restarted",
        /// The builder could not make its workspace.
        WorkspaceUnavailable = "workspace_unavailable",
        /// The commit could not be checked out.
        SourceUnavailable = "source_unavailable",
        /// The commit's `tovuk.toml` does not pass the contract check.
        ContractInvalid = "contract_invalid",
        /// The config values could not be opened (the secrets master key changed).
        ConfigUnreadable = "config_unreadable",
        /// Required config or build secrets are not set; nothing was built.
        MissingConfig = "missing_config",
        /// A cap on build minutes or storage is reached; nothing was built.
        CapReached = "cap_reached",
        /// The contract asked for something the platform could not enforce when it was
        /// deployed (route auth, before the router enforced it); nothing was built. Kept for
        /// the deploys recorded with it.
        UnsupportedByPlatform = "unsupported_by_platform",
        /// A `[[bindings]]` entry (or a State resource's `service`) calls an app that does not
        /// exist or has nothing running; nothing was built.
        BindingUnavailable = "binding_unavailable",
        /// A route declares auth and the app's config does not say yet how the router
        /// verifies callers (`TOVUK_AUTH_MODE` and what it needs); nothing was built.
        AuthNotReady = "auth_not_ready",
        /// The sandbox could not run the build.
        SandboxUnavailable = "sandbox_unavailable",
        /// A detected contract's toolchain (python3, node and npm, cargo, go) is not on the
        /// build sandbox's PATH; nothing was built.
        ToolchainMissing = "toolchain_missing",
        /// The build output could not be packed or sealed.
        ArtifactFailed = "artifact_failed",
        /// The deploy had no artifact to release.
        ArtifactMissing = "artifact_missing",
        /// The artifact's signature or digest did not verify: it was never started.
        ArtifactSignatureInvalid = "artifact_signature_invalid",
        /// The app did not pass its health check.
        HealthCheckFailed = "health_check_failed",
        /// The release could not be prepared or started.
        ReleaseFailed = "release_failed",
        /// The release passed its health check, then crashed or failed it before it had
        /// stayed healthy for `[health] min_healthy`: traffic went back to the deploy before it.
        CrashedAfterHealthy = "crashed_after_healthy",
    }
}

text_enum! {
    /// How a build phase ran.
    PhaseStatus, "phase status" {
        Running = "running",
        Passed = "passed",
        /// The phase has no command.
        Skipped = "skipped",
        Failed = "failed",
        TimedOut = "timed_out",
        Cancelled = "cancelled",
        /// The platform stopped while it ran.
        Interrupted = "interrupted",
    }
}

text_enum! {
    /// How a builder says a build ended.
    BuildOutcome, "build outcome" {
        ArtifactReady = "artifact_ready",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

text_enum! {
    /// A deploy's `final_build.status`, once its build is over.
    FinalBuildStatus, "final build status" {
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

text_enum! {
    /// An app instance as the runner last reported it.
    InstanceStatus, "instance status" {
        Starting = "starting",
        Healthy = "healthy",
        /// Crashed after going live; restarting with backoff.
        Restarting = "restarting",
        /// Crashed too often: the route answers 503.
        Crashing = "crashing",
        /// Could not start (after a platform restart): the route answers 503 with the reason.
        Failed = "failed",
        Stopped = "stopped",
    }
}

text_enum! {
    /// Where a log line came from.
    LogStream, "log stream" {
        Stdout = "stdout",
        Stderr = "stderr",
        /// Written by the platform about the build or instance.
        Platform = "platform",
        /// The router's line for one request to the app.
        Access = "access",
    }
}

text_enum! {
    /// Where a deploy's source came from.
    SourceKind, "source kind" {
        /// A `git push`.
        Git = "git",
        /// A `tovuk deploy` upload, imported as a commit.
        Archive = "archive",
    }
}

text_enum! {
    /// What made a deploy.
    DeployKind, "deploy kind" {
        /// New source to build.
        Source = "source",
        /// A config release: the base deploy's artifact restarted with the current config.
        Config = "config",
        /// A rollback: an earlier deploy's artifact released again, with its config
        /// revision (or the current one), without building.
        Rollback = "rollback",
    }
}

text_enum! {
    /// The rights of an API token.
    TokenScopeName, "token scope" {
        /// Anything on the platform.
        Admin = "admin",
        /// One app only.
        Deploy = "deploy",
    }
}

text_enum! {
    /// One step of an accepted source.
    OperationKind, "operation kind" {
        Source = "source",
        Build = "build",
        Deploy = "deploy",
    }
}

text_enum! {
    /// Where an operation is: `accepted` for a source operation, then the state its deploy
    /// entered (`succeeded` for a build that sealed its artifact).
    OperationStatus, "operation status" {
        Accepted = "accepted",
        Queued = "queued",
        Building = "building",
        Typechecking = "typechecking",
        Testing = "testing",
        Succeeded = "succeeded",
        Deploying = "deploying",
        Running = "running",
        Failed = "failed",
        Cancelled = "cancelled",
        Superseded = "superseded",
    }
}

text_enum! {
    /// Whether a cap stops its meter's usage now.
    CapState, "cap state" {
        Ok = "ok",
        /// Usage reached the cap: it is stopped until the cap is raised or the period ends.
        Reached = "reached",
    }
}

text_enum! {
    /// Whether the app's current deploy uses a resource.
    ResourceStatus, "resource status" {
        /// Declared by the app's current deploy, and given to its instances.
        Active = "active",
        /// No longer declared: its data is kept (and still billed) until the app is deleted, but no instance gets it.
        Detached = "detached",
    }
}

text_enum! {
    /// How one tick of a cron resource ended, or why it did not run.
    CronRunStatus, "cron run status" {
        /// Started from the app's current release; its end is not reported yet.
        Running = "running",
        /// The command exited with code 0.
        Succeeded = "succeeded",
        /// The command exited non-zero (`exit_code`), could not start, or the platform stopped while it ran (`reason`).
        Failed = "failed",
        /// Still going at its `timeout`: stopped (SIGTERM, then SIGKILL).
        TimedOut = "timed_out",
        /// Not started: the binding's previous run was still going, or a cap on `cron_invocations` is reached (`reason`).
        Skipped = "skipped",
        /// Ticks that passed while the platform was down and were not run; one record stands for a whole range (`reason`).
        Missed = "missed",
    }
}

text_enum! {
    /// What started a cron run.
    CronTrigger, "cron run trigger" {
        /// Its schedule (or, after the platform was down, a tick caught up at start).
        Schedule = "schedule",
        /// `tovuk cron run`, at once.
        Manual = "manual",
    }
}

text_enum! {
    /// Whether a platform role runs in this process.
    RoleState, "role state" {
        Running = "running",
        Stopped = "stopped",
    }
}

impl TextEnum for crate::DeployState {
    const WHAT: &'static str = "deploy state";
    const ALL: &'static [Self] = &crate::DeployState::ALL;
    fn as_str(self) -> &'static str {
        crate::DeployState::as_str(self)
    }
    fn describe(self) -> &'static str {
        use crate::DeployState::*;
        match self {
            Queued => "Accepted; waiting for a builder.",
            Building => "The `build` phase runs in the sandbox.",
            Typechecking => "The `typecheck` phase runs.",
            Testing => "The `test` phase runs.",
            ArtifactReady => "The artifact is sealed and signed; waiting for a runner.",
            Deploying => "The runner starts it and waits for its health path.",
            Running => "Healthy and serving: the app's current deploy.",
            Failed => "It stopped on `failure.reason`; the current deploy keeps serving.",
            Cancelled => "Cancelled before it went live.",
            Superseded => "It served until a newer deploy went live.",
        }
    }
}
