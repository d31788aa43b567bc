//! Reading the parsed TOML document into a `Draft`, table by table, reporting shape errors as it goes.

mod app;
mod build;
mod process;
mod reader;
mod resources;
mod routing;
mod settings;

use toml::de::DeTable;

use crate::draft::{Draft, Field, Located};
use crate::report::CheckReport;
use crate::schema::TOP;
use crate::source::Source;

pub(crate) use reader::Reader;

/// Reads every known table of `root`. Each section reader checks its own
/// keys and value formats; rules that span tables run later on the draft.
pub(crate) fn read_document(source: &Source<'_>, root: &DeTable<'_>, report: &mut CheckReport) -> Draft {
    let mut reader = Reader { source, report };
    reader.check_keys(root, &TOP);
    Draft {
        app: section(&mut reader, root, "app", app::read_app),
        build: section(&mut reader, root, "build", build::read_build),
        run: section(&mut reader, root, "run", process::read_run),
        release: section(&mut reader, root, "release", process::read_release),
        processes: entries(&mut reader, root, "processes", process::read_process),
        health: section(&mut reader, root, "health", process::read_health),
        static_site: section(&mut reader, root, "static", process::read_static),
        resources: entries(&mut reader, root, "resources", resources::read_resource),
        bindings: entries(&mut reader, root, "bindings", resources::read_binding),
        routes: entries(&mut reader, root, "routes", routing::read_route),
        config: section(&mut reader, root, "config", settings::read_config),
        limits: section(&mut reader, root, "limits", settings::read_limits),
        domains: entries(&mut reader, root, "domains", routing::read_domain),
        expected: section(&mut reader, root, "expected", settings::read_expected),
    }
}

/// A `[table]`: read with `read_one` when present and a table.
fn section<T>(
    reader: &mut Reader<'_, '_>,
    root: &DeTable<'_>,
    key: &str,
    read_one: fn(&mut Reader<'_, '_>, &DeTable<'_>) -> T,
) -> Field<T> {
    match reader.table(root, &TOP, key) {
        Field::Absent => Field::Absent,
        Field::Invalid => Field::Invalid,
        Field::Valid(Located { value, span }) => Field::Valid(Located { value: read_one(reader, value), span }),
    }
}

/// A `[[table]]` list: each entry read with `read_one`, keeping its header span.
fn entries<T>(
    reader: &mut Reader<'_, '_>,
    root: &DeTable<'_>,
    key: &str,
    read_one: fn(&mut Reader<'_, '_>, &DeTable<'_>) -> T,
) -> Field<Vec<Located<T>>> {
    match reader.table_array(root, &TOP, key) {
        Field::Absent => Field::Absent,
        Field::Invalid => Field::Invalid,
        Field::Valid(Located { value, span }) => {
            let items = value
                .into_iter()
                .map(|item| Located { value: read_one(reader, item.value), span: item.span })
                .collect();
            Field::Valid(Located { value: items, span })
        }
    }
}
