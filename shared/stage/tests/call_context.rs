//! The call context: one deadline over a whole stream, the latency histogram recorded
//! when a call ends (a stream's last message, its error, its deadline or its caller going
//! away) with the code it ended with and the stage, model version and endpoint group.

use futures::StreamExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::{sync::atomic::Ordering, time::Duration};
use storyreel_runtime::{JobInfo, ModelInfo, ModelState, ValidationError};
use storyreel_stage::StageCalls;
use tokio::sync::watch;
use tonic::{Code, metadata::MetadataMap};

fn recorder() -> (PrometheusRecorder, PrometheusHandle) {
    let recorder = PrometheusBuilder::new()
        .set_buckets(&[0.01, 0.1, 1.0, 10.0])
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    (recorder, handle)
}

fn calls() -> (StageCalls, watch::Sender<ModelState>) {
    let model = ModelInfo {
        name: "m".into(),
        version: "v7".into(),
        ..Default::default()
    };
    let (tx, state) = watch::channel(ModelState::Ready(model));
    (StageCalls::new("test", Duration::from_secs(30), state), tx)
}

fn canary_job() -> JobInfo {
    JobInfo {
        job_id: Some("job-1".into()),
        endpoint_group: Some("canary".into()),
        ..Default::default()
    }
}

/// The count of the histogram series with these labels, if any.
fn count(handle: &PrometheusHandle, method: &str, code: &str) -> Option<u64> {
    let series = format!(
        "storyreel_stage_request_duration_seconds_count{{stage=\"test\",method=\"{method}\",model_version=\"v7\",endpoint_group=\"canary\",code=\"{code}\"}}"
    );
    handle
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series).map(|n| n.trim().parse().unwrap()))
}

#[tokio::test(flavor = "current_thread")]
async fn a_stream_is_measured_at_its_end_with_its_final_code() {
    let (recorder, handle) = recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (calls, _model) = calls();

    let context = calls
        .begin("fails_late", &MetadataMap::new(), canary_job(), None)
        .unwrap();
    let events = futures::stream::iter(vec![
        Ok(1),
        Ok(2),
        Err(ValidationError::new("scenes[1].text", "must not be empty")),
    ]);
    let mut stream = context.stream(events);
    assert_eq!(stream.next().await.unwrap().unwrap(), 1);
    // the headers and a first message are out, but the call has not ended
    assert_eq!(count(&handle, "fails_late", "INVALID_ARGUMENT"), None);
    assert_eq!(count(&handle, "fails_late", "OK"), None);
    let rest: Vec<_> = stream.collect().await;
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[1].as_ref().unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(count(&handle, "fails_late", "INVALID_ARGUMENT"), Some(1));
    assert_eq!(count(&handle, "fails_late", "OK"), None);

    let context = calls
        .begin("completes", &MetadataMap::new(), canary_job(), None)
        .unwrap();
    let all: Vec<_> = context
        .stream(futures::stream::iter(vec![Ok::<_, ValidationError>(1), Ok(2)]))
        .collect()
        .await;
    assert_eq!(all.len(), 2);
    assert_eq!(count(&handle, "completes", "OK"), Some(1));
}

#[tokio::test(flavor = "current_thread")]
async fn a_stream_past_its_deadline_ends_with_deadline_exceeded() {
    let (recorder, handle) = recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (calls, _model) = calls();
    let mut metadata = MetadataMap::new();
    metadata.insert("grpc-timeout", "50m".parse().unwrap());
    let context = calls.begin("hangs", &metadata, canary_job(), None).unwrap();
    // one event, then a stream that never yields again (a model still decoding)
    let events = futures::stream::iter(vec![Ok::<_, ValidationError>(1)]).chain(futures::stream::pending());
    let got: Vec<_> = tokio::time::timeout(Duration::from_secs(10), context.stream(events).collect())
        .await
        .expect("the deadline ends the stream");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].as_ref().unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(count(&handle, "hangs", "DEADLINE_EXCEEDED"), Some(1));
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_dropped_by_its_caller_is_cancelled() {
    let (recorder, handle) = recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (calls, _model) = calls();
    let context = calls
        .begin("dropped", &MetadataMap::new(), canary_job(), None)
        .unwrap();
    let cancelled = context.cancel_flag();
    let mut stream = context
        .stream(futures::stream::iter(vec![Ok::<_, ValidationError>(1)]).chain(futures::stream::pending()));
    stream.next().await.unwrap().unwrap();
    assert!(!cancelled.load(Ordering::SeqCst));
    drop(stream);
    assert!(cancelled.load(Ordering::SeqCst));
    assert_eq!(count(&handle, "dropped", "CANCELLED"), Some(1));

    // a unary call too
    let context = calls
        .begin("unary", &MetadataMap::new(), canary_job(), None)
        .unwrap();
    let cancelled = context.cancel_flag();
    let call = context.unary(std::future::pending::<Result<(), ValidationError>>());
    assert!(
        tokio::time::timeout(Duration::from_millis(20), call)
            .await
            .is_err()
    );
    assert!(cancelled.load(Ordering::SeqCst));
    assert_eq!(count(&handle, "unary", "CANCELLED"), Some(1));
}

#[test]
fn a_passed_deadline_fails_at_once() {
    let (calls, _model) = calls();
    let job_deadline = Some(std::time::Instant::now());
    let err = calls
        .begin("late", &MetadataMap::new(), canary_job(), job_deadline)
        .err()
        .expect("refused");
    assert_eq!(err.code(), Code::DeadlineExceeded);
}
