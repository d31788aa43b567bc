//! The fixture expectation notation: parsing `# expect:` lines and matching them against a report.
//!
//! One finding is `<error|warning> <code> [<line>:<column> | -]`; a missing
//! position matches any position, `-` matches a whole-file finding. `ok`
//! alone means no errors and no warnings.

use tovuk_manifest::{CheckReport, Code};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Any,
    WholeFile,
    At(u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: String,
    pub code: String,
    pub position: Position,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.severity, self.code)?;
        match self.position {
            Position::Any => Ok(()),
            Position::WholeFile => write!(f, " -"),
            Position::At(line, column) => write!(f, " {line}:{column}"),
        }
    }
}

/// Parses the comma-separated findings of one `# expect:` line; `ok` gives none.
pub fn parse_findings(text: &str) -> Result<Vec<Finding>, String> {
    let text = text.trim();
    if text == "ok" {
        return Ok(Vec::new());
    }
    text.split(',').map(parse_finding).collect()
}

fn parse_finding(text: &str) -> Result<Finding, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (severity, code, position) = match words.as_slice() {
        [severity, code] => (*severity, *code, Position::Any),
        [severity, code, "-"] => (*severity, *code, Position::WholeFile),
        [severity, code, position] => {
            let (line, column) = position
                .split_once(':')
                .and_then(|(line, column)| Some((line.parse().ok()?, column.parse().ok()?)))
                .ok_or_else(|| format!("bad position `{position}` in `{text}`: use line:column or -"))?;
            (*severity, *code, Position::At(line, column))
        }
        _ => return Err(format!("bad finding `{text}`: use `<error|warning> <code> [line:column|-]`")),
    };
    if !matches!(severity, "error" | "warning") {
        return Err(format!("bad severity `{severity}` in `{text}`"));
    }
    if Code::from_name(code).is_none() {
        return Err(format!("unknown code `{code}` in `{text}`"));
    }
    Ok(Finding { severity: severity.to_owned(), code: code.to_owned(), position })
}

/// Every error and warning of `report`, with exact positions.
pub fn actual_findings(report: &CheckReport) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (severity, list) in [("error", report.errors()), ("warning", report.warnings())] {
        for diagnostic in list {
            findings.push(Finding {
                severity: severity.to_owned(),
                code: diagnostic.code.as_str().to_owned(),
                position: match (diagnostic.line, diagnostic.column) {
                    (Some(line), Some(column)) => Position::At(line, column),
                    _ => Position::WholeFile,
                },
            });
        }
    }
    findings
}

/// Expected and actual must pair up one to one; returns what did not.
pub fn compare(expected: &[Finding], actual: &[Finding]) -> Result<(), String> {
    let mut unmatched_actual: Vec<&Finding> = actual.iter().collect();
    let mut missing = Vec::new();
    for want in expected {
        let found = unmatched_actual.iter().position(|got| {
            got.severity == want.severity
                && got.code == want.code
                && (want.position == Position::Any || want.position == got.position)
        });
        match found {
            Some(idx) => {
                unmatched_actual.remove(idx);
            }
            None => missing.push(want.to_string()),
        }
    }
    if missing.is_empty() && unmatched_actual.is_empty() {
        return Ok(());
    }
    let unexpected: Vec<String> = unmatched_actual.iter().map(|got| got.to_string()).collect();
    Err(format!(
        "expected but not reported: [{}]; reported but not expected: [{}]",
        missing.join(", "),
        unexpected.join(", ")
    ))
}
