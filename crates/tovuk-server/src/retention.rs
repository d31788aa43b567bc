//! The server config's `[retention]`: how many of each app's deploys that served are kept as
//! rollback targets (their artifacts and the config values they ran with).

use anyhow::Context;
use std::path::Path;

/// `[retention] releases` of the server config at `file` (the default without a file or
/// the key), checked whole.
pub(crate) fn read(file: Option<&Path>) -> anyhow::Result<usize> {
    let default = tovuk_control::DEFAULT_RELEASES_KEPT;
    let Some(file) = file else { return Ok(default) };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read the server config `{}`", file.display()))?;
    let config: toml::Table =
        text.parse().with_context(|| format!("the server config `{}` is not valid TOML", file.display()))?;
    parse(&config)
}

fn parse(config: &toml::Table) -> anyhow::Result<usize> {
    let default = tovuk_control::DEFAULT_RELEASES_KEPT;
    let Some(retention) = config.get("retention") else { return Ok(default) };
    let refuse = |why: String| anyhow::anyhow!("the server config is refused: [retention] {why}; nothing was started");
    let example = format!("e.g. releases = {default}");
    let Some(retention) = retention.as_table() else { return Err(refuse(format!("must be a table ({example})"))) };
    if let Some(key) = retention.keys().find(|key| *key != "releases") {
        return Err(refuse(format!("has an unknown key `{key}`: it knows `releases`, {example}")));
    }
    let Some(releases) = retention.get("releases") else { return Ok(default) };
    match releases.as_integer().map(usize::try_from) {
        Some(Ok(releases)) if releases >= 1 => Ok(releases),
        _ => Err(refuse(format!(
            "releases must be a whole number of 1 or more (the deploys that served kept per app to roll back to), \
             found `{releases}`; {example}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn read(text: &str) -> Result<usize, String> {
        parse(&text.parse().expect("TOML")).map_err(|error| error.to_string())
    }

    #[test]
    fn releases_default_to_ten_and_take_a_whole_number_of_one_or_more() {
        assert_eq!(read(""), Ok(10));
        assert_eq!(read("[retention]\n"), Ok(10));
        assert_eq!(read("[retention]\nreleases = 2\n"), Ok(2));
        assert_eq!(read("[retention]\nreleases = 1\n"), Ok(1));
        for bad in ["releases = 0", "releases = -3", "releases = \"5\"", "releases = 2.5"] {
            let refused = read(&format!("[retention]\n{bad}\n")).expect_err(bad);
            assert!(refused.contains("[retention] releases must be a whole number of 1 or more"), "{refused}");
            assert!(refused.contains("releases = 10"), "names the fix: {refused}");
        }
        let refused = read("[retention]\nartifacts = 3\n").expect_err("unknown key");
        assert!(refused.contains("unknown key `artifacts`"), "{refused}");
        let refused = read("retention = 3\n").expect_err("not a table");
        assert!(refused.contains("must be a table"), "{refused}");
    }
}
