//! The report folder of a run: `index.html` (`html.rs`), `summary.md` (`render.rs`) and
//! `run.json` (`results.rs`).

use std::path::Path;

use anyhow::Context;

use crate::results::RunData;

/// Writes `index.html`, `summary.md` and `run.json` into `dir`.
pub fn write(r: &RunData, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string(r).context("encoding run.json")?;
    std::fs::write(dir.join("run.json"), json)
        .with_context(|| format!("writing {}", dir.display()))?;
    std::fs::write(dir.join("summary.md"), crate::render::markdown(r))?;
    std::fs::write(dir.join("index.html"), crate::html::page(r))?;
    Ok(())
}
