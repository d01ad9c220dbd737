//! The model worker with a small libtorch model: a panic inside libtorch fails one request
//! with INTERNAL and the worker serves the next; repeated failures take the model for
//! broken and health goes NOT_SERVING; a full queue is RESOURCE_EXHAUSTED.

use std::{
    sync::mpsc as std_mpsc,
    time::{Duration, Instant},
};
use storyreel_runtime::{ModelInfo, ModelState, ServerConfig, model::serve_model_service, to_status};
use storyreel_stage::{
    BatchControl, ModelWorker, StageModel, WorkerConfig, WorkerError, WorkerJob, WorkerSettings,
};
use tch::{Kind, Tensor};
use tokio::sync::oneshot;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// `ones(rows, cols) @ ones(inner, 1)`, summed: libtorch raises (tch panics) unless
/// `cols == inner`.
struct MatmulJob {
    rows: i64,
    cols: i64,
    inner: i64,
    /// Set: the model blocks until this receives (or its sender is dropped).
    hold: Option<std_mpsc::Receiver<()>>,
    reply: Option<oneshot::Sender<Result<f64, WorkerError>>>,
}

impl WorkerJob for MatmulJob {
    fn fail(&mut self, error: WorkerError) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Err(error));
        }
    }
}

struct MatmulModel;

impl StageModel for MatmulModel {
    type Job = MatmulJob;

    fn run_batch(&mut self, batch: &mut [MatmulJob], _: &BatchControl) -> Result<(), String> {
        for job in batch {
            if let Some(hold) = job.hold.take() {
                let _ = hold.recv();
            }
            let a = Tensor::ones([job.rows, job.cols], (Kind::Float, tch::Device::Cpu));
            let b = Tensor::ones([job.inner, 1], (Kind::Float, tch::Device::Cpu));
            // The non-`f_` call: libtorch's shape error arrives as a panic.
            let sum = a.matmul(&b).sum(Kind::Double).double_value(&[]);
            if let Some(reply) = job.reply.take() {
                let _ = reply.send(Ok(sum));
            }
        }
        Ok(())
    }
}

fn info() -> ModelInfo {
    ModelInfo {
        name: "matmul".into(),
        version: "1".into(),
        weights_sha256: "0".repeat(64),
        components: Vec::new(),
        random_init: false,
    }
}

fn worker(config: WorkerConfig) -> ModelWorker<MatmulJob> {
    ModelWorker::spawn(WorkerSettings::new("test", config), || Ok((MatmulModel, info()))).unwrap()
}

fn job(cols: i64, inner: i64) -> (MatmulJob, oneshot::Receiver<Result<f64, WorkerError>>) {
    let (reply, answer) = oneshot::channel();
    let job = MatmulJob {
        rows: 2,
        cols,
        inner,
        hold: None,
        reply: Some(reply),
    };
    (job, answer)
}

async fn run(worker: &ModelWorker<MatmulJob>, cols: i64, inner: i64) -> Result<f64, WorkerError> {
    let (job, answer) = job(cols, inner);
    worker.submit(job)?;
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .expect("answered in time")
        .expect("answered, not dropped")
}

#[tokio::test]
async fn a_panic_in_libtorch_fails_that_request_with_internal_and_the_next_succeeds() {
    let worker = worker(WorkerConfig::default());
    worker.wait_ready().await.unwrap();
    let err = run(&worker, 3, 4).await.unwrap_err();
    assert!(
        matches!(err, WorkerError::BatchFailed(ref m) if m.contains("panicked")),
        "{err}"
    );
    assert_eq!(to_status(&err).code(), tonic::Code::Internal);
    assert_eq!(run(&worker, 3, 3).await.unwrap(), 6.0);
    assert!(matches!(*worker.state().borrow(), ModelState::Ready(_)));
    let counters = worker.counters();
    assert_eq!(counters.panics.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(counters.batches.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn repeated_failures_take_the_model_for_broken_and_health_goes_not_serving() {
    let worker = worker(WorkerConfig {
        max_consecutive_failures: 2,
        ..WorkerConfig::default()
    });
    worker.wait_ready().await.unwrap();
    let listener = storyreel_runtime::server::bind(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_model_service(
        ServerConfig::default(),
        "storyreel.test.v1.Test",
        worker.state(),
        listener,
        tonic::service::Routes::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let channel = tonic::transport::Channel::from_shared(endpoint)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let status = |mut health: HealthClient<tonic::transport::Channel>| async move {
        let request = HealthCheckRequest {
            service: "storyreel.test.v1.Test".into(),
        };
        health.check(request).await.unwrap().into_inner().status()
    };
    let until = Instant::now() + Duration::from_secs(10);
    while status(health.clone()).await != ServingStatus::Serving {
        assert!(Instant::now() < until, "never SERVING");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // a failure between successes does not count towards the limit
    run(&worker, 3, 4).await.unwrap_err();
    run(&worker, 3, 3).await.unwrap();
    run(&worker, 3, 4).await.unwrap_err();
    assert!(matches!(*worker.state().borrow(), ModelState::Ready(_)));
    run(&worker, 3, 4).await.unwrap_err();

    let until = Instant::now() + Duration::from_secs(10);
    while status(health.clone()).await != ServingStatus::NotServing {
        assert!(Instant::now() < until, "never NOT_SERVING");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ModelState::Failed(reason) = worker.state().borrow().clone() else {
        panic!("the model should be failed");
    };
    assert!(reason.contains("2 batches failed in a row"), "{reason}");
    let refused = run(&worker, 3, 3).await.unwrap_err();
    assert!(matches!(refused, WorkerError::NotReady { .. }), "{refused}");
    assert_eq!(to_status(&refused).code(), tonic::Code::Unavailable);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let _ = health.check(HealthCheckRequest::default()).await;
}

#[tokio::test]
async fn a_full_queue_is_resource_exhausted_and_its_depth_is_reported() {
    let worker = worker(WorkerConfig {
        queue_capacity: 1,
        ..WorkerConfig::default()
    });
    worker.wait_ready().await.unwrap();
    // the first job holds the model until released
    let (release, hold) = std_mpsc::channel();
    let (mut first, first_answer) = job(2, 2);
    first.hold = Some(hold);
    worker.submit(first).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while worker.queue_depth() != 0 {
        assert!(Instant::now() < until, "the worker never took the first job");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (second, second_answer) = job(2, 2);
    worker.submit(second).unwrap();
    assert_eq!(worker.queue_depth(), 1);
    let (third, _) = job(2, 2);
    let err = worker.submit(third).unwrap_err();
    assert_eq!(err, WorkerError::Overloaded { capacity: 1 });
    assert_eq!(to_status(&err).code(), tonic::Code::ResourceExhausted);
    release.send(()).unwrap();
    assert_eq!(first_answer.await.unwrap().unwrap(), 4.0);
    assert_eq!(second_answer.await.unwrap().unwrap(), 4.0);
    assert_eq!(worker.queue_depth(), 0);
}

#[tokio::test]
async fn loading_runs_in_the_background_and_a_failed_load_refuses_jobs() {
    let (go, wait) = std_mpsc::channel::<()>();
    let worker: ModelWorker<MatmulJob> =
        ModelWorker::spawn(WorkerSettings::new("test", WorkerConfig::default()), move || {
            let _ = wait.recv();
            Err::<(MatmulModel, ModelInfo), _>("no weights in /models/x: run `make models`".into())
        })
        .unwrap();
    // spawn returned while the model is still loading
    assert_eq!(*worker.state().borrow(), ModelState::Loading);
    let (early, _) = job(2, 2);
    assert!(matches!(worker.submit(early), Err(WorkerError::NotReady { .. })));
    go.send(()).unwrap();
    let err = worker.wait_ready().await.unwrap_err();
    assert!(err.to_string().contains("make models"), "{err}");
    let (late, _) = job(2, 2);
    assert!(matches!(worker.submit(late), Err(WorkerError::NotReady { .. })));
}
