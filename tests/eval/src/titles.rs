//! The evaluation's titles: `kind | title` lines, `#` comments and blank lines skipped.

use anyhow::Context;
use std::path::Path;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Title {
    pub kind: String,
    pub title: String,
}

pub fn load(path: &Path) -> anyhow::Result<Vec<Title>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("titles {}", path.display()))?;
    let mut titles = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kind, title) = line
            .split_once('|')
            .with_context(|| format!("{}:{}: expected `kind | title`", path.display(), i + 1))?;
        titles.push(Title {
            kind: kind.trim().to_string(),
            title: title.trim().to_string(),
        });
    }
    anyhow::ensure!(!titles.is_empty(), "{}: no titles", path.display());
    Ok(titles)
}
