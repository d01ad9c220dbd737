//! The REST mirror of the gateway API over a real mesh (its own redis-server, the
//! Temporal dev server, every stage service on the default models, one gateway):
//!
//! - the OpenAPI document lists exactly the served routes, and every route answers;
//! - API keys by header and by session cookie; errors as JSON naming the field, with the
//!   statuses of the one error table (400, 401, 404, 409, 416, 429);
//! - options, references (thumbnails are PNGs), texts streamed as server-sent events;
//! - a job to the end over server-sent events, resumed by `Last-Event-ID`; its artifacts
//!   whole, by range, as a download, and its subtitles as WebVTT; idempotency; lists by
//!   state and label; cancel;
//! - schemathesis (PyPI) against the running server and its /openapi.json, with a key
//!   whose quota is 0, so that no generated request starts a model.

mod common;

use futures::StreamExt;
use reqwest::{Client, Method, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};
use storyreel_gateway::{
    api::auth::key_digest,
    mesh::{Mesh, MeshOptions},
    rest::{ROUTES, openapi},
};

const OTHER_KEY: &str = "other-key-of-the-rest-test";
const CONTRACT_KEY: &str = "contract-key-of-the-rest-test";

/// One server-sent event.
#[derive(Debug, Clone, Default)]
struct Sse {
    id: Option<String>,
    event: String,
    data: Value,
}

/// The events of a response, until it ends or `limit` passes.
async fn read_events(response: reqwest::Response, limit: Duration) -> Vec<Sse> {
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let mut bytes = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = Instant::now() + limit;
    while let Some(chunk) = tokio::time::timeout_at(deadline.into(), bytes.next())
        .await
        .expect("the stream ends in time")
    {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = Sse::default();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    event.id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("event:") {
                    event.event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !data.is_empty() {
                event.data = serde_json::from_str(&data).unwrap();
                events.push(event);
            }
        }
    }
    events
}

fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "JOB_STATE_SUCCEEDED" | "JOB_STATE_FAILED" | "JOB_STATE_CANCELLED"
    )
}

fn final_state(events: &[Sse]) -> String {
    events
        .iter()
        .rev()
        .find_map(|e| {
            e.data["state_change"]["state"]
                .as_str()
                .or(e.data["snapshot"]["state"].as_str())
        })
        .unwrap_or_default()
        .to_string()
}

/// A job spec that runs in seconds: one scene at 256 px, its texts given, on the
/// diffusion backend (the tiny default keyframe model), so that it makes previews.
fn small(title: &str, seed: u64) -> Value {
    json!({
        "title": title, "n_scenes": 1, "resolution": "RESOLUTION_256", "upscale": 1, "backend": "diffusion",
        "key_frames": 2, "seed": seed.to_string(), "crossfade_s": 0.0,
        "story": ["A keeper climbs the lighthouse stairs at dusk to light the lamp."],
        "prompts": ["a lighthouse on a rocky coast at dusk, warm lamp light, calm sea"],
    })
}

async fn error_of(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], status.as_u16());
    body["error"].clone()
}

struct Api {
    http: Client,
    base: String,
    key: String,
}

impl Api {
    fn call(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path.trim_start_matches('/')))
            .bearer_auth(&self.key)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.call(Method::GET, path).send().await.unwrap()
    }

    /// The JSON of a GET that must succeed.
    async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.call(Method::POST, path).json(&body).send().await.unwrap()
    }

    async fn job(&self, job_id: &str) -> Value {
        self.get_json(&format!("/v1/jobs/{job_id}")).await
    }

    async fn create(&self, body: Value) -> reqwest::Response {
        self.post("/v1/jobs", body).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_over_a_mesh() {
    let run = tempfile::tempdir().unwrap();
    let mut options = MeshOptions::near_current_exe(run.path().join("mesh")).unwrap();
    options.config_dir = common::config_dir().into();
    options.max_concurrent_jobs = 4;
    options.extra_config = format!(
        "[[gateway.api_keys]]\nname = \"other\"\nsha256 = \"{}\"\nmax_concurrent_jobs = 1\n\n\
         [[gateway.api_keys]]\nname = \"contract\"\nsha256 = \"{}\"\nmax_concurrent_jobs = 0\n",
        key_digest(OTHER_KEY),
        key_digest(CONTRACT_KEY)
    );
    let mesh = Mesh::start(options)
        .await
        .unwrap_or_else(|e| panic!("the mesh starts: {e:#}"));
    let api = Api {
        http: Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap(),
        base: mesh.web[0].clone(),
        key: mesh.api_key.clone(),
    };
    let anonymous = Client::new();

    // The document is the routes, and every route answers (no key: 401 where one is needed).
    let served: Value = anonymous
        .get(format!("{}openapi.json", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, openapi::document());
    let documented: BTreeSet<(String, String)> = served["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.path.to_string(), r.method.as_str().to_ascii_lowercase()))
        .collect();
    assert_eq!(documented, routed);
    for route in ROUTES {
        let path = route
            .path
            .replace("{job_id}", "job-none")
            .replace("{name}", "video.mp4");
        let response = anonymous
            .request(
                route.method.clone(),
                format!("{}{}", api.base, path.trim_start_matches('/')),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = response.status();
        if route.auth {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {}",
                route.method,
                route.path
            );
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        } else {
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{} {}: {status}",
                route.method,
                route.path
            );
        }
    }
    let missing = anonymous
        .get(format!("{}v2/nothing", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(missing, StatusCode::NOT_FOUND).await["status"],
        "NOT_FOUND"
    );

    // The UI's page and assets, with a content security policy.
    let page = anonymous.get(&api.base).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert!(page.text().await.unwrap().contains("/ui/app.js"));

    // Keys: a wrong one, the header, the session cookie.
    let wrong = anonymous
        .get(format!("{}v1/options", api.base))
        .bearer_auth("not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(wrong, StatusCode::UNAUTHORIZED).await["status"],
        "UNAUTHENTICATED"
    );
    let refused = anonymous
        .post(format!("{}v1/session", api.base))
        .json(&json!({"api_key": "not-a-key"}))
        .send()
        .await
        .unwrap();
    error_of(refused, StatusCode::UNAUTHORIZED).await;
    let session = anonymous
        .post(format!("{}v1/session", api.base))
        .json(&json!({"api_key": api.key}))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::NO_CONTENT);
    let cookie = session.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let options: Value = anonymous
        .get(format!("{}v1/options", api.base))
        .header(header::COOKIE, &pair)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(options["backends"], json!(["auto", "diffusion", "reference"]));
    assert_eq!(options["max_title_chars"], 500);
    assert_eq!(options["max_scenes"], 8);
    assert!(!options["voices"].as_array().unwrap().is_empty(), "{options}");
    assert!(options["defaults"]["n_scenes"].as_u64().is_some(), "{options}");
    let ended = anonymous
        .delete(format!("{}v1/session", api.base))
        .send()
        .await
        .unwrap();
    assert!(
        ended.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );

    // Bad requests name the field and the limit.
    for (body, field, words) in [
        (json!({"spec": small(&"x".repeat(501), 1)}), "spec.title", "500"),
        (
            json!({"spec": {"title": "t", "n_scenes": 9}}),
            "spec.n_scenes",
            "8",
        ),
        (
            json!({"spec": {"title": "t", "aspect": "4:3"}}),
            "spec.aspect",
            "16:9",
        ),
        (json!({"spec": {"titel": "t"}}), "body", "titel"),
        (
            json!({"spec": small("t", 1), "timeout": "90000s"}),
            "timeout",
            "24 h",
        ),
    ] {
        let error = error_of(api.create(body).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["field"], field, "{error}");
        assert_eq!(error["status"], "INVALID_ARGUMENT");
        assert!(error["message"].as_str().unwrap().contains(words), "{error}");
    }
    let not_json = api
        .call(Method::POST, "/v1/jobs")
        .header(header::CONTENT_TYPE, "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(not_json, StatusCode::BAD_REQUEST).await["field"],
        "content-type"
    );
    let broke = api.get("/v1/jobs?state=RUNNING").await;
    assert_eq!(error_of(broke, StatusCode::BAD_REQUEST).await["field"], "state");
    // A key whose quota is 0 starts nothing.
    let quota = Api {
        key: CONTRACT_KEY.into(),
        ..Api {
            http: api.http.clone(),
            base: api.base.clone(),
            key: String::new(),
        }
    };
    let exhausted = quota.create(json!({"spec": small("t", 1)})).await;
    assert_eq!(
        error_of(exhausted, StatusCode::TOO_MANY_REQUESTS).await["status"],
        "RESOURCE_EXHAUSTED"
    );

    // References: keywords and ranked clips, each thumbnail a PNG.
    let references = api
        .post(
            "/v1/references",
            json!({"prompts": ["a wooden pier over a calm lake at sunset"], "k": 3}),
        )
        .await;
    assert_eq!(references.status(), StatusCode::OK);
    let references: Value = references.json().await.unwrap();
    let scene = &references["scenes"][0];
    assert!(!scene["keywords"].as_array().unwrap().is_empty(), "{scene}");
    let clips = scene["clips"].as_array().unwrap();
    assert!(!clips.is_empty() && clips.len() <= 3, "{scene}");
    for clip in clips {
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(clip["thumbnail_png"].as_str().unwrap())
            .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(clip["caption"].as_str().is_some_and(|c| !c.is_empty()));
    }
    let no_prompts = api.post("/v1/references", json!({"prompts": []})).await;
    assert_eq!(
        error_of(no_prompts, StatusCode::BAD_REQUEST).await["field"],
        "prompts"
    );

    // Texts: with the story given, the prompts are written and streamed.
    let given = json!({"spec": {"title": "The lighthouse", "n_scenes": 1, "seed": "5",
                                 "story": ["A keeper climbs the lighthouse stairs at dusk."],
                                 "prompts": ["a lighthouse at dusk"]}});
    let texts = api.post("/v1/texts", given).await;
    let events = read_events(texts, Duration::from_secs(60)).await;
    let done = &events.last().unwrap().data["done"];
    assert_eq!(
        done["story"],
        json!(["A keeper climbs the lighthouse stairs at dusk."])
    );
    assert_eq!(done["prompts"], json!(["a lighthouse at dusk"]));
    assert_eq!(done["seed"], "5");
    let bad_texts = api.post("/v1/texts", json!({"spec": {"title": ""}})).await;
    assert_eq!(
        error_of(bad_texts, StatusCode::BAD_REQUEST).await["field"],
        "spec.title"
    );

    // A job, with an idempotency key and a label, to the end over server-sent events.
    let request =
        json!({"spec": small("The lighthouse", 7), "idempotency_key": "rest-1", "labels": {"suite": "rest"}});
    let created = api.create(request.clone()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created.get("existing"), None, "false is left out");
    let job_id = created["job"]["id"].as_str().unwrap().to_string();
    let again = api.create(request).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        (again["existing"].as_bool(), again["job"]["id"].as_str()),
        (Some(true), Some(job_id.as_str()))
    );
    let other_spec = api
        .create(json!({"spec": small("Another title", 7), "idempotency_key": "rest-1"}))
        .await;
    assert_eq!(
        error_of(other_spec, StatusCode::CONFLICT).await["status"],
        "ALREADY_EXISTS"
    );

    let stream = api.get(&format!("/v1/jobs/{job_id}/events")).await;
    let events = read_events(stream, Duration::from_secs(900)).await;
    assert!(events[0].data.get("snapshot").is_some(), "a snapshot first");
    assert_eq!(final_state(&events), "JOB_STATE_SUCCEEDED", "{:?}", events.last());
    assert!(events.iter().all(|e| e.event == "job"));
    let ids: Vec<&String> = events.iter().skip(1).filter_map(|e| e.id.as_ref()).collect();
    assert!(ids.len() >= 5, "every event carries its id: {ids:?}");
    let artifacts: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e.data["artifact"]["name"].as_str())
        .collect();
    assert_eq!(
        artifacts,
        BTreeSet::from(["job.json", "subtitles.srt", "video.mp4"])
    );
    // Resumed from the middle by Last-Event-ID: exactly the events after it.
    let middle = ids.len() / 2;
    let resumed = api
        .call(Method::GET, &format!("/v1/jobs/{job_id}/events"))
        .header("last-event-id", ids[middle].as_str())
        .send()
        .await
        .unwrap();
    let resumed = read_events(resumed, Duration::from_secs(60)).await;
    let resumed_ids: Vec<&String> = resumed.iter().filter_map(|e| e.id.as_ref()).collect();
    assert_eq!(resumed_ids, ids[middle + 1..].to_vec());
    let bad_cursor = api
        .get(&format!("/v1/jobs/{job_id}/events?after=yesterday"))
        .await;
    assert_eq!(
        error_of(bad_cursor, StatusCode::BAD_REQUEST).await["field"],
        "resume_after"
    );

    // The job and its artifacts.
    let job = api.job(&job_id).await;
    assert_eq!(job["state"], "JOB_STATE_SUCCEEDED");
    let video = job["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "video.mp4")
        .unwrap()
        .clone();
    let size: u64 = video["size_bytes"].as_str().unwrap().parse().unwrap();
    let path = format!("/v1/jobs/{job_id}/artifacts/video.mp4");
    let whole = api.get(&path).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(whole.headers()[header::ACCEPT_RANGES], "bytes");
    let bytes = whole.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, size);
    assert_eq!(&bytes[4..8], b"ftyp");
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        video["sha256"].as_str().unwrap()
    );
    let saved = run.path().join("video.mp4");
    std::fs::write(&saved, &bytes).unwrap();
    let story: Vec<String> = small("x", 0)["story"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    common::assert_complete_video(&saved, 256, 144, &story);
    let part = api
        .call(Method::GET, &path)
        .header(header::RANGE, "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()[header::CONTENT_RANGE],
        format!("bytes 100-199/{size}")
    );
    assert_eq!(part.bytes().await.unwrap(), bytes.slice(100..200));
    let tail = api
        .call(Method::GET, &path)
        .header(header::RANGE, "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.bytes().await.unwrap(), bytes.slice(bytes.len() - 10..));
    let past = api
        .call(Method::GET, &path)
        .header(header::RANGE, format!("bytes={size}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(past.headers()[header::CONTENT_RANGE], format!("bytes */{size}"));
    error_of(past, StatusCode::RANGE_NOT_SATISFIABLE).await;
    let download = api.get(&format!("{path}?download=1")).await;
    assert!(
        download.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let vtt = api
        .get(&format!("/v1/jobs/{job_id}/artifacts/subtitles.vtt"))
        .await;
    assert_eq!(vtt.headers()[header::CONTENT_TYPE], "text/vtt; charset=utf-8");
    let vtt = vtt.text().await.unwrap();
    assert!(
        vtt.starts_with("WEBVTT\n\n") && vtt.contains(" --> ") && vtt.contains("lighthouse"),
        "{vtt}"
    );
    let nothing = api.get(&format!("/v1/jobs/{job_id}/artifacts/nothing.bin")).await;
    error_of(nothing, StatusCode::NOT_FOUND).await;
    let bad_name = api.get(&format!("/v1/jobs/{job_id}/artifacts/.hidden")).await;
    assert_eq!(error_of(bad_name, StatusCode::BAD_REQUEST).await["field"], "name");

    // Another key does not see the job.
    let other = Api {
        key: OTHER_KEY.into(),
        ..Api {
            http: api.http.clone(),
            base: api.base.clone(),
            key: String::new(),
        }
    };
    let hidden = other.get(&format!("/v1/jobs/{job_id}")).await;
    error_of(hidden, StatusCode::NOT_FOUND).await;

    // Lists by state and label (visibility catches up within seconds).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = api
            .get_json("/v1/jobs?state=JOB_STATE_SUCCEEDED&label=suite%3Drest&page_size=10")
            .await;
        let ids: Vec<&str> = listed["jobs"]
            .as_array()
            .map(|j| j.iter().filter_map(|j| j["id"].as_str()).collect())
            .unwrap_or_default();
        if ids == [job_id.as_str()] {
            let listed = &listed["jobs"][0];
            assert_eq!(
                listed["spec"],
                json!({"title": "The lighthouse"}),
                "a list shows the title"
            );
            assert!(listed["create_time"].as_str().is_some(), "{listed}");
            break;
        }
        assert!(Instant::now() < deadline, "the job is listed: {listed}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let none: Value = api
        .get_json("/v1/jobs?state=JOB_STATE_FAILED&label=suite%3Drest")
        .await;
    assert_eq!(none.get("jobs"), None, "{none}");

    // Cancel: a finished job stays as it is; a running one ends CANCELLED.
    let finished: Value = api
        .post(&format!("/v1/jobs/{job_id}/cancel"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(finished["state"], "JOB_STATE_SUCCEEDED");
    let mut long = small("A long night", 8);
    long["n_scenes"] = 4.into();
    long["story"] = json!(["One.", "Two.", "Three.", "Four."]);
    long["prompts"] = json!(["a lake", "a pier", "a boat", "a shore"]);
    long["key_frames"] = 8.into();
    let created: Value = api.create(json!({"spec": long})).await.json().await.unwrap();
    let long_id = created["job"]["id"].as_str().unwrap().to_string();
    let cancelled: Value = api
        .post(
            &format!("/v1/jobs/{long_id}/cancel"),
            json!({"reason": "the test is done with it"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(is_terminal(cancelled["state"].as_str().unwrap()) || cancelled["cancel_requested"] == true);
    let stream = api.get(&format!("/v1/jobs/{long_id}/events")).await;
    let events = read_events(stream, Duration::from_secs(120)).await;
    assert_eq!(final_state(&events), "JOB_STATE_CANCELLED");
    let gone = api.post("/v1/jobs/job-none/cancel", json!({})).await;
    error_of(gone, StatusCode::NOT_FOUND).await;

    // schemathesis: every operation of the document, generated requests, the responses
    // checked against it (no server error, documented statuses, conforming bodies).
    let schemathesis = std::env::var("STORYREEL_SCHEMATHESIS").unwrap_or_else(|_| {
        format!(
            "{}/schemathesis",
            std::env::var("STORYREEL_TOOLS").expect("STORYREEL_TOOLS (make test sets it)")
        )
    });
    // Its JUnit report of the last run stays in target/ for a look after a failure.
    let report = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/schemathesis-report");
    let _ = std::fs::remove_dir_all(&report);
    let output = tokio::process::Command::new(&schemathesis)
        .args(["run", &format!("{}openapi.json", api.base)])
        .args(["--header", &format!("Authorization: Bearer {CONTRACT_KEY}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "25", "--seed", "1", "--request-timeout", "60"])
        .args(["--report", "junit"])
        .arg("--report-dir")
        .arg(&report)
        .env("NO_COLOR", "1")
        // Its example database goes to the working directory: a temporary one.
        .current_dir(run.path())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{schemathesis} runs (make tools installs it): {e}"));
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{printed}");
    assert!(output.status.success(), "schemathesis found problems:\n{printed}");
    // Every operation it found in the document was tested.
    let number_after = |label: &str| -> usize {
        let at = printed
            .find(label)
            .unwrap_or_else(|| panic!("`{label}` in:\n{printed}"));
        printed[at + label.len()..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let (selected, tested) = (number_after("Selected:"), number_after("Tested:"));
    // Every route but the document's own, which schemathesis reads rather than tests.
    assert_eq!((selected, tested), (ROUTES.len() - 1, ROUTES.len() - 1));
    mesh.stop();
}
