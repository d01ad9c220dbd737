//! The web UI in a real browser: Debian's chromium driven by Playwright
//! (`tests/browser/ui.test.mjs`, npm playwright-core) against a gateway of a real mesh on
//! the default models. The script fills a title, generates and edits the texts, makes a
//! 1-scene 256 px video, watches its progress, plays it, downloads the MP4, checks that a
//! too-long title is explained next to its field, and runs axe-core at desktop and phone
//! width. It saves a screenshot of each step in `target/ui-screenshots/`.

mod common;

use std::{path::PathBuf, time::Duration};
use storyreel_gateway::mesh::{Mesh, MeshOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_in_a_browser() {
    let browser = PathBuf::from(
        std::env::var("STORYREEL_BROWSER")
            .expect("STORYREEL_BROWSER: the npm packages of the browser test (make test sets it)"),
    );
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "{} has no playwright-core: run scripts/setup-browser.sh (make test does)",
        browser.display()
    );
    let run = tempfile::tempdir().unwrap();
    let mut options = MeshOptions::near_current_exe(run.path().join("mesh")).unwrap();
    options.config_dir = common::config_dir().into();
    let mesh = Mesh::start(options)
        .await
        .unwrap_or_else(|e| panic!("the mesh starts: {e:#}"));
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let screenshots = manifest.join("../../target/ui-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let script = manifest.join("tests/browser/ui.test.mjs");
    let run_script = tokio::process::Command::new("node")
        .arg(&script)
        .env("STORYREEL_UI_URL", &mesh.web[0])
        .env("STORYREEL_API_KEY", &mesh.api_key)
        .env("STORYREEL_NODE_MODULES", &browser)
        .env("SCREENSHOT_DIR", &screenshots)
        .env("STORYREEL_UI_TIMEOUT_S", "840")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(900), run_script)
        .await
        .expect("the browser test ends within 15 minutes")
        .expect("node runs (Debian's nodejs)");
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{printed}");
    mesh.stop();
    assert!(output.status.success(), "the browser test failed:\n{printed}");
}
