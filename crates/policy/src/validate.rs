//! The findings of validating a policy set: Cedar's strict validator and writ's own rules.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issue {
    /// The policy it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Which file: `schema`, `policies` or `entities`.
    pub file: String,
    /// Line (1-based) in that file, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Column (1-based), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// What is wrong.
    pub message: String,
}

impl Issue {
    pub(crate) fn new(file: &str, message: impl Into<String>) -> Self {
        Issue {
            policy: None,
            file: file.to_owned(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub(crate) fn policy(mut self, id: impl Into<String>) -> Self {
        self.policy = Some(id.into());
        self
    }

    /// Places the issue at the first labelled span of a Cedar diagnostic, in `text`.
    pub(crate) fn at(mut self, diagnostic: &dyn miette::Diagnostic, text: &str) -> Self {
        if let Some((line, column)) = location(diagnostic, text) {
            self.line = Some(line);
            self.column = Some(column);
        }
        self
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(policy) = &self.policy {
            write!(f, ": policy `{policy}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What validation found. The set is usable only when [`ValidationReport::is_ok`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationReport {
    /// Findings that make the set unusable.
    pub errors: Vec<Issue>,
    /// Findings worth a look that do not.
    pub warnings: Vec<Issue>,
}

impl ValidationReport {
    /// No errors (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} error{}, {} warning{}",
            self.errors.len(),
            if self.errors.len() == 1 { "" } else { "s" },
            self.warnings.len(),
            if self.warnings.len() == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        for w in &self.warnings {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}

/// A Cedar diagnostic as one line: `LINE:COLUMN: message; related; help: …`.
pub(crate) fn describe(diagnostic: &dyn miette::Diagnostic, text: &str) -> String {
    let mut out = String::new();
    if let Some((line, column)) = location(diagnostic, text) {
        out.push_str(&format!("{line}:{column}: "));
    }
    out.push_str(&diagnostic.to_string());
    for related in diagnostic.related().into_iter().flatten() {
        let message = related.to_string();
        if !out.contains(&message) {
            out.push_str("; ");
            out.push_str(&message);
        }
    }
    if let Some(help) = diagnostic.help() {
        out.push_str(&format!("; help: {help}"));
    }
    out
}

/// The line and column of the first labelled span of `diagnostic` or of a related one.
fn location(diagnostic: &dyn miette::Diagnostic, text: &str) -> Option<(u32, u32)> {
    if let Some(label) = diagnostic.labels().and_then(|mut labels| labels.next()) {
        return Some(line_column(text, label.offset()));
    }
    diagnostic
        .related()
        .into_iter()
        .flatten()
        .find_map(|related| location(related, text))
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 8), (3, 1));
        assert_eq!(line_column(text, 6), (2, 3));
        assert_eq!(line_column(text, 100), (3, 2));
    }
}
