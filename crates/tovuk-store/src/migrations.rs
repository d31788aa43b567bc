//! Versioned schema migrations, applied in order at start, each in its own transaction.
//!
//! Append only: a released migration never changes. `SCHEMA_VERSION` is the newest one
//! this binary knows; a store with a higher `user_version` is refused, never rewritten.

/// Marks a SQLite file as a tovuk store (`PRAGMA application_id`; ASCII "tovk").
pub(crate) const APPLICATION_ID: i64 = 0x746f_766b;

pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE apps (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    deploy_branch TEXT NOT NULL DEFAULT 'main',
    created_at    TEXT NOT NULL
) STRICT;

CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    scope         TEXT NOT NULL CHECK (scope IN ('admin', 'deploy')),
    app_id        TEXT REFERENCES apps(id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT,
    CHECK ((scope = 'admin') = (app_id IS NULL))
) STRICT;
CREATE INDEX tokens_app ON tokens(app_id);
"#,
    ),
    (
        2,
        r#"
-- Every accepted source makes three linked operations: source -> build -> deploy.
CREATE TABLE operations (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('source', 'build', 'deploy')),
    parent_id   TEXT REFERENCES operations(id),
    deploy_id   TEXT NOT NULL,
    status      TEXT NOT NULL,
    source_kind TEXT CHECK (source_kind IN ('git', 'archive')),
    ref         TEXT,
    sha         TEXT,
    old_sha     TEXT,
    forced      INTEGER NOT NULL DEFAULT 0,
    token_id    TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE INDEX operations_app ON operations(app_id, id);
CREATE INDEX operations_deploy ON operations(deploy_id);

CREATE TABLE deploys (
    id                 TEXT PRIMARY KEY,
    app_id             TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    state              TEXT NOT NULL,
    source_kind        TEXT NOT NULL CHECK (source_kind IN ('git', 'archive')),
    ref                TEXT NOT NULL,
    sha                TEXT NOT NULL,
    forced             INTEGER NOT NULL DEFAULT 0,
    token_id           TEXT,
    source_op_id       TEXT NOT NULL REFERENCES operations(id),
    build_op_id        TEXT NOT NULL REFERENCES operations(id),
    deploy_op_id       TEXT NOT NULL REFERENCES operations(id),
    build_job_id       TEXT NOT NULL UNIQUE,
    final_build_status TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
) STRICT;
CREATE INDEX deploys_app ON deploys(app_id, id);
CREATE INDEX deploys_state ON deploys(state, id);

-- The time of each state change, in order.
CREATE TABLE deploy_events (
    deploy_id TEXT NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    state     TEXT NOT NULL,
    at        TEXT NOT NULL,
    PRIMARY KEY (deploy_id, seq)
) STRICT;

-- Idempotency: one accepted source per (app, token, ref, sha).
CREATE TABLE accepted_sources (
    app_id       TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    token_id     TEXT NOT NULL,
    ref          TEXT NOT NULL,
    sha          TEXT NOT NULL,
    source_op_id TEXT NOT NULL REFERENCES operations(id),
    deploy_id    TEXT NOT NULL REFERENCES deploys(id),
    created_at   TEXT NOT NULL,
    PRIMARY KEY (app_id, token_id, ref, sha)
) STRICT;
"#,
    ),
    (
        3,
        r#"
-- The builder: who claimed a deploy, how it failed, what it produced.
ALTER TABLE deploys ADD COLUMN claimed_by TEXT;
ALTER TABLE deploys ADD COLUMN failure_reason TEXT;
ALTER TABLE deploys ADD COLUMN failure_phase TEXT;
ALTER TABLE deploys ADD COLUMN failure_exit_code INTEGER;
ALTER TABLE deploys ADD COLUMN failure_line TEXT;
ALTER TABLE deploys ADD COLUMN artifact_digest TEXT;
ALTER TABLE deploys ADD COLUMN artifact_size INTEGER;
ALTER TABLE deploys ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;

-- One row per build phase that ran (or passed straight through).
CREATE TABLE build_phases (
    deploy_id  TEXT NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
    phase      TEXT NOT NULL,
    status     TEXT NOT NULL,
    command    TEXT,
    exit_code  INTEGER,
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    PRIMARY KEY (deploy_id, phase)
) STRICT;

-- Every stored line of every phase, in order.
CREATE TABLE build_logs (
    deploy_id TEXT NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    at        TEXT NOT NULL,
    phase     TEXT NOT NULL,
    stream    TEXT NOT NULL,
    line      TEXT NOT NULL,
    PRIMARY KEY (deploy_id, seq)
) STRICT;
"#,
    ),
    (
        4,
        r#"
-- The runner: which deploy serves each app, and the instance behind it.
ALTER TABLE apps ADD COLUMN current_deploy_id TEXT;

CREATE TABLE instances (
    deploy_id      TEXT PRIMARY KEY REFERENCES deploys(id) ON DELETE CASCADE,
    app_id         TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    status         TEXT NOT NULL,
    pid            INTEGER,
    port           INTEGER,
    started_at     TEXT,
    restarts       INTEGER NOT NULL DEFAULT 0,
    last_exit_code INTEGER,
    last_exit_at   TEXT,
    updated_at     TEXT NOT NULL
) STRICT;
"#,
    ),
    (
        5,
        r#"
-- What app instances print, newest kept, per app.
CREATE TABLE app_logs (
    app_id    TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    at        TEXT NOT NULL,
    deploy_id TEXT NOT NULL,
    instance  TEXT NOT NULL,
    stream    TEXT NOT NULL,
    line      TEXT NOT NULL,
    PRIMARY KEY (app_id, seq)
) STRICT;
"#,
    ),
    (
        6,
        r#"
-- Secrets and config. Every change is one numbered revision of an app's config; a value
-- lives from the revision that set it until the one that replaced or unset it, so a
-- release pinned to a revision restarts with exactly the values it started with.
-- Values are sealed (XChaCha20-Poly1305) before they reach this file.
ALTER TABLE apps ADD COLUMN config_rev INTEGER NOT NULL DEFAULT 0;

CREATE TABLE config_changes (
    app_id            TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    rev               INTEGER NOT NULL,
    at                TEXT NOT NULL,
    token_id          TEXT,
    set_names         TEXT NOT NULL,
    unset_names       TEXT NOT NULL,
    release_deploy_id TEXT,
    PRIMARY KEY (app_id, rev)
) STRICT;

CREATE TABLE secret_values (
    app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    set_rev    INTEGER NOT NULL,
    unset_rev  INTEGER,
    key_id     TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    token_id   TEXT,
    PRIMARY KEY (app_id, name, version)
) STRICT;
CREATE INDEX secret_values_live ON secret_values(app_id, unset_rev);

-- A config release restarts the current artifact with new config: no source, no build.
ALTER TABLE deploys ADD COLUMN kind TEXT NOT NULL DEFAULT 'source';
ALTER TABLE deploys ADD COLUMN base_deploy_id TEXT;
-- The config revision a release started with (set when the runner claims it).
ALTER TABLE deploys ADD COLUMN config_rev INTEGER;
-- What the deploy's tovuk.toml needs set (`NAME:config` / `NAME:build`, comma-separated),
-- and, for a deploy blocked on them, the ones that were missing.
ALTER TABLE deploys ADD COLUMN config_needs TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN failure_missing TEXT NOT NULL DEFAULT '';
"#,
    ),
    (
        7,
        r#"
-- Metering: measured usage per app, per meter, per UTC hour (`YYYY-MM-DDTHH`).
CREATE TABLE usage (
    app_id   TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    hour     TEXT NOT NULL,
    meter    TEXT NOT NULL,
    quantity REAL NOT NULL,
    PRIMARY KEY (app_id, hour, meter)
) STRICT;

-- Hard caps per app and meter, per billing period.
CREATE TABLE caps (
    app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    meter      TEXT NOT NULL,
    cap        REAL NOT NULL,
    token_id   TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (app_id, meter)
) STRICT;

-- Every time a cap stopped usage.
CREATE TABLE usage_events (
    id      INTEGER PRIMARY KEY,
    app_id  TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    at      TEXT NOT NULL,
    meter   TEXT NOT NULL,
    cap     REAL NOT NULL,
    used    REAL NOT NULL,
    stopped TEXT NOT NULL
) STRICT;
CREATE INDEX usage_events_app ON usage_events(app_id, id);

-- What a deploy was planned to enable, bill and limit (JSON, as the dry-run shows it).
ALTER TABLE deploys ADD COLUMN plan TEXT;
"#,
    ),
    (
        8,
        r#"
-- Desired routing, owned by the control plane: which deploy serves each app's host.
-- Changed in the same transaction as the deploy going live.
CREATE TABLE routes (
    app_id     TEXT PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
    deploy_id  TEXT NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
    updated_at TEXT NOT NULL
) STRICT;
INSERT INTO routes (app_id, deploy_id, updated_at)
    SELECT a.id, a.current_deploy_id, d.updated_at
    FROM apps a JOIN deploys d ON d.id = a.current_deploy_id
    WHERE d.state = 'running';

-- Where the router reaches an instance, as the runner reports it.
ALTER TABLE instances ADD COLUMN upstream TEXT;
ALTER TABLE instances ADD COLUMN static_root TEXT;
ALTER TABLE instances ADD COLUMN reason TEXT;
"#,
    ),
    (
        9,
        r#"
-- One row the control plane rewrites every few seconds: a write that shows the store
-- takes writes (a full disk fails it), for /v1/status.
CREATE TABLE store_probe (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    at    TEXT NOT NULL
) STRICT;
"#,
    ),
    (
        10,
        r#"
-- A deploy recorded while its push's ref update is still pending: builders leave it
-- alone until the push lands (then this is cleared) or fails (then it is withdrawn).
ALTER TABLE deploys ADD COLUMN held_by_push TEXT;
"#,
    ),
    (
        11,
        r#"
-- Cap budget the router may spend, stored before it spends it. After a crash, what was
-- granted but never counted becomes `unaccounted`: it counts against the cap, never the bill.
CREATE TABLE meter_grants (
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    period      TEXT NOT NULL,
    meter       TEXT NOT NULL,
    granted     INTEGER NOT NULL,
    unaccounted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, period, meter)
) STRICT;
"#,
    ),
    (
        12,
        r#"
-- `claimed_by` now means a builder still holds the deploy's build: the app's next build
-- waits for it. Builds that ended before this version never cleared it.
UPDATE deploys SET claimed_by = NULL;
"#,
    ),
    (
        13,
        r#"
-- An instance runs in a network namespace of its own: the router connects inside it.
ALTER TABLE instances ADD COLUMN netns TEXT;
"#,
    ),
    (
        14,
        r#"
-- A deploy runs `[limits] instances` instances, each reported under its slot (0, 1, ...).
CREATE TABLE instances_by_slot (
    deploy_id      TEXT NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
    slot           INTEGER NOT NULL DEFAULT 0,
    app_id         TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    status         TEXT NOT NULL,
    pid            INTEGER,
    port           INTEGER,
    started_at     TEXT,
    restarts       INTEGER NOT NULL DEFAULT 0,
    last_exit_code INTEGER,
    last_exit_at   TEXT,
    updated_at     TEXT NOT NULL,
    upstream       TEXT,
    static_root    TEXT,
    reason         TEXT,
    netns          TEXT,
    PRIMARY KEY (deploy_id, slot)
) STRICT;
INSERT INTO instances_by_slot (deploy_id, slot, app_id, status, pid, port, started_at, restarts, last_exit_code,
                               last_exit_at, updated_at, upstream, static_root, reason, netns)
    SELECT deploy_id, 0, app_id, status, pid, port, started_at, restarts, last_exit_code,
           last_exit_at, updated_at, upstream, static_root, reason, netns FROM instances;
DROP TABLE instances;
ALTER TABLE instances_by_slot RENAME TO instances;
"#,
    ),
    (
        15,
        r#"
-- The [[resources]] a deploy's commit declares ("kind:BINDING,...").
ALTER TABLE deploys ADD COLUMN resources TEXT NOT NULL DEFAULT '';
-- An app's resources: one per (kind, binding), created when the first deploy declaring it is
-- released, `detached` (its data kept) while the current deploy does not declare it.
CREATE TABLE resources (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    binding     TEXT NOT NULL,
    backend     TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    detached_at TEXT,
    -- The credential the app's instances use, sealed like a config value (name = the id).
    key_id      TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    UNIQUE (app_id, kind, binding)
) STRICT;
-- What each resource's meters counted, per UTC hour (also in `usage`, per app).
CREATE TABLE resource_usage (
    resource_id TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    hour        TEXT NOT NULL,
    meter       TEXT NOT NULL,
    quantity    REAL NOT NULL,
    PRIMARY KEY (resource_id, hour, meter)
) STRICT;
"#,
    ),
    (
        16,
        r#"
-- Attached to the app itself (`tovuk addon create`), not by a tovuk.toml: every release of
-- the app gets it, whatever its manifest declares, until `tovuk addon detach`.
ALTER TABLE resources ADD COLUMN addon INTEGER NOT NULL DEFAULT 0;
"#,
    ),
    (
        17,
        r#"
-- The [[processes]] entry an instance runs (a Procfile's `worker:`); NULL: the web process.
ALTER TABLE instances ADD COLUMN process TEXT;
"#,
    ),
    (
        18,
        r#"
-- Every tick of a cron resource: run (`running` until its end is reported), skipped or
-- missed, with why. One `missed` row stands for a whole range of ticks (`reason` says which).
CREATE TABLE cron_runs (
    id           TEXT PRIMARY KEY,
    app_id       TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    resource_id  TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    binding      TEXT NOT NULL,
    -- The release it ran from; NULL when it did not run.
    deploy_id    TEXT,
    trigger      TEXT NOT NULL,
    scheduled_at TEXT NOT NULL,
    started_at   TEXT,
    ended_at     TEXT,
    exit_code    INTEGER,
    status       TEXT NOT NULL,
    reason       TEXT
) STRICT;
CREATE INDEX cron_runs_resource ON cron_runs(resource_id, id);
CREATE INDEX cron_runs_app ON cron_runs(app_id, id);
CREATE INDEX cron_runs_running ON cron_runs(status) WHERE status = 'running';
-- A tick is taken once, whoever schedules it.
CREATE UNIQUE INDEX cron_runs_tick ON cron_runs(resource_id, scheduled_at) WHERE trigger <> 'manual';
"#,
    ),
    (
        19,
        r#"
-- A deploy's readiness blockers other than unset config (auth readiness), as the API shows
-- them (a JSON array); empty for none.
ALTER TABLE deploys ADD COLUMN failure_blockers TEXT NOT NULL DEFAULT '';
"#,
    ),
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;
