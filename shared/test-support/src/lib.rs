//! What storyreel's tests repeat (a dev-dependency only):
//!
//! - [`model_dir`]: a model `make models` converts, or a panic that says to run it;
//! - [`TestServer`]: a stage served on `127.0.0.1:0`, stopped and awaited by
//!   [`TestServer::shutdown`];
//! - [`assert_reflection`]: grpcurl (reflection v1alpha) lists and describes a service;
//! - [`relative_error`] and [`psnr`]: how parity tests compare tensors.

use std::{future::Future, path::PathBuf, sync::Arc};
use storyreel_runtime::server::ServerError;
use storyreel_stage::Stage;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// `$STORYREEL_CACHE/models/<name>` (default cache `~/.cache/storyreel`), which must hold
/// `required` (a file the model needs); otherwise the test fails saying how to get it.
pub fn model_dir(name: &str, required: &str) -> PathBuf {
    let cache = std::env::var_os("STORYREEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/storyreel")))
        .expect("STORYREEL_CACHE or HOME is set");
    let dir = cache.join("models").join(name);
    assert!(
        dir.join(required).is_file(),
        "{} has no {required}: run `make models` first",
        dir.display()
    );
    dir
}

/// A server on a free loopback port, running until [`TestServer::shutdown`].
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    /// Serves with `serve(listener, shutdown)` on `127.0.0.1:0`.
    pub async fn start<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(TcpListener, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = Result<(), ServerError>> + Send + 'static,
    {
        let listener = storyreel_runtime::server::bind(([127, 0, 0, 1], 0).into())
            .await
            .expect("binding 127.0.0.1:0");
        let endpoint = format!("http://{}", listener.local_addr().expect("a bound address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = Box::pin(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(serve(listener, shutdown));
        TestServer {
            endpoint,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Serves the stage `S` with `config` and `service` (health follows its model).
    pub async fn stage<S: Stage>(config: S::Config, service: Arc<S::Service>) -> Self {
        Self::start(|listener, shutdown| {
            storyreel_stage::serve::serve::<S>(config, service, listener, shutdown)
        })
        .await
    }

    /// A channel to the server.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.endpoint.clone())
            .expect("a valid endpoint")
            .connect()
            .await
            .expect("connecting to the test server")
    }

    /// Stops the server and waits for it; panics if it failed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server task").expect("the server ran");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The grpcurl `make test` installs (`scripts/setup-tools.sh`): `$STORYREEL_TOOLS/grpcurl`,
/// else `$STORYREEL_CACHE/tools/grpcurl`, else `~/.cache/storyreel/tools/grpcurl`.
pub fn grpcurl() -> PathBuf {
    let tools = std::env::var_os("STORYREEL_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("STORYREEL_CACHE").map(|c| PathBuf::from(c).join("tools")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/storyreel/tools")))
        .expect("STORYREEL_TOOLS, STORYREEL_CACHE or HOME is set");
    let path = tools.join("grpcurl");
    assert!(
        path.is_file(),
        "{} is missing: run `make tools` (scripts/setup-tools.sh)",
        path.display()
    );
    path
}

/// grpcurl 1.8 (server reflection v1alpha only) lists `service` on the server at
/// `endpoint` (`http://host:port`, plaintext) and describes it with `methods`.
pub fn assert_reflection(endpoint: &str, service: &str, methods: &[&str]) {
    let address = endpoint.trim_start_matches("http://");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(grpcurl())
            .args(["-plaintext", "-max-time", "20"])
            .arg(address)
            .args(args)
            .output()
            .expect("grpcurl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "grpcurl {args:?} failed: {}{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let listed = run(&["list"]);
    assert!(
        listed.lines().any(|l| l.trim() == service),
        "`grpcurl list` lacks {service}:\n{listed}"
    );
    let described = run(&["describe", service]);
    assert!(
        described.contains(&format!("{service} is a service")),
        "{described}"
    );
    for method in methods {
        assert!(
            described.contains(&format!("rpc {method} (")),
            "`describe` lacks {method}:\n{described}"
        );
    }
}

/// [`assert_reflection`] from async code: grpcurl runs on the blocking pool, so a server
/// on this runtime keeps answering.
pub async fn check_reflection(endpoint: &str, service: &'static str, methods: &'static [&'static str]) {
    let endpoint = endpoint.to_string();
    tokio::task::spawn_blocking(move || assert_reflection(&endpoint, service, methods))
        .await
        .expect("the reflection check ran");
}

/// `max |got - want| / max(max |want|, tiny)`, in f64.
pub fn relative_error(got: &tch::Tensor, want: &tch::Tensor) -> f64 {
    assert_eq!(got.size(), want.size(), "shapes differ");
    let got = got.to_kind(tch::Kind::Double);
    let want = want.to_kind(tch::Kind::Double);
    let diff = (&got - &want).abs().max().double_value(&[]);
    let scale = want.abs().max().double_value(&[]).max(1e-12);
    diff / scale
}

/// Peak signal-to-noise ratio in dB of two images with values in `[0, peak]`.
pub fn psnr(a: &tch::Tensor, b: &tch::Tensor, peak: f64) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    let a = a.to_kind(tch::Kind::Double);
    let b = b.to_kind(tch::Kind::Double);
    let mse = (&a - &b).square().mean(tch::Kind::Double).double_value(&[]);
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (peak * peak / mse).log10()
    }
}
