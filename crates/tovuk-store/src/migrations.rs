//! Versioned schema migrations, applied in order at start, each in its own transaction.
//!
//! Append only: a released migration never changes. `SCHEMA_VERSION` is the newest one
//! this binary knows; a store with a higher `user_version` is refused, never rewritten.

/// Marks a SQLite file as a tovuk store (`PRAGMA application_id`; ASCII "tovk").
pub(crate) const APPLICATION_ID: i64 = 0x746f_766b;

pub(crate) const MIGRATIONS: &[(i64, &str)] = &[(
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
)];

pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;
