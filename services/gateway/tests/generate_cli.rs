//! `storyreel generate` as a person runs it: the whole pipeline in one process on the
//! default models (`make models`), each backend to an MP4 that ffprobe accepts; bad
//! arguments; Ctrl-C.

mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn storyreel() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_storyreel"));
    command.env("STORYREEL_CONFIG_DIR", common::config_dir());
    command
}

fn report(out: &Path) -> serde_json::Value {
    let path = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a report");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn files(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn story_of(report: &serde_json::Value) -> Vec<String> {
    report["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_reference_backend_writes_a_story_and_makes_a_complete_mp4() {
    let out = tempfile::tempdir().unwrap();
    let run = storyreel()
        .args([
            "generate",
            "A fishing village at dawn",
            "--scenes",
            "2",
            "--resolution",
            "256",
        ])
        .args([
            "--aspect",
            "16:9",
            "--backend",
            "reference",
            "--seed",
            "11",
            "--job-id",
            "village",
        ])
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("village.mp4") && stdout.contains("village.srt") && stdout.contains("village.json"),
        "{stdout}"
    );
    assert!(stderr.contains("backend: reference (asked for"), "{stderr}");
    assert_eq!(files(out.path()), ["village.json", "village.mp4", "village.srt"]);
    let report = report(out.path());
    assert_eq!(report["backend"], "reference");
    let story = story_of(&report);
    assert_eq!(story.len(), 2);
    common::assert_complete_video(&out.path().join("village.mp4"), 256, 144, &story);
    // the report names each stage's model and every call's seed
    for stage in [
        "story",
        "prompt",
        "keywords",
        "retrieval",
        "reference_frames",
        "interpolation",
        "upsample",
        "narration",
    ] {
        assert!(
            report["models"][stage]["version"].is_string(),
            "no model for {stage}"
        );
    }
    let keyframe_calls = report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["step"] == "keyframe")
        .count();
    assert_eq!(keyframe_calls, 0, "the reference backend runs no diffusion");
    for scene in report["scenes"].as_array().unwrap() {
        assert!(
            scene["references"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["chosen"] == true),
            "{scene}"
        );
    }
}

#[test]
fn the_diffusion_backend_on_a_supplied_story_makes_a_complete_mp4() {
    let out = tempfile::tempdir().unwrap();
    let story = out.path().join("story.txt");
    std::fs::write(&story, "The lighthouse keeper climbs the stairs at dusk.\n").unwrap();
    let prompts = out.path().join("prompts.txt");
    std::fs::write(
        &prompts,
        "a lighthouse on a cliff at dusk, warm light, oil painting\n",
    )
    .unwrap();
    let run = storyreel()
        .args([
            "generate",
            "The lighthouse",
            "--resolution",
            "256",
            "--aspect",
            "1:1",
            "--backend",
            "diffusion",
        ])
        .args([
            "--seed",
            "4",
            "--key-frames",
            "4",
            "--steps",
            "2",
            "--job-id",
            "lighthouse",
            "--story",
        ])
        .arg(&story)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let report = report(out.path());
    assert_eq!(report["backend"], "diffusion");
    assert_eq!(
        story_of(&report),
        ["The lighthouse keeper climbs the stairs at dusk."]
    );
    let steps: Vec<&str> = report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    assert!(
        !steps.contains(&"story"),
        "a supplied story skips the story stage: {steps:?}"
    );
    for step in [
        "keywords",
        "keyframe",
        "interpolation",
        "decode",
        "upsample",
        "narration",
    ] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }
    common::assert_complete_video(
        &out.path().join("lighthouse.mp4"),
        256,
        256,
        &["The lighthouse keeper climbs the stairs at dusk.".to_string()],
    );
}

#[test]
fn bad_arguments_are_named_and_exit_with_2() {
    let out = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["generate", "t", "--scenes", "9"],
            "`scenes` must be between 1 and 8, got 9",
        ),
        (&["generate", "t", "--aspect", "4:3"], "--aspect"),
        (
            &["generate", "t", "--resolution", "4096", "--upscale", "1"],
            "resolution",
        ),
        (&["generate", "   "], "`title` must be 1-500 characters, got 0"),
        (
            &["generate", "t", "--backend", "fast"],
            "auto, diffusion, reference",
        ),
    ];
    for (args, expected) in cases {
        let run = storyreel()
            .args(args)
            .arg("--out")
            .arg(out.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: `{stderr}` lacks `{expected}`"
        );
    }
    assert!(
        files(out.path()).is_empty(),
        "nothing is written for a refused job"
    );
}

#[test]
fn ctrl_c_stops_the_job_and_leaves_no_file_that_claims_to_be_complete() {
    let out = tempfile::tempdir().unwrap();
    let mut child = storyreel()
        .args([
            "generate",
            "A storm over the harbour",
            "--scenes",
            "2",
            "--resolution",
            "256",
            "--seed",
            "2",
        ])
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait for the first finished stage, then interrupt
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a stage finishes within 2 minutes");
        if line.starts_with("storyreel: story") || line.starts_with("storyreel: narration") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let interrupted = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            interrupted.elapsed() < Duration::from_secs(20),
            "storyreel did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130));
    let said: Vec<String> = rx.try_iter().collect();
    assert!(said.iter().any(|l| l.contains("interrupted")), "{said:?}");
    assert!(
        files(out.path()).is_empty(),
        "left behind: {:?}",
        files(out.path())
    );
}
