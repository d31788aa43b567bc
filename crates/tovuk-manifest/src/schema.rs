//! The shape of `tovuk.toml`: every table, its keys, their types and an example line for each.
//!
//! Unknown-key and wrong-type diagnostics are generated from these lists, and
//! a test checks that `docs/manifest.md` mentions every key here.

#[cfg(test)]
mod tests;

/// The type a key expects, as told to the user in `wrong_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    String,
    StringArray,
    Integer,
    /// Integer or float.
    Number,
    /// `"30s"` style string or integer seconds.
    Duration,
    Table,
    TableArray,
}

impl ValueType {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            ValueType::String => "a string",
            ValueType::StringArray => "an array of strings",
            ValueType::Integer => "an integer",
            ValueType::Number => "a number",
            ValueType::Duration => "a duration such as \"30s\" (units ms, s, m, h) or an integer number of seconds",
            ValueType::Table => "a table",
            ValueType::TableArray => "an array of tables",
        }
    }
}

#[derive(Debug)]
pub(crate) struct KeySpec {
    pub(crate) name: &'static str,
    pub(crate) ty: ValueType,
    /// A correct line for this key, shown as the fix of a wrong type.
    pub(crate) example: &'static str,
}

#[derive(Debug)]
pub(crate) struct TableSpec {
    /// How messages name the table: `[app]`, `[[resources]]`, or `the top level`.
    pub(crate) header: &'static str,
    pub(crate) keys: &'static [KeySpec],
}

impl TableSpec {
    pub(crate) fn key(&self, name: &str) -> Option<&'static KeySpec> {
        self.keys.iter().find(|key| key.name == name)
    }

    pub(crate) fn key_names(&self) -> Vec<&'static str> {
        self.keys.iter().map(|key| key.name).collect()
    }

    /// The removed key `name` of this table, if it is one.
    pub(crate) fn removed(&self, name: &str) -> Option<&'static RemovedKey> {
        REMOVED.iter().find(|key| key.header == self.header && key.name == name)
    }
}

const fn key(name: &'static str, ty: ValueType, example: &'static str) -> KeySpec {
    KeySpec { name, ty, example }
}

use ValueType::{Duration, Integer, Number, String, StringArray, Table, TableArray};

pub(crate) const TOP: TableSpec = TableSpec {
    header: "the top level",
    keys: &[
        key("app", Table, "[app]"),
        key("build", Table, "[build]"),
        key("run", Table, "[run]"),
        key("release", Table, "[release]"),
        key("processes", TableArray, "[[processes]]"),
        key("health", Table, "[health]"),
        key("static", Table, "[static]"),
        key("resources", TableArray, "[[resources]]"),
        key("bindings", TableArray, "[[bindings]]"),
        key("routes", TableArray, "[[routes]]"),
        key("config", Table, "[config]"),
        key("limits", Table, "[limits]"),
        key("domains", TableArray, "[[domains]]"),
        key("expected", Table, "[expected]"),
    ],
};

pub(crate) const APP: TableSpec = TableSpec {
    header: "[app]",
    keys: &[
        key("name", String, r#"name = "my-api""#),
        key("kind", String, r#"kind = "web""#),
        key("capabilities", StringArray, r#"capabilities = ["http", "sqlite"]"#),
    ],
};

pub(crate) const BUILD: TableSpec = TableSpec {
    header: "[build]",
    keys: &[
        key("build", String, r#"build = "cargo build --release""#),
        key("typecheck", String, r#"typecheck = "cargo check""#),
        key("test", String, r#"test = "cargo test""#),
        key("output", StringArray, r#"output = ["target/release/my-api"]"#),
        key("cache", StringArray, r#"cache = ["target"]"#),
        key("secrets", StringArray, r#"secrets = ["NPM_TOKEN"]"#),
        key("exclude", StringArray, r#"exclude = ["fixtures/big"]"#),
        key("include", StringArray, r#"include = ["dist/"]"#),
        key("timeout", Duration, r#"timeout = "15m""#),
    ],
};

pub(crate) const RUN: TableSpec = TableSpec {
    header: "[run]",
    keys: &[
        key("command", String, r#"command = "./target/release/my-api""#),
        key("drain_timeout", Duration, r#"drain_timeout = "30s""#),
        key("stop_grace", Duration, r#"stop_grace = "10s""#),
    ],
};

pub(crate) const RELEASE: TableSpec = TableSpec {
    header: "[release]",
    keys: &[
        key("command", String, r#"command = "python manage.py migrate""#),
        key("timeout", Duration, r#"timeout = "10m""#),
    ],
};

pub(crate) const PROCESS: TableSpec = TableSpec {
    header: "[[processes]]",
    keys: &[
        key("name", String, r#"name = "worker""#),
        key("command", String, r#"command = "celery -A shop worker""#),
        key("instances", Integer, "instances = 1"),
    ],
};

pub(crate) const HEALTH: TableSpec = TableSpec {
    header: "[health]",
    keys: &[
        key("path", String, r#"path = "/health""#),
        key("timeout", Duration, r#"timeout = "60s""#),
        key("interval", Duration, r#"interval = "2s""#),
        key("min_healthy", Duration, r#"min_healthy = "5s""#),
    ],
};

pub(crate) const STATIC: TableSpec = TableSpec {
    header: "[static]",
    keys: &[
        key("root", String, r#"root = "public""#),
        key("serve_hidden", StringArray, r#"serve_hidden = [".well-known"]"#),
    ],
};

pub(crate) const RESOURCE: TableSpec = TableSpec {
    header: "[[resources]]",
    keys: &[
        key("kind", String, r#"kind = "sqlite""#),
        key("binding", String, r#"binding = "DB""#),
        key("schedule", String, r#"schedule = "*/5 * * * *""#),
        key("command", String, r#"command = "./target/release/cleanup""#),
        key("timeout", Duration, r#"timeout = "10m""#),
        key("consumer", String, r#"consumer = "mailer""#),
        key("consumer_path", String, r#"consumer_path = "/queues/emails""#),
        key("batch_size", Integer, "batch_size = 10"),
        key("max_wait", Duration, r#"max_wait = "1s""#),
        key("delivery_timeout", Duration, r#"delivery_timeout = "30s""#),
        key("max_retries", Integer, "max_retries = 3"),
        key("dead_letter", String, r#"dead_letter = "EMAILS_FAILED""#),
        key("service", String, r#"service = "rooms-api""#),
    ],
};

pub(crate) const BINDING: TableSpec = TableSpec {
    header: "[[bindings]]",
    keys: &[key("binding", String, r#"binding = "AUTH""#), key("service", String, r#"service = "auth-api""#)],
};

pub(crate) const ROUTE: TableSpec = TableSpec {
    header: "[[routes]]",
    keys: &[
        key("path", String, r#"path = "/api""#),
        key("auth", String, r#"auth = "none""#),
        key("capability", String, r#"capability = "admin""#),
    ],
};

pub(crate) const CONFIG: TableSpec =
    TableSpec { header: "[config]", keys: &[key("required", StringArray, r#"required = ["DATABASE_URL"]"#)] };

pub(crate) const LIMITS: TableSpec = TableSpec {
    header: "[limits]",
    keys: &[
        key("memory_mb", Integer, "memory_mb = 512"),
        key("cpu_cores", Number, "cpu_cores = 1.5"),
        key("instances", Integer, "instances = 2"),
        key("request_timeout", Duration, r#"request_timeout = "30s""#),
        key("data_mb", Integer, "data_mb = 2048"),
    ],
};

pub(crate) const DOMAIN: TableSpec =
    TableSpec { header: "[[domains]]", keys: &[key("name", String, r#"name = "api.example.com""#)] };

pub(crate) const EXPECTED: TableSpec = TableSpec {
    header: "[expected]",
    keys: &[
        key("requests_per_month", Number, "requests_per_month = 1000000"),
        key("egress_gb_per_month", Number, "egress_gb_per_month = 50"),
        key("storage_gb", Number, "storage_gb = 5"),
        key("cpu_hours_per_month", Number, "cpu_hours_per_month = 200"),
        key("kv_operations_per_month", Number, "kv_operations_per_month = 100000"),
        key("queue_messages_per_month", Number, "queue_messages_per_month = 100000"),
        key("cron_runs_per_month", Number, "cron_runs_per_month = 8640"),
        key("object_storage_operations_per_month", Number, "object_storage_operations_per_month = 100000"),
    ],
};

/// A key tovuk read once and removed. A manifest that still has it gets a
/// warning saying why and what to do instead of an unknown-key error, and stays
/// valid: the runner checks a live release's contract again when it restores
/// it, so an error would stop apps that deployed before the removal.
#[derive(Debug)]
pub(crate) struct RemovedKey {
    /// The table it was in, as its `TableSpec::header` names it.
    pub(crate) header: &'static str,
    pub(crate) name: &'static str,
    /// Why it was removed and what counts instead; ends the warning's message.
    pub(crate) why: &'static str,
}

pub(crate) const REMOVED: [RemovedKey; 1] = [RemovedKey {
    header: "[expected]",
    name: "sqlite_rows_per_month",
    why: "SQLite is billed as storage, not per row, because its database is a file in the app's volume that the \
          app opens with its own SQLite library, so the platform cannot count rows and never bills an estimate; \
          count the file in `storage_gb`",
}];

/// Every table below the top level, for "`command` belongs in [run]" hints.
pub(crate) const SECTIONS: [&TableSpec; 12] =
    [&APP, &BUILD, &RUN, &HEALTH, &STATIC, &RESOURCE, &BINDING, &ROUTE, &CONFIG, &LIMITS, &DOMAIN, &EXPECTED];
