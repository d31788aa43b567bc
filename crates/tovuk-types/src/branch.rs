//! Branch names a deploy branch may have: a safe subset of git's ref-name rules.

/// Checks a branch name (without `refs/heads/`). Says what is wrong when it is refused.
pub fn validate_branch_name(name: &str) -> Result<(), String> {
    const RULE: &str = "a branch name is 1-200 characters of letters, digits, `.`, `_`, `-` and `/`, \
                        without `..`, `//`, a leading `-` or `/`, or a trailing `/`, `.` or `.lock`";
    let bad = name.is_empty()
        || name.len() > 200
        || !name.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"._-/".contains(&byte))
        || name.starts_with(['-', '/', '.'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("/.")
        || name == "HEAD";
    if bad { Err(format!("`{}` cannot be a deploy branch: {RULE}", name.escape_debug())) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::validate_branch_name;

    #[test]
    fn accepts_ordinary_branches_and_refuses_the_rest() {
        for good in ["main", "release/2026-11", "feature_x", "v1.2"] {
            assert!(validate_branch_name(good).is_ok(), "{good}");
        }
        for bad in
            ["", "-x", "/x", "x/", "a..b", "a//b", "x.lock", "a b", "a~1", "a^", "a:b", "HEAD", ".hidden", "a/.b"]
        {
            assert!(validate_branch_name(bad).is_err(), "{bad}");
        }
    }
}
